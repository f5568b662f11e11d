"""Which distillation mix, and whether teacher correction helps: one shape, one token budget, the
mix changed alone, scored on every test split and on lambada and hellaswag.

    python bench/mix_weights.py [--arch num_hidden_layers=12,...] [--tokens 64k] [--limit 400]
                                [--arms NAME=MIX;NAME=MIX;...] [--seeds 0,1]
                                [--correct ARM[,ARM]] [--correct-tokens 64k]

Each arm runs the tool's own commands: `python -m minitron prune --data MIX` (importance calibrated
on that arm's data, as a search on it would), `python -m minitron distill --data MIX --tokens N`
(the winners' retraining recipe), then scores the model on the test split of every part of the
default mix (the out-of-domain speeches included), on the whole `wiki-en` test split (the figure
the issue's 4.097 is), and on lm-eval's lambada_openai and hellaswag (the first `--limit` items,
Wilson intervals, retention against the teacher). `--correct ARM` adds the arm again with the
teacher corrected first (`python -m minitron correct --data MIX`): the pruned student, its
importance and its distillation all use the corrected teacher, as Minitron does. `--seeds` trains
every arm once per seed (the order of its training windows; the cut is the same).

The teacher's samples enter every arm as the cached file itself (not `teacher-samples`), so the
corrected teacher trains on the same documents and no arm draws new ones; a run of the default
search must have cached them. Finished arms are kept in `<out>/runs.json` (a rerun continues).
The rule that picks the default weights reads validation only: the mean, with equal weight per
part, of each trained part's validation loss (so no arm wins by being scored on its own weights);
test losses, the out-of-domain part and the benchmarks are quoted, never chosen with.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from transformers import AutoModelForCausalLM

from bench.rank_fidelity import Runs
from minitron.data.assets import cache_dir
from minitron.data.generated import TEACHER_SAMPLES, GenerationConfig, generation_key, teacher_identity
from minitron.data.mix import DEFAULT_DATA, DEFAULT_MIX, load_tokens
from minitron.data.tokens import SEQ_LEN, pack, tokenizer_fingerprint
from minitron.distill.provenance import Provenance
from minitron.eval.benchmarks import EvalConfig, Scores, evaluate
from minitron.eval.loss import (
    TEST_SEQUENCES,
    VALIDATION_SEQUENCES,
    domain_losses,
    domain_test_sets,
)
from minitron.eval.retention import format_retention, retention_rows
from minitron.model.teacher import load_teacher
from minitron.runtime import cpu_description

TEACHER = "smollm2-135m"
TASKS = ("lambada_openai", "hellaswag")
ARMS = (
    "wiki=wiki-en",
    f"default={DEFAULT_MIX.replace(TEACHER_SAMPLES, 'SAMPLES')}",
    "prose=wiki-en=0.5,narrative-en=0.2,code-py=0.05,dialogue-en=0.05,SAMPLES=0.2",
    "wiki-heavy=wiki-en=0.7,narrative-en=0.1,code-py=0.05,dialogue-en=0.05,SAMPLES=0.1",
)


def samples_file(tokenizer: Any) -> Path:
    """The teacher's cached samples at the default settings: the file `--data mix` reads."""
    key = generation_key(teacher_identity(TEACHER), tokenizer_fingerprint(tokenizer), GenerationConfig())
    path = cache_dir() / "generated" / key / "documents.jsonl"
    if not path.exists():
        sys.exit("no cached teacher samples: run `make search` (or a search on --data mix) first")
    return path


def run(cmd: list[str], log: Path) -> float:
    """Run one of the tool's commands, its output appended to `log`; seconds taken."""
    t0 = time.perf_counter()
    with log.open("a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        done = subprocess.run([sys.executable, "-m", "minitron", *cmd], stdout=f, stderr=subprocess.STDOUT)
    if done.returncode:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}; see {log}")
    return time.perf_counter() - t0


def scored(
    model: Any, tokenizer: Any, sets: dict[str, torch.Tensor], val: dict[str, torch.Tensor], limit: int
) -> dict[str, Any]:
    losses = domain_losses(model, sets)
    val_losses = domain_losses(model, val)
    scores = evaluate(model, tokenizer, EvalConfig(tasks=TASKS, limit=limit), offline=True)
    return {"losses": losses, "val_losses": val_losses, "scores": scores.to_json()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--arch",
        default="num_hidden_layers=12,hidden_size=576,intermediate_size=1536,"
        "num_attention_heads=9,num_key_value_heads=3",
    )
    parser.add_argument("--tokens", default="64k")
    parser.add_argument("--limit", type=int, default=400)
    parser.add_argument("--arms", default=";".join(ARMS), help="NAME=DATA;...  (SAMPLES: the cached samples)")
    parser.add_argument("--correct", default="", help="arms to repeat with a corrected teacher (a,b)")
    parser.add_argument("--seeds", default="0", help="training seeds of every arm (the data order)")
    parser.add_argument("--correct-tokens", default="64k")
    parser.add_argument("--out", default="results/bench/mix_weights")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = Runs(out / "runs.json")
    log = out / "commands.log"
    teacher = load_teacher(TEACHER)
    samples = str(samples_file(teacher.tokenizer))
    arms = dict(a.split("=", 1) for a in args.arms.split(";"))
    arms = {k: v.replace("SAMPLES", samples) for k, v in arms.items()}
    tokens = load_tokens(DEFAULT_DATA, teacher.tokenizer, teacher_identity(TEACHER), offline=True)
    sets = domain_test_sets(tokens, SEQ_LEN)
    wiki = load_tokens("wiki-en", teacher.tokenizer, teacher_identity(TEACHER), offline=True)
    sets["wiki-en (whole test split)"] = pack(wiki.test, SEQ_LEN, TEST_SEQUENCES)
    sets["mixture"] = pack(tokens.test, SEQ_LEN, TEST_SEQUENCES)
    # The choice between arms reads validation only: each trained part's own validation sequences,
    # averaged with equal weight (so no arm is favoured by being scored on its own weights).
    val = {d.name: pack(d.validation, SEQ_LEN, 32) for d in tokens.domains if d.weight > 0}
    if runs.get("teacher") is None:
        runs.put("teacher", scored(teacher.model, teacher.tokenizer, sets, val, args.limit))
    teacher_scores = Scores.from_json(runs.get("teacher")["scores"])

    seeds = [int(x) for x in args.seeds.split(",")]
    plan = [(name, data, TEACHER) for name, data in arms.items()]
    for arm in filter(None, args.correct.split(",")):
        corrected = out / f"teacher-corrected-{arm}"
        if not (corrected / "model.safetensors").exists():
            command = ["correct", "--data", arms[arm], "--tokens", args.correct_tokens]
            secs = run([*command, "--out", str(corrected), "--overwrite"], log)
            runs.put(f"correct/{arm}/seconds", round(secs))
        plan.append((f"{arm}+corrected", arms[arm], str(corrected)))
    keys = [
        (name if seed == 0 else f"{name}/seed{seed}", name, data, spec, seed)
        for name, data, spec in plan
        for seed in seeds
    ]

    for key, name, data, teacher_spec, seed in keys:
        if runs.get(f"arm/{key}") is not None:
            continue
        # the pruned model does not depend on the seed (importance is deterministic); training does
        pruned, student = out / name / "pruned", out / key / "student"
        cut = ["prune", "--teacher", teacher_spec, "--data", data, "--arch", args.arch]
        t_prune = 0.0 if (pruned / "model.safetensors").exists() else run([*cut, "--out", str(pruned)], log)
        t_distill = run(
            [
                *("distill", "--teacher", teacher_spec, "--data", data, "--student", str(pruned)),
                *("--tokens", args.tokens, "--out", str(student), "--seed", str(seed), "--overwrite"),
                *("--eval-sequences", str(VALIDATION_SEQUENCES)),
            ],
            log,
        )
        model = AutoModelForCausalLM.from_pretrained(student, dtype=torch.float32).eval()
        record = Provenance.load(student)
        runs.put(
            f"arm/{key}",
            {
                "data": data,
                "seed": seed,
                "teacher": teacher_spec,
                "own_val_loss": record.final_val_loss,
                **scored(model, teacher.tokenizer, sets, val, args.limit),
                "seconds": {"prune": round(t_prune), "distill": round(t_distill)},
            },
        )
        print(f"{key}: done", flush=True)

    columns = list(sets)
    print(f"\n{args.arch}, {args.tokens} tokens, {cpu_description()}")
    print("| arm | mean domain val | " + " | ".join(columns) + " | " + " | ".join(TASKS) + " |")
    print("|---" * (len(columns) + len(TASKS) + 2) + "|")
    for key in ["teacher", *(f"arm/{k[0]}" for k in keys)]:
        r = runs.get(key)
        s = Scores.from_json(r["scores"])
        accs = [f"{100 * (s.headline(t)[1] or 0):.1f}" for t in TASKS]
        val = sum(r["val_losses"].values()) / len(r["val_losses"])
        print(
            f"| {key.removeprefix('arm/')} | {val:.3f} | "
            + " | ".join(f"{r['losses'][c]:.3f}" for c in columns)
            + " | "
            + " | ".join(accs)
            + " |"
        )
        if key != "teacher":
            print(format_retention(retention_rows(teacher_scores, s, TASKS)))
    (out / "table.json").write_text(json.dumps({"cpu": cpu_description(), "runs": runs.data}, indent=1))


if __name__ == "__main__":
    main()
