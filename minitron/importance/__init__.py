"""Importance: width scores, layer-removal losses and accuracies, the cache, and which units to keep."""
