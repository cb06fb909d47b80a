"""`aas`: attend-and-segment on the transformers VLM families (backend.py; one module per image-token layout)."""
