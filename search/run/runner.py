"""The search, stage by stage: teacher → importance → teacher targets → Ray Tune → latency →
retraining of the winners → benchmarks → GGUF files → text samples → report. Everything a stage
produces lands in the run directory, so `--resume` reads finished stages back and re-does only the
work that was in flight.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from minitron.atomic import write_json
from minitron.budget import format_budget
from minitron.data.tokens import TokenizedCorpus, pack
from minitron.distill.sources import training_windows
from minitron.distill.targets import TeacherTargets, compute_targets
from minitron.errors import Interrupted
from minitron.eval.benchmarks import check_data
from minitron.export.llamacpp import require as require_llama_cpp
from minitron.export.llamacpp import runtime_quant
from minitron.faults import kill_point
from minitron.importance.cache import importance_for, importance_missing
from minitron.importance.scores import Importance
from minitron.model.teacher import Teacher, load_teacher, load_tokenizer
from minitron.runtime import machine_description, release_accelerator_memory
from search.outputs.quality import domain_table, markdown
from search.outputs.records import TrialLog, TrialRecord, rank, with_latency, with_names
from search.outputs.rundir import RunDir, check_run_dir, create_run_dir
from search.outputs.summary import Summary, TeacherRecord, WinnerResult, build_summary, print_result
from search.plan.candidates import Candidate, feasible
from search.plan.corpus import check_corpus
from search.plan.front import seeded_shapes
from search.plan.settings import SETTINGS_FORMAT, SearchSettings
from search.plan.space import (
    KnownArchitecture,
    SearchSpace,
    check_teacher_matches,
    load_space,
    with_layer_blocks,
)
from search.run.artifacts import write_gguf_files, write_samples
from search.run.data import measure_teacher, run_tokens
from search.run.selection import choose_winners, range_winners
from search.run.stages import Stage, run_stages
from search.run.timebudget import calibrate, estimate, eta, print_budget
from search.run.winners import lockstep_expected, retrain_winners


@dataclass
class Context:
    """What the stages of one run hand on to each other."""

    run: RunDir
    settings: SearchSettings
    space: SearchSpace
    candidates: list[Candidate]
    resume: bool
    overwrite: bool
    teacher: Teacher | None = None
    tokens: TokenizedCorpus | None = None
    validation: torch.Tensor | None = None
    test: torch.Tensor | None = None
    teacher_record: TeacherRecord | None = None
    importance: Importance | None = None
    targets: TeacherTargets | None = None
    trials: list[TrialRecord] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    dashboard: str | None = None
    finals: dict[str, WinnerResult] = field(default_factory=dict)
    seeds: list[KnownArchitecture] = field(default_factory=list)
    """Shapes probed first: the space's known ones in the budget band or range, and a range's hand
    shapes at its budget points (`search.plan.front`); their names mark them in the report."""
    benchmarks: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    estimates: dict[str, float] = field(default_factory=dict)
    """Seconds each stage still to run was estimated to take (`search.run.timebudget`)."""
    started: float = field(default_factory=time.perf_counter)

    @property
    def teacher_spec(self) -> str:
        """A spec trial processes can load: local paths made absolute (Tune changes working directories)."""
        path = Path(self.settings.teacher).expanduser()
        return str(path.resolve()) if path.exists() else self.settings.teacher

    def __post_init__(self) -> None:
        settings, space = self.settings, self.space
        if settings.budget_low is not None:
            self.seeds = seeded_shapes(space, settings.budget_low, settings.budget, settings.plan.top_k)
        else:
            feasible_now = {c.arch for c in self.candidates}
            self.seeds = [k for k in space.known if k.arch in feasible_now]

    @property
    def winners(self) -> list[TrialRecord]:
        return [record for record, _ in self.winners_at]

    @property
    def winners_at(self) -> list[tuple[TrialRecord, float | None]]:
        """The winners, each with its budget point (None for one budget): the best `top_k` by probe
        loss for one budget; along the front, one per budget point, for a range."""
        settings = self.settings
        if settings.budget_low is None:
            return [(r, None) for r in choose_winners(rank(self.trials), settings.plan.top_k)]
        return range_winners(settings, self.space.band, self.trials)


def _teacher(ctx: Context, done: bool) -> None:
    """Everything the input decides is checked before the run directory is written: a bad teacher,
    corpus, benchmark asset or cluster costs seconds and leaves nothing behind."""
    settings, run = ctx.settings, ctx.run
    if settings.eval.tasks:
        check_data(settings.eval.tasks)
    if runtime_quant(settings.plan.latency_runtime):  # a resumed run on a machine without llama.cpp
        require_llama_cpp()
    if settings.resources.address:  # attach first: an unreachable cluster fails before the teacher loads
        from search.run.ray_runtime import start_ray

        ctx.dashboard = start_ray(settings.resources)
    # A resumed run whose teacher work is all on disk needs only the tokenizer, not the weights.
    teacher_work = (run.teacher, run.importance / "importance.json", run.targets / "targets.json")
    if ctx.resume and all(path.exists() for path in teacher_work):
        tokenizer, config = load_tokenizer(settings.teacher, settings.trust_remote_code)
    else:
        # on the trials' kind of device, in its dtype there (bf16 on a GPU): see `teacher_dtype`
        options = settings.teacher_options()
        ctx.teacher = load_teacher(settings.teacher, **options, **settings.teacher_placement())
        tokenizer, config = ctx.teacher.tokenizer, ctx.teacher.model.config
    check_teacher_matches(ctx.space, settings.teacher, config)
    # the teacher's samples of a mix, when not cached: drawn by the teacher (loaded for them on resume)
    loaded = ctx.teacher
    place = {**settings.teacher_options(), **settings.teacher_placement()}
    model = (lambda: loaded.model) if loaded else (lambda: load_teacher(settings.teacher, **place).model)
    tokens = run_tokens(settings, tokenizer, model)
    check_corpus(tokens, settings)
    if not ctx.resume:
        saved = {
            "format": SETTINGS_FORMAT,
            "settings": settings.to_json(),
            "space": {"name": ctx.space.name, "path": str(ctx.space.path), "band": ctx.space.band},
            "feasible_candidates": len(ctx.candidates),
            "created": datetime.datetime.now().isoformat(timespec="seconds"),
        }
        create_run_dir(run, saved, ctx.overwrite)
    print(
        f"[search] run directory {run.root}; {len(ctx.candidates)} feasible candidates at "
        f"{format_budget(*settings.bounds)} ±{ctx.space.band:.0%}",
        flush=True,
    )
    ctx.tokens = tokens
    ctx.validation = pack(tokens.validation, settings.seq_len, settings.plan.validation_sequences)
    ctx.test = pack(tokens.test, settings.seq_len, settings.retrain.test_sequences)
    if run.teacher.exists():
        ctx.teacher_record = TeacherRecord.load(run.teacher)
    else:
        assert ctx.teacher is not None
        ctx.teacher_record = measure_teacher(ctx.teacher, ctx.validation, ctx.test, tokens)
        write_json(run.teacher, ctx.teacher_record.to_json())
    _time_budget(ctx)


def _time_budget(ctx: Context) -> None:
    """Estimate the stages still to run from a short calibration on this machine, and print them."""
    assert ctx.teacher_record is not None and ctx.validation is not None
    todo = {stage.name for stage in STAGES if not stage.done(ctx)} - {"teacher"}
    teacher = ctx.teacher.model if ctx.teacher is not None else None
    width, sizes = False, list[int]()
    if teacher is not None and "importance" in todo:
        assert ctx.tokens is not None
        width, sizes = importance_missing(teacher, ctx.tokens, ctx.settings.importance, _block_sizes(ctx))
    bf16 = ctx.settings.probe.placement.bf16_on()
    rate = calibrate(teacher, ctx.validation[: ctx.settings.probe.batch_size], bf16)
    student = round(sum(c.params for c in ctx.candidates) / max(len(ctx.candidates), 1))
    teacher_params = ctx.teacher_record.params or 0
    together = lockstep_expected(ctx.settings, ctx.space, [c.arch for c in ctx.candidates])
    ctx.estimates = estimate(ctx.settings, teacher_params, student, (width, len(sizes)), rate, todo, together)
    print_budget(ctx.estimates, rate, student)


def _block_sizes(ctx: Context) -> list[int]:
    """The block sizes of depth losses the candidates need."""
    assert ctx.teacher is not None
    total = ctx.teacher.architecture.num_hidden_layers
    return ctx.settings.plan.depth.block_sizes(total - c.arch.num_hidden_layers for c in ctx.candidates)


def _importance(ctx: Context, done: bool) -> None:
    """The teacher's importance, pinned in the run directory: a resumed run (on this machine or
    another, whatever its precision) uses exactly the scores its earlier trials used."""
    if done:
        ctx.importance = Importance.load(ctx.run.importance)
        return
    assert ctx.teacher is not None and ctx.tokens is not None
    settings = ctx.settings
    depth = settings.plan.depth
    importance = importance_for(
        ctx.teacher.model,
        ctx.tokens,
        settings.importance,
        block_sizes=_block_sizes(ctx),
        name=settings.teacher,
        tokenizer=ctx.teacher.tokenizer,
        depth_accuracy_items=settings.plan.depth_accuracy_items if depth.needs_accuracy else 0,
    )
    importance.save(ctx.run.importance)
    ctx.importance = importance


def _targets(ctx: Context, done: bool) -> None:
    if done:
        ctx.targets = TeacherTargets.load(ctx.run.targets)
        ctx.teacher = None
        release_accelerator_memory()
        return
    assert ctx.teacher is not None and ctx.tokens is not None
    settings = ctx.settings
    # Probes read the first sequences of the seeded training order, a winner's retraining as many as
    # its tokens need: one cache serves both.
    train = pack(ctx.tokens.train, settings.seq_len)
    ids = training_windows(train, settings.target_sequences, seed=settings.seed)
    targets = compute_targets(
        ctx.teacher.model,
        ids,
        bf16=settings.probe.placement.apply()[1],
        k=settings.plan.probe_top_k,
        meta={"teacher": settings.teacher, "seed": settings.seed, "tokens": ctx.tokens.key},
    )
    kill_point("targets")
    targets.save(ctx.run.targets)
    ctx.targets = targets
    ctx.teacher = None  # trials and winners load their own copy
    release_accelerator_memory()


def _search(ctx: Context, done: bool) -> None:
    names = {k.arch: k.name for k in ctx.seeds}
    if done:
        ctx.trials = with_names(list(TrialLog(ctx.run.trials).records.values()), names)
        ctx.rejected = _read_json(ctx.run.searcher)
        return
    from search.run.ray_runtime import start_ray  # Ray is imported only once the search really starts
    from search.run.tuning import run_tune

    assert ctx.importance is not None and ctx.targets is not None and ctx.validation is not None
    ctx.dashboard = start_ray(ctx.settings.resources)
    if ctx.seeds:
        print(f"[search] probing first: {', '.join(k.name for k in ctx.seeds)}", flush=True)
    log, ctx.rejected = run_tune(
        ctx.run,
        ctx.settings,
        ctx.space,
        ctx.importance,
        ctx.targets,
        ctx.validation,
        ctx.teacher_spec,
        ctx.candidates,
        [k.arch for k in ctx.seeds],
    )
    ctx.trials = with_names(list(log.records.values()), names)


def _latency(ctx: Context, done: bool) -> None:
    """Every probed candidate timed in turn with the teacher on one worker (`search.run.latency`); the
    trials then carry those latencies and speed-ups, the teacher record its own."""
    if not done:
        from search.run.latency import measure_run

        assert ctx.importance is not None and ctx.validation is not None
        seq_len = int(ctx.validation.shape[1])
        measured, ctx.dashboard = measure_run(
            ctx.settings, ctx.teacher_spec, ctx.importance, ctx.trials, seq_len
        )
        write_json(ctx.run.latency, measured)
    measured = _read_json(ctx.run.latency)
    ctx.trials = with_latency(ctx.trials, measured)
    assert ctx.teacher_record is not None
    teacher = measured.get("teacher") or {}
    if teacher and ctx.teacher_record.latency_ms != teacher.get("latency_ms"):
        ctx.teacher_record = dataclasses.replace(ctx.teacher_record, **teacher)
        write_json(ctx.run.teacher, ctx.teacher_record.to_json())


def _retrain(ctx: Context, done: bool) -> None:
    """Reads finished winners back (and retrains the rest) whether or not the stage is done."""
    assert ctx.importance is not None
    ctx.finals = retrain_winners(
        ctx.run, ctx.settings, ctx.space, ctx.teacher_spec, ctx.importance, ctx.winners, ctx.targets
    )


def _benchmarks(ctx: Context, done: bool) -> None:
    """Reads the scores written earlier (and computes the rest) whether or not the stage is done."""
    from search.run.benchmarks import run_benchmarks

    ctx.benchmarks = run_benchmarks(ctx.run, ctx.settings, ctx.teacher_spec, ctx.finals)


def _gguf(ctx: Context, done: bool) -> None:
    if not done and ctx.settings.gguf:
        write_gguf_files(ctx.settings, ctx.finals)


def _samples(ctx: Context, done: bool) -> None:
    if not done:
        write_samples(ctx.run, ctx.settings, ctx.finals, ctx.teacher)


def _report(ctx: Context, done: bool) -> None:
    from search.outputs.cards import write_model_cards
    from search.outputs.report import write_report

    run, settings = ctx.run, ctx.settings
    assert ctx.teacher_record is not None
    summary = build_summary(
        name=settings.name,
        budget=settings.budget,
        band=ctx.space.band,
        space=str(ctx.space.path),
        teacher=ctx.teacher_record,
        settings={**settings.to_json(), "dashboard": ctx.dashboard},
        probe_budget=settings.probe_budget,
        ranking=rank(ctx.trials),
        winners=ctx.winners,
        budget_points={r.trial_id: p for r, p in ctx.winners_at if p is not None},
        budget_low=settings.budget_low,
        objective=settings.plan.objective,
        samples=_read_json(run.samples) or None,
        finals=ctx.finals,
        benchmarks=ctx.benchmarks,
        rejected=ctx.rejected,
        stages=ctx.timings,
        seconds=time.perf_counter() - ctx.started,
        run_dir=run.root,
        estimated_stages=ctx.estimates,
        machine=machine_description(),
    )
    write_model_cards(summary, settings)
    write_json(run.summary, summary.to_json())
    kill_point("report")
    write_report(run.root, summary)


def _after(ctx: Context, stage: str, done: bool) -> None:
    """The ETA once a stage that was estimated has finished (and there is more to come)."""
    if not done and stage in ctx.estimates:
        print(eta(ctx.estimates, ctx.timings, ctx.started), flush=True)


def _finished(ctx: Context, stage: str) -> bool:
    return ctx.run.is_run() and stage in ctx.run.finished_stages()


def _read_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text())) if path.exists() else {}


STAGES: list[Stage[Context]] = [
    Stage("teacher", _teacher, lambda ctx: False),  # loads what later stages need, every session
    Stage("importance", _importance, lambda ctx: (ctx.run.importance / "importance.json").exists()),
    Stage("teacher targets", _targets, lambda ctx: (ctx.run.targets / "targets.json").exists()),
    Stage("search", _search, lambda ctx: _finished(ctx, "search")),
    Stage("latency", _latency, lambda ctx: ctx.run.latency.exists()),
    Stage("retrain winners", _retrain, lambda ctx: _finished(ctx, "retrain winners")),
    Stage("benchmarks", _benchmarks, lambda ctx: _finished(ctx, "benchmarks")),
    Stage("gguf", _gguf, lambda ctx: _finished(ctx, "gguf")),
    Stage("samples", _samples, lambda ctx: ctx.run.samples.exists()),
    Stage("report", _report, lambda ctx: False),  # cheap, and always reflects everything on disk
]


def run_search(settings: SearchSettings, resume: bool = False, overwrite: bool = False) -> Path:
    """Run (or resume) a whole search; returns the run directory.

    Ctrl-C (or SIGTERM, see search.py) becomes `Interrupted`, whose message says how to resume:
    every finished piece of work is already on disk (trials, importance, winners, scores)."""
    run = RunDir(Path(settings.out).expanduser().resolve() / settings.name)  # Tune needs absolute paths
    space = with_layer_blocks(load_space(settings.space), settings.plan.layer_blocks)
    ctx = Context(
        run, settings, space, feasible(space, settings.budget, settings.budget_low), resume, overwrite
    )
    check_run_dir(run, resume, overwrite)
    try:
        run_stages(STAGES, ctx, run, ctx.timings, after=lambda name, done: _after(ctx, name, done))
    except KeyboardInterrupt:
        if run.is_run():
            raise Interrupted(
                f"interrupted; the finished work is kept in {run.root}: continue with "
                f"python search.py --resume {run.root}"
            ) from None
        raise Interrupted("interrupted before the run directory was written; nothing was kept") from None
    summary = Summary.load(run.summary)
    print_result(summary, run.report)
    print(markdown(*domain_table(summary)))
    return run.root
