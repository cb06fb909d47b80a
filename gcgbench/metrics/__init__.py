"""Metrics: pure functions over typed ground truth and predictions, each equal to an official script."""
