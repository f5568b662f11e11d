"""Model cards for the retrained winners: each winner folder gets a Hugging Face `README.md`."""

from __future__ import annotations

from pathlib import Path

from minitron.atomic import write_text
from minitron.budget import format_budget, format_count
from minitron.distill.provenance import Provenance, WinnerOrigin
from minitron.eval.retention import format_retention
from minitron.model.architecture import Architecture
from minitron.model.card import model_card, teacher_origin
from search.outputs.quality import benchmark_table, domain_table, markdown, retention_table
from search.outputs.summary import Summary, WinnerRow
from search.plan.settings import Objective, SearchSettings, TeacherMode


def write_model_cards(summary: Summary, settings: SearchSettings) -> None:
    """Write `README.md` into every winner folder that holds a finished model."""
    origin = teacher_origin(settings.teacher)
    for winner in summary.winners:
        folder = Path(winner.result.path) if winner.result.path else None
        if folder is None or not (folder / "provenance.json").exists():
            continue
        provenance = Provenance.load(folder)
        arch = winner.architecture
        text = model_card(
            title=f"{arch.short()} ({format_count(winner.params or 0)} parameters), winner {winner.rank} of "
            f"search {summary.name}",
            origin=origin,
            teacher=settings.teacher,
            datasets=[settings.data],
            made=_how_it_was_made(summary, settings, winner, provenance),
            results=_results(summary, winner),
            tags=["minitron", "pruning", "knowledge-distillation", "minitron-search"],
        )
        write_text(folder / "README.md", text)


def _layers(provenance: Provenance) -> str:
    """Which teacher layers the winner kept, and which measured block it dropped if not the least."""
    origin = provenance.origin
    if not isinstance(origin, WinnerOrigin):
        return ""
    kept, block = origin.kept_layers, origin.layer_block
    rank = f", the contiguous block of rank {block} by removal loss (0: the least)" if block else ""
    return f" (it keeps teacher layers {', '.join(map(str, kept))}{rank})"


def _how_it_was_made(
    summary: Summary, settings: SearchSettings, winner: WinnerRow, provenance: Provenance
) -> list[str]:
    teacher = summary.teacher
    row = summary.candidate(winner.trial_id)
    probe = f", probe loss {row.trial.probe_loss:.4f}" if row and row.trial.probe_loss else ""
    retrain = settings.retrain
    return [
        f"Teacher: `{settings.teacher}`, {Architecture(**teacher.architecture).short()} "
        f"({format_count(teacher.params or 0)} parameters); this model keeps "
        f"{(winner.params or 0) / (teacher.params or 1):.1%} of them.",
        f"Importance: activations on {settings.importance.num_samples} calibration sequences of "
        f"{settings.seq_len} tokens from `{settings.data}`; layers dropped by the `{settings.plan.depth}` "
        f"method{_layers(provenance)}; heads, neurons and channels kept by score.",
        f"Search: {settings.plan.sampler} sampling of architectures within ±{(summary.band or 0):.0%} of "
        f"{_budget(summary)} parameters, each probed by distillation on up to "
        f"{settings.probe.tokens:,} tokens ({settings.plan.scheduler} scheduler); "
        f"ranked {row.rank if row else '?'} of "
        f"{len(summary.candidates)}{probe}{_point(summary, winner)}.",
        f"Retraining: forward KL to the teacher ({_source(settings)}) on "
        f"{provenance.tokens_trained:,} tokens of "
        f"`{settings.data}` (batch {retrain.batch_size} × {retrain.seq_len}, peak learning rate "
        f"{retrain.lr:g}, {_decay(retrain.decay_fraction)} to {retrain.min_lr:g})"
        f"{_continued(provenance)}; validation loss "
        f"{winner.result.final_loss:.4f}, test loss {_loss(winner.result.test_loss)} nats/token "
        "(the test split was never used to choose).",
        f"Search cost: {summary.cost.line().removeprefix('search cost: ')}.",
        *_gguf_files(Path(winner.result.path or ".")),
        "Full record: `provenance.json` beside this card.",
    ]


def _gguf_files(folder: Path) -> list[str]:
    """The GGUF files beside the checkpoint, for llama.cpp, Ollama and LM Studio."""
    files = sorted(folder.glob("*.gguf"))
    if not files:
        return []
    listed = ", ".join(f"`{f.name}` ({f.stat().st_size / 2**20:.0f} MiB)" for f in files)
    return [f"GGUF for llama.cpp: {listed}; tokenizer and chat template carried over from the teacher."]


def _decay(fraction: float) -> str:
    if fraction >= 1:
        return "cosine decay"
    return f"constant after the warm-up, then a cosine decay over the last {fraction:.0%} of steps"


def _continued(provenance: Provenance) -> str:
    """Where the first steps came from, when the retraining continued from the probe."""
    origin = provenance.continued_from
    if origin is None:
        return ""
    return (
        f"; its first {origin.tokens:,} tokens are its probe's (cached top-k teacher "
        "logits), continued from the probe's weights and optimizer state"
    )


def _point(summary: Summary, winner: WinnerRow) -> str:
    """Where on a range's front this winner was chosen."""
    point = winner.budget_point
    if point is None:
        return ""
    where = format_count(round(point)) if summary.objective is Objective.PARAMS else f"{point:.1f} ms"
    return f"; the best candidate at the {where} budget point of the front"


def _budget(summary: Summary) -> str:
    """The budget, or a range's ends and the objective its front traded the loss against."""
    budget = summary.budget or 0
    if summary.budget_low is None:
        return format_count(budget)
    return f"{format_budget(summary.budget_low, budget)} (a Pareto front against {summary.objective})"


def _results(summary: Summary, winner: WinnerRow) -> str:
    """Test loss per domain, the teacher-vs-this-model benchmark table (lm-eval's numbers) and
    this model's retention of the teacher's scores."""
    parts = []
    header, rows = domain_table(summary, [winner])
    if rows:
        header[-1] = "this model"
        parts.append(
            "Test loss per domain, nats per token (gap to the teacher in brackets; the part of weight 0 "
            f"was kept out of training and ranking):\n\n{markdown(header, rows)}"
        )
    table = benchmark_table(summary, {"teacher": "teacher", winner.trial_id: "this model"})
    if table:
        parts.append(f"lm-eval scores, 0-100 (change against the teacher in brackets):\n\n{table}")
    samples = summary.samples
    texts = samples.continuations if samples is not None else {}
    if samples is not None and "teacher" in texts and winner.trial_id in texts:
        rows = [
            [_cell(prompt), _cell(texts["teacher"][i]), _cell(texts[winner.trial_id][i])]
            for i, prompt in enumerate(samples.prompts)
        ]
        parts.append(
            "What it writes: greedy continuations of fixed prompts, the teacher's beside this model's:"
            f"\n\n{markdown(['prompt', 'teacher', 'this model'], rows, numbers=False)}"
        )
    kept = format_retention(retention_table(summary, winner))
    if kept:
        parts.append(
            "Retention of the teacher's scores, (this model − chance) ÷ (teacher − chance), with Wilson "
            f"95 % intervals over the items:\n\n{kept}"
        )
    return "\n".join(parts)


def _cell(text: str) -> str:
    """Text in one markdown table cell: pipes escaped, line breaks shown as `⏎`."""
    return text.replace("|", "\\|").replace("\r", "").replace("\n", " ⏎ ").strip()


def _loss(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.4f}"


def _source(settings: SearchSettings) -> str:
    if settings.plan.retrain_teacher is TeacherMode.CACHED:
        return f"its {settings.plan.probe_top_k} largest logits per position, cached"
    return "run online, full distribution"
