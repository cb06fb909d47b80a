"""The `llava-as` backend: LLaVA-1.5 + attend-and-segment (`backend`), prompt batches (`batch`)."""
