"""`python -m minitron distill`: retrain a saved student by distillation from a teacher.

    python -m minitron distill --student results/pruned-69m --teacher smollm2-135m \\
        --tokens 200000 --out results/distilled-69m

Runs the full-retraining path (teacher online, full distribution), prints the validation loss
before and after and the test loss after, and resumes when `--out` holds a checkpoint of the same
job.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from minitron.commands.common import (
    DATA_HELP,
    add_common_options,
    check_folder_path,
    config_from_args,
    field_defaults,
    run_command,
)
from minitron.errors import MinitronError


def build_parser() -> argparse.ArgumentParser:
    from minitron.distill.retrain import RetrainConfig
    from minitron.distill.step import LossWeights

    d, w = field_defaults(RetrainConfig), field_defaults(LossWeights)
    parser = argparse.ArgumentParser(
        prog="python -m minitron distill",
        description="Distill a saved student from a teacher (full retraining, resumable).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--student", required=True, help="student checkpoint folder (e.g. from python -m minitron prune)"
    )
    parser.add_argument("--tokens", required=True, help="training tokens, e.g. 200k or 2M")
    parser.add_argument("--out", required=True, help="folder for checkpoints and the final model")
    parser.add_argument("--overwrite", action="store_true", help="start over even if --out holds another job")
    add_common_options(parser, data_help=DATA_HELP)
    parser.add_argument("--batch-size", type=int, default=d["batch_size"], help="sequences per step")
    parser.add_argument("--lr", type=float, default=d["lr"], help="peak learning rate")
    parser.add_argument(
        "--min-lr", type=float, default=d["min_lr"], help="final learning rate of the cosine decay"
    )
    parser.add_argument("--ce-weight", type=float, default=w["ce"], help="weight of next-token cross-entropy")
    parser.add_argument("--kd-weight", type=float, default=w["kd"], help="weight of the KL to the teacher")
    parser.add_argument("--temperature", type=float, default=w["temperature"], help="KD softmax temperature")
    parser.add_argument("--intermediate", action="store_true", help="add the hidden-state cosine loss")
    parser.add_argument("--eval-every", type=int, default=d["eval_every"], help="steps between validations")
    parser.add_argument(
        "--eval-sequences", type=int, default=d["eval_sequences"], help="validation sequences per validation"
    )
    parser.add_argument(
        "--checkpoint-every", type=int, default=d["checkpoint_every"], help="steps between checkpoints"
    )
    parser.add_argument("--seed", type=int, default=d["seed"], help="seed of the data order and training")
    parser.add_argument("--bf16", choices=["auto", "on", "off"], default="auto", help="bf16 autocast")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if present)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: _run(args), debug=args.debug)


def _run(args: argparse.Namespace) -> None:
    import shutil

    from minitron.budget import parse_tokens
    from minitron.data.generated import teacher_identity
    from minitron.data.mix import load_tokens
    from minitron.distill.retrain import RetrainConfig, retrain
    from minitron.distill.step import LossWeights
    from minitron.model.fingerprint import model_fingerprint
    from minitron.model.teacher import load_teacher
    from minitron.runtime import Placement

    tokens_budget = parse_tokens(args.tokens, "--tokens")
    out = Path(args.out).expanduser()
    check_folder_path(out, "--out")
    student_dir = Path(args.student).expanduser()
    if (out / "provenance.json").exists() and not args.overwrite:
        raise MinitronError(f"{out} already holds a finished model; pass --overwrite to train again")
    if (
        out.exists()
        and not args.overwrite
        and any(out.iterdir())
        and not (out / "checkpoint" / "state.json").exists()
    ):
        raise MinitronError(
            f"--out {out} exists and is not a checkpoint of this command; choose another folder"
        )
    cfg = config_from_args(
        RetrainConfig,
        args,
        tokens=tokens_budget,
        weights=LossWeights(kd=args.kd_weight, ce=args.ce_weight, temperature=args.temperature),
        placement=Placement(args.device, {"auto": None, "on": True, "off": False}[args.bf16], args.threads),
    )
    student = load_teacher(str(student_dir))  # any checkpoint loads the same way; it is the student here
    teacher = load_teacher(args.teacher, **cfg.placement.teacher()) if args.kd_weight else None
    if teacher is not None and teacher.model.config.vocab_size != student.model.config.vocab_size:
        raise MinitronError(
            f"the student's vocabulary ({student.model.config.vocab_size}) differs from the teacher's "
            f"({teacher.model.config.vocab_size})"
        )
    sampler = (lambda: teacher.model) if teacher is not None else None  # the teacher's samples of a mix
    tokens = load_tokens(args.data, student.tokenizer, teacher_identity(args.teacher), sampler)
    if args.overwrite and out.exists():  # only now that student, teacher and data are known to load
        shutil.rmtree(out)
    pruning_file = student_dir / "pruning.json"
    pruning = json.loads(pruning_file.read_text()) if pruning_file.exists() else None
    kept = pruning["selection"]["layers"] if pruning else None
    teacher_id = f"{args.teacher}:{model_fingerprint(teacher.model)}" if teacher is not None else ""
    result = retrain(
        student.model,
        teacher.model if teacher is not None else None,
        tokens,
        cfg,
        out,
        student.tokenizer,
        teacher_id=teacher_id,
        provenance={
            "student_source": str(student_dir),
            "teacher_name": args.teacher,
            "corpus": args.data,
            # how the student was cut (importance settings, kept layers), when `minitron prune` made it
            "pruning": {k: v for k, v in pruning.items() if k != "selection"} | {"kept_layers": kept}
            if pruning
            else None,
        },
        kept_layers=kept,
    )
    before, after = result.history[0]["val_loss"], result.history[-1]["val_loss"]
    print(
        f"validation loss before {before:.4f}, after {after:.4f} nats/token; test loss "
        f"{result.test_loss:.4f} ({result.provenance['tokens_trained']:,} tokens); saved to {out}"
    )
