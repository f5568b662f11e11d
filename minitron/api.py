"""The library's Python API: its stages as functions, with the options as keyword arguments.

    from minitron import api

    pruned = api.prune(architecture={"num_hidden_layers": 20, "hidden_size": 432,
                                     "intermediate_size": 1024, "num_attention_heads": 9},
                       out="results/pruned-70m")
    print(pruned.params, pruned.share, pruned.kept_layers, pruned.zero_shot_loss)
    trained = api.distill(student=pruned.out, tokens="200k", out="results/distilled-70m")
    print(trained.val_loss_before, trained.val_loss_after, trained.test_loss, trained.test_losses)

Each function is the command of the same name (`python -m minitron prune|distill|correct`): a keyword
is its flag with `-` written `_` and has the flag's default (the commands read their defaults from
these signatures, which read them from the library's configs), the checks are the command's and
fail with the same one-line `MinitronError` (naming the flag), and it prints the lines the command
prints as it goes. Each returns a small frozen record of what it made. The search's API
(`search.api`) re-exports `prune` and `distill`.

May import: the library; never Ray, Optuna or the search.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minitron import codec
from minitron.commands.common import (
    check_folder_path,
    check_out_folder,
    check_positive_counts,
    non_negative_or_all,
)
from minitron.data.mix import DEFAULT_DATA
from minitron.data.tokens import SEQ_LEN
from minitron.distill.retrain import RetrainConfig
from minitron.distill.step import LossWeights
from minitron.errors import MinitronError
from minitron.eval.loss import VALIDATION_SEQUENCES
from minitron.importance.scores import ImportanceConfig
from minitron.importance.selection import DepthMethod
from minitron.model.arch_input import architecture_from, parse_arch
from minitron.model.architecture import Architecture
from minitron.model.teacher import DEFAULT_TEACHER
from minitron.pruning_record import (
    KeptUnits,
    PruningRecord,
    ZeroShotValidation,
    measured_blocks,
    read_pruning,
    write_pruning,
)

__all__ = ["DistillResult", "PruneResult", "PruningRecord", "correct", "distill", "parse_arch", "prune"]


@dataclass(frozen=True)
class PruneResult:
    """What `prune` made."""

    out: Path
    """The pruned Hugging Face checkpoint, with `pruning.json` (`record`) beside its config."""
    architecture: Architecture
    params: int
    share: float
    """`params` as a share of the teacher's parameters."""
    kept_layers: tuple[int, ...]
    """The teacher layers the student keeps: student layer i is teacher layer `kept_layers[i]`."""
    zero_shot_loss: float | None
    """Validation loss before any training (nats per token); None with `eval_sequences=0`."""
    record: PruningRecord
    """Everything `pruning.json` says."""


@dataclass(frozen=True)
class DistillResult:
    """What `distill` (or `correct`) made."""

    out: Path
    """The retrained Hugging Face checkpoint, with `provenance.json`."""
    architecture: Architecture
    params: int
    val_loss_before: float
    """Validation loss at the first step (nats per token)."""
    val_loss_after: float
    """Validation loss at the end."""
    test_loss: float
    """Loss on the test split, which nothing chose with."""
    test_losses: dict[str, float]
    """Test loss per part of a mix (`--data`), out-of-domain parts included; empty for one corpus."""
    tokens_trained: int


def prune(
    *,
    architecture: Architecture | Mapping[str, Any] | str,
    out: str | Path,
    teacher: str = DEFAULT_TEACHER,
    data: str = DEFAULT_DATA,
    depth: DepthMethod | str = DepthMethod.BLOCK,
    block: int = 0,
    calibration_samples: int = ImportanceConfig.num_samples,
    eval_sequences: int | str = VALIDATION_SEQUENCES,
    seq_len: int = SEQ_LEN,
    overwrite: bool = False,
) -> PruneResult:
    """Cut `architecture` out of `teacher` by importance and save it to `out` (`python -m minitron
    prune`): importance (cached per teacher and calibration data), selection, surgery, the zero-shot
    validation loss on `eval_sequences` sequences (`"all"`, or 0 to skip), a Hugging Face checkpoint
    with `pruning.json`.

    `architecture`: an `Architecture`, a mapping of its Hugging Face field names, or what `--arch`
    takes (`k=v,...` or a JSON file); `num_key_value_heads` and `head_dim` default to the teacher's.
    `depth` chooses the dropped layers; with `block` (or an `Architecture`'s `layer_block`) N, depth
    `block` drops the contiguous block of the (N+1)-th least measured removal loss. `out` must be
    absent or empty unless `overwrite`.
    """
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

    folder = check_out_folder(str(out), overwrite)
    eval_n = _eval_count(eval_sequences)
    cfg = ImportanceConfig(num_samples=calibration_samples, seq_len=seq_len)
    method = DepthMethod.parse(depth, "--depth")
    if isinstance(architecture, Architecture) and architecture.layer_block:
        block = block or architecture.layer_block  # as `select` reads it; recorded as `block`
        architecture = dataclasses.replace(architecture, layer_block=0)
    # the selection checks these too, but only after minutes of calibration
    if block < 0:
        raise MinitronError(f"--block must be 0 or more, not {block}")
    if block and method is not DepthMethod.BLOCK:
        raise MinitronError(f"--block {block} needs --depth block, not --depth {method.value}")

    start = time.perf_counter()
    # importance on the GPU when there is one, in bf16 there (the student is saved in that dtype too)
    source = load_teacher(teacher, **Placement().teacher())
    teacher_arch = source.architecture
    arch = architecture_from(architecture, teacher_arch)
    check_prunable(teacher_arch, arch)  # before minutes of calibration, not after
    family = Family.from_config(source.model.config)
    tokens = load_tokens(data, source.tokenizer, teacher_identity(teacher), lambda: source.model)
    importance = importance_for(
        source.model,
        tokens,
        cfg,
        block_sizes=method.block_sizes([teacher_arch.num_hidden_layers - arch.num_hidden_layers]),
        name=teacher,
        tokenizer=source.tokenizer,
        depth_accuracy_items=200 if method.needs_accuracy else 0,
    )
    selection = select(importance, arch, method, block)
    model = cut(source.model, arch, selection)
    params = count_params(family, arch)
    share = params / count_params(family, teacher_arch)
    print(
        f"pruned {teacher_arch.short()} -> {arch.short()}: {params:,} parameters ({share:.1%} of the teacher)"
    )
    print(f"kept teacher layers {list(selection.layers)}")
    loss = None
    if eval_n != 0:
        report = zero_shot_loss(model, tokens, seq_len, eval_n)
        loss = ZeroShotValidation(loss=report.loss, perplexity=report.perplexity, tokens=report.tokens)
        print(
            f"zero-shot validation loss {report.loss:.4f} nats/token (perplexity {report.perplexity:.2f}, "
            f"{report.tokens:,} tokens)"
        )
    record = PruningRecord(
        teacher=teacher,
        teacher_architecture=teacher_arch,
        architecture=arch,
        params=params,
        depth_method=method,
        block=block,
        measured_blocks=measured_blocks(importance, teacher_arch, arch, method),
        calibration=importance.meta.get("calibration"),
        data=data,
        selection=KeptUnits.of(selection),
        zero_shot_validation=loss,
        seconds=round(time.perf_counter() - start, 1),
    )
    if folder.exists() and not any(folder.iterdir()):
        folder.rmdir()
    with staging_dir(folder) as tmp:
        model.save_pretrained(tmp)
        source.tokenizer.save_pretrained(tmp)
        write_pruning(tmp, record)
        publish(tmp, folder)  # with overwrite, the old folder goes only once the new one is complete
    print(f"saved to {folder}")
    return PruneResult(
        out=folder,
        architecture=arch,
        params=params,
        share=share,
        kept_layers=record.selection.layers,
        zero_shot_loss=None if loss is None else loss.loss,
        record=record,
    )


def distill(
    *,
    student: str | Path,
    tokens: int | str,
    out: str | Path,
    teacher: str = DEFAULT_TEACHER,
    data: str = DEFAULT_DATA,
    seq_len: int = RetrainConfig.seq_len,
    batch_size: int = RetrainConfig.batch_size,
    micro_batch: int | None = RetrainConfig.micro_batch,
    lr: float = RetrainConfig.lr,
    min_lr: float = RetrainConfig.min_lr,
    ce_weight: float = LossWeights.ce,
    kd_weight: float = LossWeights.kd,
    temperature: float = LossWeights.temperature,
    intermediate: bool = RetrainConfig.intermediate,
    eval_every: int = RetrainConfig.eval_every,
    eval_sequences: int = RetrainConfig.eval_sequences,
    test_sequences: int = RetrainConfig.test_sequences,
    checkpoint_every: int = RetrainConfig.checkpoint_every,
    seed: int = RetrainConfig.seed,
    bf16: bool | None = None,
    threads: int | None = None,
    device: str | None = None,
    overwrite: bool = False,
) -> DistillResult:
    """Retrain the saved `student` by distillation from `teacher` for `tokens` tokens (`200k` or
    an int) and save it to `out` (`python -m minitron distill`): the teacher online, its full
    distribution; resumes when `out` holds a checkpoint of the same job.

    `kd_weight=0` trains on the data alone, without loading the teacher. With a `pruning.json` beside
    the student (`prune` made it), the hidden-state loss (`intermediate`) maps each student layer to
    the teacher layer it was cut from, and `provenance.json` records how it was cut. `bf16`: None
    for the device's default; `threads`: CPU threads (None: torch's); `device`: None for cuda when
    present. `overwrite` replaces `out` once the student, teacher and data are known to load.
    """
    import shutil

    from minitron.budget import parse_tokens
    from minitron.data.generated import teacher_identity
    from minitron.data.mix import load_tokens
    from minitron.distill.provenance import DistillOrigin
    from minitron.distill.retrain import retrain
    from minitron.model.fingerprint import model_fingerprint
    from minitron.model.teacher import load_teacher
    from minitron.runtime import Placement

    check_positive_counts(
        {
            "--seq-len": seq_len,
            "--batch-size": batch_size,
            "--micro-batch": micro_batch,
            "--eval-every": eval_every,
            "--eval-sequences": eval_sequences,
            "--test-sequences": test_sequences,
            "--checkpoint-every": checkpoint_every,
        }
    )
    if micro_batch is not None and batch_size % micro_batch:
        raise MinitronError(
            f"--micro-batch {micro_batch} does not divide --batch-size {batch_size}: a step accumulates "
            "whole micro-batches"
        )
    tokens_budget = parse_tokens(str(tokens), "--tokens")
    folder = Path(out).expanduser()
    check_folder_path(folder, "--out")
    student_dir = Path(student).expanduser()
    if (folder / "provenance.json").exists() and not overwrite:
        raise MinitronError(f"{folder} already holds a finished model; pass --overwrite to train again")
    if (
        folder.exists()
        and not overwrite
        and any(folder.iterdir())
        and not (folder / "checkpoint" / "state.json").exists()
    ):
        raise MinitronError(
            f"--out {folder} exists and is not a checkpoint of this command; choose another folder"
        )
    cfg = RetrainConfig(
        tokens=tokens_budget,
        seq_len=seq_len,
        batch_size=batch_size,
        micro_batch=micro_batch,
        lr=lr,
        min_lr=min_lr,
        weights=LossWeights(kd=kd_weight, ce=ce_weight, temperature=temperature),
        intermediate=intermediate,
        eval_every=eval_every,
        eval_sequences=eval_sequences,
        test_sequences=test_sequences,
        checkpoint_every=checkpoint_every,
        seed=seed,
        placement=Placement(device, bf16, threads),
    )
    trainee = load_teacher(str(student_dir))  # any checkpoint loads the same way; it is the student here
    source = load_teacher(teacher, **cfg.placement.teacher()) if kd_weight else None
    if source is not None and source.model.config.vocab_size != trainee.model.config.vocab_size:
        raise MinitronError(
            f"the student's vocabulary ({trainee.model.config.vocab_size}) differs from the teacher's "
            f"({source.model.config.vocab_size})"
        )

    def sampler() -> Any:  # the teacher's samples of a mix, when they are not cached yet
        return (source or load_teacher(teacher, **cfg.placement.teacher())).model

    corpus = load_tokens(data, trainee.tokenizer, teacher_identity(teacher), sampler)
    pruning = read_pruning(student_dir)
    if overwrite and folder.exists():  # only now that student, teacher and data are known to load
        shutil.rmtree(folder)
    kept = list(pruning.selection.layers) if pruning else None
    teacher_id = f"{teacher}:{model_fingerprint(source.model)}" if source is not None else ""
    result = retrain(
        trainee.model,
        source.model if source is not None else None,
        corpus,
        cfg,
        folder,
        trainee.tokenizer,
        teacher_id=teacher_id,
        provenance=DistillOrigin(
            student_source=str(student_dir),
            teacher_name=teacher,
            corpus=data,
            # how the student was cut (importance settings, kept layers), when `prune` made it
            pruning=_pruning_provenance(pruning),
        ),
        kept_layers=kept,
    )
    before, after = result.history[0].val_loss, result.history[-1].val_loss
    trained = result.provenance.tokens_trained
    print(
        f"validation loss before {before:.4f}, after {after:.4f} nats/token; test loss "
        f"{result.test_loss:.4f} ({trained:,} tokens); saved to {folder}"
    )
    return DistillResult(
        out=folder,
        architecture=Architecture.from_mapping(trainee.model.config),
        params=result.provenance.params,
        val_loss_before=before,
        val_loss_after=after,
        test_loss=result.test_loss,
        test_losses=dict(result.test_losses),
        tokens_trained=trained,
    )


def correct(
    *,
    tokens: int | str,
    out: str | Path,
    teacher: str = DEFAULT_TEACHER,
    data: str = DEFAULT_DATA,
    lr: float = 2e-5,
    min_lr: float = 2e-6,
    seq_len: int = RetrainConfig.seq_len,
    batch_size: int = RetrainConfig.batch_size,
    micro_batch: int | None = RetrainConfig.micro_batch,
    eval_every: int = RetrainConfig.eval_every,
    eval_sequences: int = RetrainConfig.eval_sequences,
    test_sequences: int = RetrainConfig.test_sequences,
    checkpoint_every: int = RetrainConfig.checkpoint_every,
    seed: int = RetrainConfig.seed,
    bf16: bool | None = None,
    threads: int | None = None,
    device: str | None = None,
    overwrite: bool = False,
) -> DistillResult:
    """Teacher correction (`python -m minitron correct`): fine-tune `teacher` on `data` for `tokens`
    tokens with plain next-token cross-entropy and a small learning rate (only adapt to the data),
    through `distill`; pass `out` as the teacher of `prune`, `distill` or the search afterwards."""
    return distill(
        student=teacher,
        tokens=tokens,
        out=out,
        teacher=teacher,
        data=data,
        seq_len=seq_len,
        batch_size=batch_size,
        micro_batch=micro_batch,
        lr=lr,
        min_lr=min_lr,
        ce_weight=1.0,
        kd_weight=0.0,
        eval_every=eval_every,
        eval_sequences=eval_sequences,
        test_sequences=test_sequences,
        checkpoint_every=checkpoint_every,
        seed=seed,
        bf16=bf16,
        threads=threads,
        device=device,
        overwrite=overwrite,
    )


def _eval_count(value: int | str) -> int | None:
    """`eval_sequences` of `prune`: a count, or None for `all`."""
    return non_negative_or_all("--eval-sequences", str(value))


def _pruning_provenance(pruning: PruningRecord | None) -> dict[str, Any] | None:
    """`pruning.json` as `provenance.json` keeps it: everything but the selection, and the kept layers."""
    if pruning is None:
        return None
    fields = {k: v for k, v in codec.encode(pruning).items() if k != "selection"}
    return fields | {"kept_layers": list(pruning.selection.layers)}
