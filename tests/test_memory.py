"""The memory plan: its parts, and its total against the measured peak of real probes."""

import json
import subprocess
import sys

import pytest

from minitron.model.architecture import Architecture, Family
from minitron.model.memory import training_memory
from tests.conftest import ROOT

LLAMA_8B = Family("llama", 128256, False)
MINITRON_4B_WIDTH = Architecture(32, 3072, 9216, 32, 8, 128)


def test_the_parts_of_the_plan():
    family = Family("llama", 49152, True)
    arch = Architecture(12, 576, 1536, 9, 3, 64)
    plain = training_memory(family, arch, 4, 256, bf16=False)
    mixed = training_memory(family, arch, 4, 256, bf16=True)
    params = 70_793_280
    assert (plain.weights, plain.gradients, plain.optimizer) == (4 * params, 4 * params, 8 * params)
    assert mixed.weights == 6 * params, "autocast keeps bf16 copies of the weights"
    assert mixed.activations < plain.activations and plain.teacher == 0
    doubled = training_memory(family, arch, 8, 256, bf16=True)
    assert doubled.activations == 2 * mixed.activations and doubled.weights == mixed.weights
    online = training_memory(
        family, arch, 4, 256, bf16=True, teacher_params=134_515_008, teacher_bytes_per_param=2
    )
    assert online.teacher == 134_515_008 * 2 + 4 * 256 * 49152 * 4


def test_a_minitron_4b_probe_does_not_fit_one_80_gb_gpu():
    """The published 4.5B width shape: 18 bytes per parameter before any activation (81 GB)."""
    plan = training_memory(LLAMA_8B, MINITRON_4B_WIDTH, 4, 256, bf16=True)
    assert plan.weights + plan.gradients + plan.optimizer == 18 * 4_512_746_496
    assert plan.total > 80 * 10**9


def test_a_sharded_retraining_holds_a_share_of_the_state_per_worker():
    """FSDP2 over 8 workers: each holds 1/8 of weights, gradients and AdamW state and of the batch,
    plus the full weights gathered at once (embeddings and head, two layers)."""
    one = training_memory(LLAMA_8B, MINITRON_4B_WIDTH, 8, 256, bf16=True, teacher_params=8_030_261_248,
                          teacher_bytes_per_param=2)  # fmt: skip
    eight = training_memory(LLAMA_8B, MINITRON_4B_WIDTH, 8, 256, bf16=True, teacher_params=8_030_261_248,
                            teacher_bytes_per_param=2, workers=8)  # fmt: skip
    params = 4_512_746_496
    embeddings = 2 * 128256 * 3072
    layer = (params - embeddings) // 32
    assert eight.gradients == params * 4 // 8 and eight.optimizer == params * 8 // 8
    assert eight.weights == params * 6 // 8 + (embeddings + 2 * layer) * 6
    assert eight.activations * 8 == one.activations
    assert eight.teacher < one.teacher, "the teacher is whole on every worker; only its logits shrink"
    assert eight.total < 0.85 * 80 * 2**30 < one.total, "fits an 80 GB GPU per worker; one process does not"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_the_plan_is_within_a_quarter_of_a_real_probes_peak(precision):
    """A 4-layer full-width student of the embedded teacher, probed for two steps in a fresh
    process (tests/memory_probe.py); measured 2026-11-29: estimate/peak 0.94 (bf16), 0.98 (fp32)."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.memory_probe", "4", "2", precision],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    row = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0.75 <= row["estimate"] / row["measured"] <= 1.25, row


def test_students_trained_together_hold_their_states_but_one_step_and_one_teacher():
    from minitron.model.memory import trained_together

    family = Family("llama", 49152, True)
    a = training_memory(
        family, Architecture(12, 576, 1536, 9, 3, 64), 4, 256, False, teacher_params=134_515_008
    )
    b = training_memory(
        family, Architecture(30, 432, 768, 9, 3, 48), 4, 256, False, teacher_params=134_515_008
    )
    both = trained_together([a, b])
    assert both.weights == a.weights + b.weights and both.optimizer == a.optimizer + b.optimizer
    assert both.gradients == max(a.gradients, b.gradients)
    assert both.activations == max(a.activations, b.activations) and both.teacher == a.teacher
    assert max(a.total, b.total) < both.total < a.total + b.total


def test_winners_share_a_teacher_pass_only_where_they_would_queue_and_fit():
    """The default search's two winners on a 2-CPU laptop: one place for a retraining task, so they
    go in lock-step; not with room to run both at once, not on cached targets, not sharded, not
    where they do not fit a task's memory together, and not where that memory is unknown."""
    import dataclasses

    from search.plan.memory_plan import Capacity
    from search.plan.space import load_space
    from search.plan.spec import RunSpec
    from search.run.winners import lockstep
    from tests.test_settings import default_run

    settings = default_run()
    space = load_space(settings.space)
    spec = RunSpec(settings, space)
    archs = [Architecture(12, 576, 1536, 9, 3, 64), Architecture(30, 432, 768, 9, 3, 48)]
    laptop = Capacity(24 * 2**30, "24 GiB")
    assert lockstep(spec, archs, 1, laptop)
    assert not lockstep(spec, archs[:1], 1, laptop)
    assert not lockstep(spec, archs, 2, laptop), "both can run at once"
    assert not lockstep(spec, archs, 1, None)
    assert not lockstep(spec, archs, 1, Capacity(2 * 2**30, "2 GiB"))
    cached = dataclasses.replace(settings, plan=dataclasses.replace(settings.plan, retrain_teacher="cached"))
    assert not lockstep(RunSpec(cached, space), archs, 1, laptop), "no teacher pass to share"
    sharded = dataclasses.replace(
        settings, resources=dataclasses.replace(settings.resources, retrain_workers=2)
    )
    assert not lockstep(RunSpec(sharded, space), archs, 1, laptop)


def test_the_dry_run_and_the_lockstep_decision_plan_from_the_same_settings():
    """`PlanSettings.of` is the one place a run's memory plan is read from its settings: batches and
    sequence length of its configs, the precision and teacher bytes of the device its trials get."""
    import dataclasses

    from minitron.runtime import DEFAULT_CPU_BF16
    from search.plan.memory_plan import PlanSettings
    from tests.test_settings import default_run

    settings = default_run()
    cpu = PlanSettings.of(settings)
    assert (cpu.probe_batch, cpu.retrain_batch, cpu.seq_len) == (
        settings.probe.batch_size, settings.retrain.batch_size, settings.seq_len
    )  # fmt: skip
    assert cpu.bf16 == DEFAULT_CPU_BF16 and cpu.teacher_bytes == 4 and cpu.online_teacher
    gpu = PlanSettings.of(
        dataclasses.replace(settings, resources=dataclasses.replace(settings.resources, gpus_per_trial=1.0))
    )
    assert gpu.bf16 and gpu.teacher_bytes == 2, "a GPU trial's teacher is bf16, whether or not one is here"
    fp32 = dataclasses.replace(
        settings,
        resources=dataclasses.replace(settings.resources, gpus_per_trial=1.0, retrain_workers=2),
        retrain=dataclasses.replace(
            settings.retrain, placement=dataclasses.replace(settings.retrain.placement, bf16=False)
        ),
    )
    planned = PlanSettings.of(fp32)
    assert not planned.bf16 and planned.teacher_bytes == 4 and planned.retrain_workers == 2
