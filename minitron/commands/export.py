"""`python -m minitron export CHECKPOINT --gguf [--quant f16,q8_0,q4_0] [--out FOLDER]`.

Writes the checkpoint as GGUF files for llama.cpp (Ollama, LM Studio), one per quantization, next
to it unless `--out` says otherwise: `<name>.<QUANT>.gguf`. The tokenizer and chat template come
from the teacher's GGUF when the teacher came as one, else from the checkpoint's `tokenizer.json`
(see `minitron.export`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from minitron.commands.common import run_command
from minitron.errors import MinitronError
from minitron.export.gguf_file import DEFAULT_QUANTS, QUANTS, export_gguf, parse_quants


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minitron export",
        description="Export a Llama checkpoint to GGUF files for llama.cpp, one per quantization.",
    )
    parser.add_argument(
        "checkpoint", type=Path, help="a Hugging Face checkpoint folder (a winner, a pruned model)"
    )
    parser.add_argument("--gguf", action="store_true", help="write GGUF files (the one format today)")
    parser.add_argument(
        "--quant",
        default=",".join(DEFAULT_QUANTS),
        help=f"comma-separated, from {', '.join(QUANTS)} (default: {','.join(DEFAULT_QUANTS)})",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the files (default: the checkpoint's)"
    )
    parser.add_argument(
        "--tokenizer-gguf",
        type=Path,
        default=None,
        help="take the tokenizer from this GGUF (e.g. the teacher's)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    return run_command(lambda: _run(args), debug=args.debug)


def _run(args: Any) -> None:
    if not args.gguf:
        raise MinitronError("say which format to export: --gguf")
    quants = parse_quants(args.quant)  # a bad name fails before any weight is read
    if not args.checkpoint.is_dir():
        raise MinitronError(f"{args.checkpoint} is not a checkpoint folder")
    if args.tokenizer_gguf is not None and not args.tokenizer_gguf.is_file():
        raise MinitronError(f"--tokenizer-gguf {args.tokenizer_gguf} is not a file")
    for done in export_gguf(args.checkpoint, quants, args.tokenizer_gguf, out=args.out):
        note = (
            f"; {len(done.fallback)} matrices kept as F16 (rows not a multiple of 32)"
            if done.fallback
            else ""
        )
        print(f"wrote {done.path} ({done.bytes / 2**20:.1f} MiB, tokenizer from {done.tokenizer}{note})")
