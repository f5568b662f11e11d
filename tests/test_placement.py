"""Where and in what dtype the teacher's stages run: what the settings say, on any machine.

On a GPU the teacher is loaded once per process straight onto it in bf16 (its storage dtype); on the
CPU in fp32. Here there is no GPU, so the choice is checked by asking each entry point what it
would load (a stand-in for `load_teacher` that records its arguments: only the placement is under
test), and the stages themselves are run on a bf16-weight teacher on the CPU to check that the
numerics that need fp32 get it.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from minitron.distill.targets import compute_targets
from minitron.eval.loss import validation_loss
from minitron.importance.cache import importance_dir, importance_for
from minitron.importance.scores import ImportanceConfig
from minitron.model.speed import measure_speed
from minitron.runtime import Placement, teacher_dtype
from search.run.latency import measure_latencies
from tests.tiny import tiny_batches, tiny_model


def test_teacher_dtype_is_bf16_on_accelerators_and_fp32_on_cpus():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert teacher_dtype(cuda, None) is torch.bfloat16
    assert teacher_dtype(cuda, True) is torch.bfloat16
    assert teacher_dtype(cuda, False) is torch.float32  # bf16 switched off: fp32 weights
    for bf16 in (None, True, False):  # AVX2 has no bf16 matmuls; native-bf16 CPUs use autocast
        assert teacher_dtype(cpu, bf16) is torch.float32


@pytest.mark.parametrize("gpu", [False, True])
def test_placement_names_the_device_and_dtype(monkeypatch, gpu):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    assert Placement().teacher() == (
        {"device": torch.device("cuda"), "dtype": torch.bfloat16}
        if gpu
        else {"device": torch.device("cpu"), "dtype": torch.float32}
    )
    assert Placement(device="cpu").teacher()["device"] == torch.device("cpu")
    assert Placement(bf16=False).teacher()["dtype"] is torch.float32


class _Asked(Exception):
    """Raised by the stand-in loader once it has recorded what it was asked for."""


@pytest.fixture
def asked(monkeypatch):
    """Pretend a GPU is present and record the device and dtype each `load_teacher` call asks for."""
    calls: list[dict] = []

    def load_teacher(spec, **kwargs):
        calls.append({"device": kwargs.get("device"), "dtype": kwargs.get("dtype")})
        raise _Asked

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for module in (
        "search.run.preflight",
        "search.run.trial",
        "search.run.latency",
        "minitron.model.teacher",
    ):
        monkeypatch.setattr(f"{module}.load_teacher", load_teacher)
    return calls


def _settings(**placement):
    from tests.test_settings import default_run

    settings = default_run()
    if not placement:
        return settings
    probe = dataclasses.replace(settings.probe, placement=Placement(**placement))
    return dataclasses.replace(settings, probe=probe)


GPU = {"device": torch.device("cuda"), "dtype": torch.bfloat16}


def test_every_teacher_stage_asks_for_the_settings_placement(asked, tmp_path):
    """The driver's stages (importance, depth losses, targets, its losses), the latency task and an
    online-teacher winner all load the teacher on the GPU in bf16 when one is present."""
    from search.outputs.rundir import RunDir
    from search.plan.space import load_space
    from search.plan.spec import RunSpec
    from search.run import preflight, winner_job

    settings = _settings()
    space = load_space(settings.space)
    with pytest.raises(_Asked):
        preflight.preflight(RunSpec(settings, space), RunDir(tmp_path / "run"), resume=False, overwrite=False)
    with pytest.raises(_Asked):
        measure_latencies(_latency_job(settings), None)
    job = winner_job.WinnerJob(1, "t", space.teacher, str(tmp_path / "w"), "tiny", settings)
    fake_importance = type("I", (), {"meta": {}})()  # no fingerprint: the teacher is loaded whole
    with pytest.raises(_Asked):
        winner_job._students_and_teacher([job], fake_importance, online=True)
    assert asked[:2] == [GPU, GPU]
    assert asked[2] == {"device": None, "dtype": None}, "a whole teacher to cut from stays fp32 on the CPU"
    assert not (tmp_path / "run").exists(), "nothing is written before the teacher loads"


def _latency_job(settings):
    from search.run.latency import LatencyJob

    return LatencyJob(
        "tiny", settings.teacher_options(), None, settings.plan.depth, settings.probe.placement, 16, []
    )


def test_bf16_switched_off_keeps_the_teacher_in_fp32(asked):
    settings = _settings(bf16=False)
    with pytest.raises(_Asked):
        measure_latencies(_latency_job(settings), None)
    assert asked == [{"device": torch.device("cuda"), "dtype": torch.float32}]


def test_teacher_stages_on_bf16_weights_keep_fp32_numerics(tmp_path):
    """What a GPU run computes with a bf16 teacher, on the CPU: scores, targets and losses come out
    fp32, finite and close to the fp32 teacher's (same ranking of heads, neurons, channels)."""
    from minitron.data.tokens import TokenizedCorpus

    full = tiny_model(num_hidden_layers=3)
    half = tiny_model(num_hidden_layers=3).to(torch.bfloat16)
    ids = tiny_batches(n=8, length=16)
    stream = ids.flatten().numpy().astype("uint32")
    tokens = TokenizedCorpus(stream, stream, stream, stream, eos_token_id=0, key="tiny-placement")
    cfg = ImportanceConfig(num_samples=8, seq_len=16, batch_size=4)
    scores = {}
    for name, model in (("fp32", full), ("bf16", half)):
        imp = importance_for(model, tokens, cfg, block_sizes=[1], progress=False, folder=tmp_path / name)
        for tensor in (imp.heads, imp.neurons, imp.channels, imp.block_importance, imp.layer_loss):
            assert tensor.dtype is torch.float32 and torch.isfinite(tensor).all()
        scores[name] = imp
    fingerprint = "same teacher"
    assert importance_dir(fingerprint, tokens, cfg) != importance_dir(fingerprint, tokens, cfg, "bfloat16")
    spearman = _spearman(scores["fp32"].neurons.flatten(), scores["bf16"].neurons.flatten())
    assert spearman > 0.95, spearman
    assert torch.equal(scores["fp32"].heads.argsort(), scores["bf16"].heads.argsort()) or (
        _spearman(scores["fp32"].heads.flatten(), scores["bf16"].heads.flatten()) > 0.95
    )
    targets = compute_targets(half, ids, k=5, progress=False)
    assert targets.values.dtype is torch.float32
    reference = compute_targets(full, ids, k=5, progress=False)
    top, ref = targets.values.sort(-1).values, reference.values.sort(-1).values  # top-k is unsorted
    assert (top - ref).abs().max() < 0.25, (top - ref).abs().max()
    assert validation_loss(half, ids, progress=False).loss == pytest.approx(
        validation_loss(full, ids, progress=False).loss, abs=0.05
    )
    assert measure_speed(half, seq_len=16, repeats=1, bf16=True).latency_ms > 0


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])
