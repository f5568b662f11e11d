"""`python -m minitron <command> ...` (or the `minitron` console script): the library's commands.

    fetch      fetch, verify and convert the embedded teacher, corpus and benchmark data
    prune      cut one architecture out of a teacher by importance and save it
    distill    retrain a saved student by distillation (resumable)
    evaluate   score a checkpoint on lm-eval benchmarks, offline
    correct    fine-tune a teacher on the distillation corpus (teacher correction)
    export     write a checkpoint as GGUF files for llama.cpp (f16, q8_0, q4_0, ...)

The architecture search itself is `python search.py` (or the `minitron-search` console script).
The same stages as Python functions, with the flags as keyword arguments: `minitron.api`.
"""

from __future__ import annotations

import importlib
import sys

from minitron.runtime import quiet_progress_bars_when_logged

COMMANDS = ("fetch", "prune", "distill", "evaluate", "correct", "export")


def main(argv: list[str] | None = None) -> int:
    quiet_progress_bars_when_logged()
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"minitron.commands.{name}")
    return int(module.main(rest))


if __name__ == "__main__":
    sys.exit(main())
