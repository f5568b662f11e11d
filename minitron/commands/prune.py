"""`python -m minitron prune`: cut one architecture out of a teacher by importance and save it.

    python -m minitron prune --teacher smollm2-135m --out results/pruned-70m \\
        --arch num_hidden_layers=20,hidden_size=432,intermediate_size=1024,num_attention_heads=9

The "I already know the shape I want" path: importance (cached), selection, surgery, the zero-shot
validation loss, and a Hugging Face checkpoint with `pruning.json` beside it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from minitron.atomic import read_json_object
from minitron.commands.common import (
    DATA_HELP,
    add_common_options,
    check_out_folder,
    field_defaults,
    non_negative_or_all,
    run_command,
)
from minitron.errors import MinitronError
from minitron.eval.loss import VALIDATION_SEQUENCES
from minitron.importance.scores import Importance, ImportanceConfig
from minitron.importance.selection import DEPTH_METHODS, DepthMethod, block_starts, removal_losses
from minitron.model.architecture import ARCH_FIELDS, Architecture


def parse_arch(text: str, teacher: Architecture) -> Architecture:
    """An architecture from `k=v,k=v` or a JSON file (e.g. one row of `search.py --dry-run --json`).

    `num_key_value_heads` and `head_dim` default to the teacher's; `params` and `name` are ignored.
    """
    path = Path(text).expanduser()
    if path.suffix == ".json" or path.is_file():
        values = read_json_object(path, "architecture file")
        values = {k: v for k, v in values.items() if k not in ("params", "name")}
    else:
        values = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                raise MinitronError(f"--arch part {part!r} is not key=value")
            values[key.strip()] = value.strip()
    unknown = sorted(set(values) - set(ARCH_FIELDS))
    if unknown:
        expected = ", ".join(ARCH_FIELDS)
        raise MinitronError(f"--arch: unknown field(s) {', '.join(unknown)}; expected {expected}")
    fields = {**{k: getattr(teacher, k) for k in ("num_key_value_heads", "head_dim")}, **values}
    missing = [k for k in ARCH_FIELDS if k not in fields]
    if missing:
        raise MinitronError(f"--arch is missing {', '.join(missing)}")
    try:
        return Architecture(**{k: int(v) for k, v in fields.items()})
    except (TypeError, ValueError):
        raise MinitronError(f"--arch values must be integers, got {values}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m minitron prune",
        description="Cut one architecture out of a teacher by importance; save a Hugging Face checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--arch",
        required=True,
        help="k=v list of num_hidden_layers, hidden_size, intermediate_size, num_attention_heads "
        "[, num_key_value_heads, head_dim], or a JSON file with those fields",
    )
    parser.add_argument(
        "--out", required=True, help="folder for the pruned checkpoint (must not exist or be empty)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    parser.add_argument(
        "--depth", default="block", choices=DEPTH_METHODS, help="how the layers to drop are chosen"
    )
    parser.add_argument(
        "--block",
        type=int,
        default=0,
        help="with --depth block: drop the contiguous block of the (N+1)-th least measured removal loss "
        "(0: the least; pruning.json lists the measured blocks)",
    )
    parser.add_argument(
        "--calibration-samples",
        type=int,
        default=field_defaults(ImportanceConfig)["num_samples"],
        help="calibration sequences for importance",
    )
    parser.add_argument(
        "--eval-sequences",
        default=str(VALIDATION_SEQUENCES),
        help="validation sequences for the zero-shot loss, or 'all', or 0 to skip",
    )
    add_common_options(parser, data_help="for calibration and the zero-shot loss: " + DATA_HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: _run(args), debug=args.debug)


def _run(args: Any) -> None:
    from minitron.atomic import publish, staging_dir
    from minitron.data.generated import teacher_identity
    from minitron.data.mix import load_tokens
    from minitron.eval.loss import zero_shot_loss
    from minitron.importance.cache import importance_for
    from minitron.importance.selection import check_prunable, select
    from minitron.model.architecture import Family, count_params
    from minitron.model.surgery import cut
    from minitron.model.teacher import load_teacher
    from minitron.runtime import Placement

    out = check_out_folder(args.out, args.overwrite)
    eval_n = non_negative_or_all("--eval-sequences", args.eval_sequences)
    cfg = ImportanceConfig(num_samples=args.calibration_samples, seq_len=args.seq_len)
    depth = DepthMethod(args.depth)
    # the selection checks these too, but only after minutes of calibration
    if args.block < 0:
        raise MinitronError(f"--block must be 0 or more, not {args.block}")
    if args.block and depth is not DepthMethod.BLOCK:
        raise MinitronError(f"--block {args.block} needs --depth block, not --depth {depth.value}")

    start = time.perf_counter()
    # importance on the GPU when there is one, in bf16 there (the student is saved in that dtype too)
    teacher = load_teacher(args.teacher, **Placement().teacher())
    teacher_arch = teacher.architecture
    arch = parse_arch(args.arch, teacher_arch)
    check_prunable(teacher_arch, arch)  # before minutes of calibration, not after
    family = Family.from_config(teacher.model.config)
    tokens = load_tokens(args.data, teacher.tokenizer, teacher_identity(args.teacher), lambda: teacher.model)
    importance = importance_for(
        teacher.model,
        tokens,
        cfg,
        block_sizes=depth.block_sizes([teacher_arch.num_hidden_layers - arch.num_hidden_layers]),
        name=args.teacher,
        tokenizer=teacher.tokenizer,
        depth_accuracy_items=200 if depth.needs_accuracy else 0,
    )
    selection = select(importance, arch, depth, args.block)
    model = cut(teacher.model, arch, selection)
    params = count_params(family, arch)
    share = params / count_params(family, teacher_arch)
    print(
        f"pruned {teacher_arch.short()} -> {arch.short()}: {params:,} parameters ({share:.1%} of the teacher)"
    )
    print(f"kept teacher layers {list(selection.layers)}")
    loss = None
    if eval_n != 0:
        report = zero_shot_loss(model, tokens, args.seq_len, eval_n)
        loss = {"loss": report.loss, "perplexity": report.perplexity, "tokens": report.tokens}
        print(
            f"zero-shot validation loss {report.loss:.4f} nats/token (perplexity {report.perplexity:.2f}, "
            f"{report.tokens:,} tokens)"
        )
    record = {
        "teacher": args.teacher,
        "teacher_architecture": teacher_arch.as_dict(),
        "architecture": arch.as_dict(),
        "params": params,
        "depth_method": depth.value,
        "block": args.block,
        "measured_blocks": _measured_blocks(importance, teacher_arch, arch, depth),
        "calibration": importance.meta.get("calibration"),
        "data": args.data,
        "selection": selection.summary(),
        "zero_shot_validation": loss,
        "seconds": round(time.perf_counter() - start, 1),
    }
    if out.exists() and not any(out.iterdir()):
        out.rmdir()
    with staging_dir(out) as tmp:
        model.save_pretrained(tmp)
        teacher.tokenizer.save_pretrained(tmp)
        (tmp / "pruning.json").write_text(json.dumps(record, indent=2))
        publish(tmp, out)  # with --overwrite, the old folder goes only once the new one is complete
    print(f"saved to {out}")


def _measured_blocks(
    importance: Importance, teacher: Architecture, arch: Architecture, depth: DepthMethod
) -> list[dict[str, Any]] | None:
    """With depth `block`: the measured contiguous blocks of the dropped size, least loss first, as
    {"layers": [first, last], "loss_increase": x} (what `--block N` chooses among); else None."""
    drop = teacher.num_hidden_layers - arch.num_hidden_layers
    if depth is not DepthMethod.BLOCK or drop == 0:
        return None
    losses = removal_losses(importance, drop)
    return [
        {"layers": [s, s + drop - 1], "loss_increase": round(float(losses[s]), 4)}
        for s in block_starts(importance, drop)
    ]
