"""The `difflmm` backend: DiffLMM's release layouts (`loading`), the SD U-Net + CLIP vision tower (`vision`), a&s on top (`backend`)."""
