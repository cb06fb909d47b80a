"""Shared LLaVA-1.5 pieces every LLaVA-based backend uses: loading in the llava-hf layout, prompts, image padding."""
