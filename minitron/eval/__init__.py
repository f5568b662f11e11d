"""Evaluation: validation loss, lm-eval benchmarks offline, and their tables."""
