"""Data: embedded assets (pinned wheels), corpora and their splits, tokenization, benchmark copies."""
