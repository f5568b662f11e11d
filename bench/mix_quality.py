"""Where the winners of finished runs stand: test loss on every part of the default mix (the
out-of-domain speeches included) and benchmark retention, teacher and winners, run beside run.

    python bench/mix_quality.py results/<run-before> results/<run-after> [--data mix] [--out FILE]

Runs made on one corpus (e.g. `--data wiki-en`, the default before the mix) are scored on the mix's
test splits too, so one table compares a run distilled on Wikipedia alone with one distilled on the
mix, with the same test sequences. The teacher's own samples of the mix must be cached (a run on
the mix draws them). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from transformers import AutoModelForCausalLM

from minitron import codec
from minitron.data.generated import teacher_identity
from minitron.data.mix import DEFAULT_DATA, load_tokens
from minitron.data.tokens import SEQ_LEN, pack
from minitron.distill.provenance import Provenance, WinnerOrigin
from minitron.eval.loss import TEST_SEQUENCES, domain_losses, domain_test_sets, validation_loss
from minitron.eval.retention import format_retention
from minitron.model.architecture import Architecture
from minitron.model.teacher import load_teacher
from minitron.runtime import cpu_description
from search.outputs.outcomes import WinnerResult
from search.outputs.quality import retention_table
from search.outputs.rundir import RunDir
from search.outputs.summary import Summary, WinnerRow
from search.plan.settings import CONFIG_SOURCE
from search.plan.spec import RunConfig


def losses(model: Any, sets: dict[str, torch.Tensor], mixture: torch.Tensor) -> dict[str, float]:
    return {"mixture": validation_loss(model, mixture, progress=False).loss, **domain_losses(model, sets)}


def _summary(run: Path) -> Summary:
    """The run's summary; for a run still in its benchmarks stage, its finished winners alone."""
    if (run / "summary.json").exists():
        return Summary.load(run / "summary.json")
    config = codec.decode(RunConfig, RunDir(run).load_config(), CONFIG_SOURCE)
    winners = []
    for folder in sorted((run / "winners").iterdir()):
        if not (folder / "provenance.json").exists():
            continue
        provenance = Provenance.load(folder)
        origin = provenance.origin
        block = origin.layer_block if isinstance(origin, WinnerOrigin) else 0
        winners.append(
            WinnerRow(
                rank=int(folder.name.split("-")[0]),
                trial_id=folder.name,
                architecture=Architecture(**provenance.architecture, layer_block=block),
                params=provenance.params,
                result=WinnerResult(path=str(folder), final_loss=None),
            )
        )
    return Summary(settings=config.settings, winners=winners)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories")
    parser.add_argument("--data", default=DEFAULT_DATA, help="the data whose test splits score every model")
    parser.add_argument("--out", default="results/bench/mix_quality.json")
    args = parser.parse_args()

    summaries = {run: _summary(Path(run)) for run in args.runs}
    settings = next(iter(summaries.values())).settings
    teacher_spec = settings.teacher if settings is not None else "smollm2-135m"
    teacher = load_teacher(teacher_spec)
    tokens = load_tokens(args.data, teacher.tokenizer, teacher_identity(teacher_spec), offline=True)
    sets = domain_test_sets(tokens, SEQ_LEN)
    mixture = pack(tokens.test, SEQ_LEN, TEST_SEQUENCES)
    held_out = [d.name for d in tokens.domains if d.weight == 0]
    rows: list[dict[str, Any]] = [{"run": "-", "model": "teacher", **losses(teacher.model, sets, mixture)}]
    retention: dict[str, Any] = {}
    for run, summary in summaries.items():
        data = summary.settings.data if summary.settings is not None else None
        for w in summary.winners:
            if not w.result.path or not (Path(w.result.path) / "model.safetensors").exists():
                continue
            model = AutoModelForCausalLM.from_pretrained(w.result.path, dtype=torch.float32).eval()
            name = f"winner {w.rank} {Path(w.result.path).name}"
            rows.append({"run": Path(run).name, "data": data, "model": name, **losses(model, sets, mixture)})
            kept = retention_table(summary, w)
            retention[f"{Path(run).name} {name}"] = [r.__dict__ for r in kept]
            print(f"\n{Path(run).name} {name} (distilled on {data}):\n{format_retention(kept)}")
    columns = ["mixture", *sets]
    print(
        "\n| run | model | "
        + " | ".join(c + (" (out of domain)" if c in held_out else "") for c in columns)
        + " |"
    )
    print("|---|---|" + "---:|" * len(columns))
    for row in rows:
        print(f"| {row['run']} | {row['model']} | " + " | ".join(f"{row[c]:.3f}" for c in columns) + " |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"cpu": cpu_description(), "data": args.data, "losses": rows, "retention": retention}
    out.write_text(json.dumps(record, indent=2, default=str))
    print(f"\nwrote {out} ({cpu_description()})")


if __name__ == "__main__":
    main()
