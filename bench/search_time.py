"""The default search's wall time as a multiple of a plain KD loop's 16k tokens, measured in one run.

    python bench/search_time.py [--name NAME] [--cold] [--out FILE] [-- SEARCH ARGS...]

First the plain loop (`bench/distill_throughput.plain_kd_loop`: HF student and teacher, teacher
online, full-vocabulary KL, AdamW, fp32, batch 4 x 256) trains the bench's 69M student on 16,384
tokens; then `python search.py --budget 70M` (the default search, plus any SEARCH ARGS) runs in a
subprocess with this process's environment; the ratio is the search's wall time over the loop's.
The search's own stage timings and estimates come from its `summary.json`. Without `--cold` the
importance cache is warm (the bench computes the teacher's importance first, as a first search
would have); `--cold` empties that cache first. Prints a table and writes JSON; the CPU model and
whether bf16 was native are in both.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from distill_throughput import STUDENT, plain_kd_loop

from minitron import codec
from minitron.atomic import write_json
from minitron.data.assets import cache_dir
from minitron.data.corpus import load_corpus
from minitron.data.tokens import pack, tokenize_corpus
from minitron.distill.sources import training_windows
from minitron.importance.cache import importance_for
from minitron.importance.scores import ImportanceConfig
from minitron.model.teacher import load_teacher
from minitron.prune import prune
from minitron.runtime import cpu_description
from search.outputs.summary import Summary

ROOT = Path(__file__).resolve().parent.parent
PLAIN_TOKENS = 16_384


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default=f"search-time-{time.strftime('%m%d-%H%M')}")
    parser.add_argument("--cold", action="store_true", help="empty the importance cache first")
    parser.add_argument("--out", default="results/bench/search_time.json")
    parser.add_argument("search_args", nargs="*", help="more arguments for search.py (after --)")
    args = parser.parse_args()

    teacher = load_teacher("smollm2-135m")
    tokens = tokenize_corpus(load_corpus("wiki-en"), teacher.tokenizer)
    importance = importance_for(teacher.model, tokens, ImportanceConfig(), block_sizes=[6], progress=False)
    student = prune(teacher.model, STUDENT, importance)
    batch = 4
    steps = PLAIN_TOKENS // (batch * 256)
    ids = training_windows(pack(tokens.train, 256), steps * batch, seed=0)
    plain = plain_kd_loop(copy.deepcopy(student), teacher.model, ids, steps, batch)
    print(f"done: plain loop {PLAIN_TOKENS:,} tokens in {plain:.1f} s", file=sys.stderr, flush=True)
    del teacher, student

    if args.cold:
        shutil.rmtree(cache_dir() / "importance", ignore_errors=True)
    command = [
        sys.executable,
        str(ROOT / "search.py"),
        "--budget",
        "70M",
        "--name",
        args.name,
        *args.search_args,
    ]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - start
    log = ROOT / "results" / f"{args.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(result.stdout)
    if result.returncode != 0:
        sys.exit(f"search.py failed with exit code {result.returncode}; its output is in {log}")
    summary = Summary.load(ROOT / "results" / args.name / "summary.json")

    print(f"\n{cpu_description()}")
    print(f"plain KD loop, {PLAIN_TOKENS:,} tokens: {plain:.1f} s ({PLAIN_TOKENS / plain:.0f} tokens/s)")
    print(f"`{' '.join(command[1:])}`: {seconds:.0f} s = {seconds / plain:.2f}x the plain loop (goal: 9x)\n")
    print(f"{'stage':>16}  {'seconds':>8}  {'estimated':>9}")
    for stage, spent in summary.stages.items():
        guess = summary.estimated_stages.get(stage)
        print(f"{stage:>16}  {spent:>8.1f}  {'' if guess is None else f'{guess:.1f}':>9}")
    for winner in summary.winners:
        print(
            f"winner {winner.rank}: {codec.encode(winner.architecture)} {winner.params:,} params, "
            f"test loss {winner.result.test_loss}"
        )
    out = Path(args.out)
    write_json(
        out,
        {
            "cpu": cpu_description(),
            "plain_seconds": plain,
            "search_seconds": seconds,
            "ratio": seconds / plain,
            "command": command[1:],
            "cold_importance": args.cold,
            "stages": summary.stages,
            "estimated_stages": summary.estimated_stages,
            "winners": [
                {
                    "architecture": codec.encode(w.architecture),
                    "params": w.params,
                    "test_loss": w.result.test_loss,
                }
                for w in summary.winners
            ],
        },
    )
    print(f"wrote {out}; the search's log: {log}")


if __name__ == "__main__":
    main()
