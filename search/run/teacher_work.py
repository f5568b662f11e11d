"""The stages that run the teacher in the driver: its record (shape, size, losses), its importance
and its targets for the probes. Each is pinned in the run directory, so a resumed run (on this
machine or another, whatever its precision) reads back exactly what its earlier stages used.
"""

from __future__ import annotations

from minitron.distill.sources import training_windows
from minitron.distill.targets import TeacherTargets, compute_targets
from minitron.faults import kill_point
from minitron.importance.cache import importance_for
from minitron.importance.scores import Importance
from minitron.model.teacher import Teacher
from search.outputs.outcomes import TeacherRecord
from search.outputs.rundir import RunDir
from search.plan.spec import RunSpec
from search.run.data import measure_teacher
from search.run.preflight import Inputs


def block_sizes(spec: RunSpec, teacher: Teacher) -> list[int]:
    """The block sizes of depth losses the candidates need."""
    total = teacher.architecture.num_hidden_layers
    return spec.settings.plan.depth.block_sizes(total - c.arch.num_hidden_layers for c in spec.candidates)


def teacher_record(spec: RunSpec, run: RunDir, inputs: Inputs) -> TeacherRecord:
    """The teacher's shape, size and losses on the run's validation, test and per-part test
    sequences (`teacher.json`; its speed comes from the latency stage)."""
    if run.teacher.exists():
        return TeacherRecord.load(run.teacher)
    assert inputs.teacher is not None, "preflight loads the teacher while its work is left"
    test_sequences = spec.settings.retrain.test_sequences
    record = measure_teacher(inputs.teacher, inputs.validation, inputs.test, inputs.tokens, test_sequences)
    record.save(run.teacher)
    return record


def importance(spec: RunSpec, run: RunDir, inputs: Inputs) -> Importance:
    """The teacher's importance (width scores and the depth losses the candidates need), computed
    on the calibration split (cached per teacher and data) and saved in the run directory."""
    assert inputs.teacher is not None, "preflight loads the teacher while its work is left"
    settings, teacher = spec.settings, inputs.teacher
    depth = settings.plan.depth
    scores = importance_for(
        teacher.model,
        inputs.tokens,
        settings.importance,
        block_sizes=block_sizes(spec, teacher),
        name=settings.teacher,
        tokenizer=teacher.tokenizer,
        depth_accuracy_items=settings.plan.depth_accuracy_items if depth.needs_accuracy else 0,
    )
    scores.save(run.importance)
    return scores


def targets(spec: RunSpec, run: RunDir, inputs: Inputs) -> TeacherTargets:
    """The teacher's top-k logits over the first sequences of the seeded training order: the
    probes read them from the start, and a winner retrained on cached targets as many as its tokens
    need, so one cache serves both."""
    assert inputs.teacher is not None, "preflight loads the teacher while its work is left"
    settings = spec.settings
    from minitron.data.tokens import pack

    train = pack(inputs.tokens.train, settings.seq_len)
    ids = training_windows(train, settings.tokens.target_sequences, seed=settings.seed)
    computed = compute_targets(
        inputs.teacher.model,
        ids,
        bf16=settings.probe.placement.apply()[1],
        k=settings.plan.probe_top_k,
        meta={"teacher": settings.teacher, "seed": settings.seed, "tokens": inputs.tokens.key},
    )
    kill_point("targets")
    computed.save(run.targets)
    return computed
