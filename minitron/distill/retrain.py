"""Full retraining: long distillation with the teacher online, exact resume, final checkpoint.

`retrain(student, teacher, tokens, cfg, out, tokenizer)` trains for `cfg.tokens` tokens on the train
split (a seeded order, reshuffled per epoch), validates every `eval_every` steps and writes a
checkpoint every `checkpoint_every` steps into `out/checkpoint/`: student weights (safetensors),
optimizer state, RNG states, step, history and the job's identity. Killed at any point, the same
call resumes from the last checkpoint and ends with the same weights as an uninterrupted run. The
finished model is written to `out/` as a plain Hugging Face checkpoint (safetensors, config,
tokenizer) plus `provenance.json`, which is written last and marks the job complete.

Testing hook: with `MINITRON_KILL_AFTER_STEP=N` in the environment the process kills itself
(SIGKILL) right after the checkpoint of step N, as a crash would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from tqdm.auto import tqdm

from minitron.atomic import publish, staging_dir
from minitron.data.tokens import SEQ_LEN, TokenizedCorpus, pack
from minitron.distill.losses import IntermediateLoss, evenly_mapped_layers
from minitron.distill.step import Callback, History, LossWeights, Trainer, distillation_loss
from minitron.errors import MinitronError
from minitron.eval.loss import VALIDATION_SEQUENCES, validation_loss
from minitron.model.architecture import Architecture
from minitron.runtime import Placement, precision, show_progress


@dataclass(frozen=True)
class RetrainConfig:
    """Settings of a full retraining run; all of them are part of the job's identity."""

    tokens: int
    """Training tokens (rounded down to whole steps)."""
    seq_len: int = SEQ_LEN
    """Tokens per packed sequence."""
    batch_size: int = 4
    """Sequences per optimizer step."""
    lr: float = 2e-4
    """Peak learning rate (Minitron used 1e-4 at batch 1152 × 8192; small runs tolerate more)."""
    min_lr: float = 1e-5
    """Cosine decay floor."""
    warmup_steps: int = 40
    """Linear warm-up steps (Minitron: 40), capped at a tenth of the run."""
    weights: LossWeights = field(default_factory=LossWeights)
    """KD / CE mix and temperature; `kd=0` trains without a teacher."""
    intermediate: bool = False
    """Add the cosine loss on hidden states (helps heavily depth-pruned students)."""
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    eval_every: int = 50
    """Steps between validations."""
    eval_sequences: int = VALIDATION_SEQUENCES
    """Validation sequences (of `seq_len`) per validation."""
    checkpoint_every: int = 50
    """Steps between checkpoints."""
    seed: int = 0
    placement: Placement = field(default_factory=Placement)
    """Device, precision and CPU threads (only the precision is part of the job's identity)."""

    @property
    def steps(self) -> int:
        return self.tokens // (self.seq_len * self.batch_size)


@dataclass
class RetrainResult:
    """A finished run."""

    out: Path
    """Folder of the final Hugging Face checkpoint."""
    history: list[dict[str, float]]
    """One entry per validation: step, tokens, val_loss, train_loss."""
    provenance: dict[str, Any]
    """Everything written to `provenance.json`."""


class _Order:
    """Which packed sequences each step reads: a seeded permutation per epoch, derived from the step."""

    def __init__(self, count: int, seed: int) -> None:
        self.count, self.seed = count, seed
        self._epoch, self._perm = -1, np.arange(0)

    def rows(self, step: int, batch: int) -> np.ndarray:
        out = []
        for position in range(step * batch, (step + 1) * batch):
            epoch, index = divmod(position, self.count)
            if epoch != self._epoch:
                self._epoch, self._perm = (
                    epoch,
                    np.random.default_rng([self.seed, epoch]).permutation(self.count),
                )
            out.append(self._perm[index])
        return np.asarray(out)


def job_identity(cfg: RetrainConfig, student: Any, teacher_id: str, data_key: str) -> str:
    """A hash of everything that makes two runs the same job (resume only continues the same job)."""
    config = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "placement"}
    config["bf16"] = cfg.placement.bf16  # the precision changes the numbers; device and threads do not
    payload = {
        "config": config,
        "student": student.config.to_json_string(use_diff=False),
        "teacher": teacher_id,
        "data": data_key,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _layer_map(student: Any, teacher: Any, kept_layers: list[int] | None) -> list[tuple[int, int]]:
    s_layers, t_layers = student.config.num_hidden_layers, teacher.config.num_hidden_layers
    mapped = (
        kept_layers
        if kept_layers and len(kept_layers) == s_layers
        else evenly_mapped_layers(s_layers, t_layers)
    )
    # hidden_states[0] is the embedding output; layer i's output is hidden_states[i + 1]
    return [(i + 1, t + 1) for i, t in enumerate(mapped)]


def retrain(
    student: Any,
    teacher: Any | None,
    tokens: TokenizedCorpus,
    cfg: RetrainConfig,
    out: Path,
    tokenizer: Any,
    teacher_id: str = "",
    provenance: dict[str, Any] | None = None,
    kept_layers: list[int] | None = None,
    callback: Callback | None = None,
    progress: bool = True,
) -> RetrainResult:
    """Distill `student` (trained in place) and save it to `out`; resumes from `out/checkpoint/`."""
    wall_start = time.perf_counter()
    if cfg.weights.kd and teacher is None:
        raise MinitronError("a KD weight needs a teacher")
    steps = cfg.steps
    if steps < 1:
        raise MinitronError(
            f"--tokens {cfg.tokens:,} is less than one step of {cfg.batch_size} x {cfg.seq_len} tokens"
        )
    device, bf16 = cfg.placement.apply()
    train = pack(tokens.train, cfg.seq_len)
    validation = pack(tokens.validation, cfg.seq_len, cfg.eval_sequences)
    job = job_identity(cfg, student, teacher_id, tokens.key)
    out = Path(out)
    checkpoint = out / "checkpoint"

    student.to(device)
    if teacher is not None:
        teacher.to(device).eval()
    aux = None
    if cfg.intermediate and teacher is not None:
        aux = IntermediateLoss(
            student.config.hidden_size, teacher.config.hidden_size, _layer_map(student, teacher, kept_layers)
        ).to(device)
    params = [p for p in student.parameters() if p.requires_grad] + (list(aux.parameters()) if aux else [])
    warmup = min(cfg.warmup_steps, max(steps // 10, 1))
    trainer = Trainer(params, cfg, steps=steps, warmup=warmup, floor=cfg.min_lr)
    order = _Order(len(train), cfg.seed)

    state: dict[str, Any] = {"step": 0, "history": [], "seconds": 0.0}
    if (checkpoint / "state.json").exists():
        state = _load_checkpoint(checkpoint, job, student, trainer.optimizer, aux)
        print(f"resuming {out} at step {state['step']} of {steps}", flush=True)
    else:
        torch.manual_seed(cfg.seed)
    history = History(cfg.batch_size * cfg.seq_len, callback, state["history"])
    step = int(state["step"])
    session_start = time.perf_counter()

    def evaluate() -> None:
        history.validated(step, validation_loss(student, validation, cfg.batch_size, progress=False).loss)

    if step == 0 and not history.records:
        evaluate()  # the starting point, for the record
    bar = tqdm(total=steps, initial=step, desc="retrain", disable=not show_progress(progress), unit="step")
    student.train()
    while step < steps:
        rows = torch.from_numpy(order.rows(step, cfg.batch_size))
        input_ids = train[rows].to(device)
        want_states = aux is not None
        with precision(device, bf16):
            s_out = student(input_ids=input_ids, use_cache=False, output_hidden_states=want_states)
            t_out = None
            if teacher is not None and cfg.weights.kd:
                with torch.no_grad():
                    t_out = teacher(input_ids=input_ids, use_cache=False, output_hidden_states=want_states)
        loss, parts = distillation_loss(
            s_out.logits, input_ids, cfg.weights, teacher_logits=None if t_out is None else t_out.logits
        )
        if aux is not None and t_out is not None:
            inter = aux(s_out.hidden_states, t_out.hidden_states)
            # Minitron weighs the intermediate term to the size of the logit term
            loss = loss + (loss.detach() / inter.detach().clamp_min(1e-6)) * inter
            parts["intermediate"] = inter.item()
        trainer.step(step, loss)
        history.train_loss(parts["loss"])
        step += 1
        bar.update(1)
        if step % cfg.eval_every == 0 or step == steps:
            student.eval()
            evaluate()
            student.train()
        if step % cfg.checkpoint_every == 0 and step < steps:
            seconds = float(state["seconds"]) + time.perf_counter() - session_start
            _save_checkpoint(checkpoint, job, step, history.records, seconds, student, trainer.optimizer, aux)
            if os.environ.get("MINITRON_KILL_AFTER_STEP") == str(step):
                os.kill(os.getpid(), signal.SIGKILL)
    bar.close()
    student.eval()

    seconds = float(state["seconds"]) + time.perf_counter() - session_start
    record = {
        **(provenance or {}),
        "job": job,
        "teacher": teacher_id,
        "architecture": Architecture.from_mapping(student.config).as_dict(),
        "params": sum(p.numel() for p in student.parameters()),
        "retrain": {**dataclasses.asdict(cfg), "bf16_used": bf16, "device_used": str(device)},
        "data": tokens.key,
        "tokens_trained": steps * cfg.batch_size * cfg.seq_len,
        "history": history.records,
        "final_val_loss": history.records[-1]["val_loss"],
        "train_seconds": round(seconds, 1),
        "wall_seconds_this_session": round(time.perf_counter() - wall_start, 1),
        "versions": _versions(),
    }
    _save_final(out, student, tokenizer, record)
    return RetrainResult(out=out, history=history.records, provenance=record)


def _versions() -> dict[str, str]:
    import transformers

    import minitron

    return {
        "minitron": minitron.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }


def _save_checkpoint(
    folder: Path,
    job: str,
    step: int,
    history: list[dict[str, float]],
    seconds: float,
    student: Any,
    optimizer: torch.optim.Optimizer,
    aux: torch.nn.Module | None,
) -> None:
    """Everything needed to continue exactly, written atomically (a crash keeps the previous one)."""
    with staging_dir(folder) as tmp:
        save_model(student, str(tmp / "student.safetensors"))  # handles tied embeddings
        if aux is not None:
            save_file({k: v.contiguous() for k, v in aux.state_dict().items()}, str(tmp / "aux.safetensors"))
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save({"optimizer": optimizer.state_dict(), "rng": rng}, tmp / "optimizer.pt")
        state = {"job": job, "step": step, "history": history, "seconds": seconds}
        (tmp / "state.json").write_text(json.dumps(state, indent=2))
        publish(tmp, folder)


def _load_checkpoint(
    folder: Path, job: str, student: Any, optimizer: torch.optim.Optimizer, aux: torch.nn.Module | None
) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((folder / "state.json").read_text())
    if state.get("job") != job:
        raise MinitronError(
            f"{folder.parent} holds a checkpoint of a different job (other student, teacher, data or "
            "settings); choose another --out or pass --overwrite"
        )
    load_model(student, str(folder / "student.safetensors"), device=str(next(student.parameters()).device))
    if aux is not None:
        aux.load_state_dict(load_file(str(folder / "aux.safetensors")))
    # our own file, read without unpickling arbitrary objects
    saved = torch.load(folder / "optimizer.pt", weights_only=True, map_location="cpu")
    optimizer.load_state_dict(saved["optimizer"])
    torch.set_rng_state(saved["rng"]["torch"])
    if "cuda" in saved["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["rng"]["cuda"])
    return state


def _save_final(out: Path, student: Any, tokenizer: Any, record: dict[str, Any]) -> None:
    """Write the model files one by one (each atomically), `provenance.json` last; drop the checkpoint."""
    out.mkdir(parents=True, exist_ok=True)
    with staging_dir(out / "final") as tmp:
        student.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for file in sorted(tmp.iterdir()):
            os.replace(file, out / file.name)
        (tmp / "provenance.json").write_text(json.dumps(record, indent=2, default=str))
        os.replace(tmp / "provenance.json", out / "provenance.json")
    checkpoint = out / "checkpoint"
    if checkpoint.exists():
        import shutil

        shutil.rmtree(checkpoint)
