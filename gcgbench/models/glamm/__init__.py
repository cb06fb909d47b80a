"""The `glamm` backend: official modules and strict loading (`modules`, `region`), tokenizer and prompts (`tokenizer`), output parsing (`parse`), the backend (`backend`)."""
