"""The library's commands, one module each; `python -m minitron <command>` runs them."""
