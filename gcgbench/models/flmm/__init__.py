"""The `flmm` backend: F-LMM's checkpoint (`loading`), mask head (`head`), LLaVA-NeXT input layout (`next`), the backend (`backend`)."""
