"""minitron: the library behind minitron-search (teachers, corpora, architecture math, and later
importance, pruning and distillation). It never imports Ray or Optuna."""

__version__ = "0.1.0"
