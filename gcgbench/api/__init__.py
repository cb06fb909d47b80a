"""The typed contract between stages: docs, requests, predictions, masks."""
