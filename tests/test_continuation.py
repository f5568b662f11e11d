"""A winner continues from its probe: the probe is exactly the first steps of its retraining."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from minitron.data.tokens import pack
from minitron.distill.continuation import ProbeState, prefix_of
from minitron.distill.probe import ProbeConfig, probe
from minitron.distill.provenance import ContinuedFrom
from minitron.distill.retrain import RetrainConfig, retrain
from minitron.distill.schedule import Schedule, lr_at
from minitron.distill.sources import training_windows
from minitron.distill.step import LossWeights
from minitron.distill.targets import compute_targets
from minitron.runtime import Placement
from tests.tiny import tiny_model

SEQ, BATCH = 32, 2


def test_warmup_stable_decay_rates():
    """Warm-up, the peak, then the cosine over the last `decay` steps to the floor; `decay=None` is
    the cosine over every step after the warm-up (the schedule before), 0 no decay at all."""
    wsd = Schedule(10, 1e-3, 1e-5, 2, (10,), decay=4)
    rates = [wsd.lr(s) for s in range(10)]
    assert rates[:2] == pytest.approx([5e-4, 1e-3])
    assert rates[2:7] == [1e-3] * 5  # the first decay step (6) still at the peak
    assert rates[7] < rates[6] and rates[9] == pytest.approx(1e-5)
    assert wsd.decay_start == 6
    cosine = Schedule(10, 1e-3, 1e-5, 2, (10,))
    assert [cosine.lr(s) for s in range(10)] == [lr_at(s, 10, 1e-3, 2, 1e-5) for s in range(10)]
    assert cosine.decay_start == 2
    flat = Schedule(7, 1e-3, 1e-5, 2, (2, 7), decay=0)
    assert flat.decay_start == 7 and flat.is_prefix_of(wsd, 7) and not flat.is_prefix_of(cosine, 4)
    assert not flat.is_prefix_of(wsd, 8)  # past the probe's own end
    assert not Schedule(7, 1e-3, 1e-5, 1, (7,), decay=0).is_prefix_of(wsd, 7)  # warm-up 1, not 2
    assert not Schedule(8, 1e-3, 1e-5, 2, (8,), decay=0).is_prefix_of(wsd, 8)  # step 7 decays


@pytest.fixture(scope="module")
def world(tiny_world, wiki_tokens, tmp_path_factory):
    """The tiny teacher's top-k targets over a retraining's order, and a student saved to reload."""
    root, _ = tiny_world
    teacher = AutoModelForCausalLM.from_pretrained(root / "teacher")
    tokenizer = AutoTokenizer.from_pretrained(root / "teacher")
    cfg = RetrainConfig(
        tokens=8 * BATCH * SEQ, seq_len=SEQ, batch_size=BATCH, lr=1e-3, warmup_steps=1, decay_fraction=0.25,
        eval_every=4, eval_sequences=2, test_sequences=2, checkpoint_every=0, placement=Placement(bf16=False),
    )  # fmt: skip
    ids = training_windows(pack(wiki_tokens.train, SEQ), cfg.steps * BATCH, cfg.seed)
    targets = compute_targets(
        teacher, ids, k=8, progress=False, meta={"seed": cfg.seed, "tokens": wiki_tokens.key}
    )
    folder = tmp_path_factory.mktemp("continuation") / "student"
    tiny_model(vocab_size=teacher.config.vocab_size, num_hidden_layers=1, seed=5).save_pretrained(folder)
    return cfg, targets, folder, tokenizer


def _probe(world, wiki_tokens, folder, seed=0, steps=4):
    """Probe a fresh copy for `steps` steps as the search does (no decay), keeping its state."""
    cfg, targets, student_dir, _ = world
    student = AutoModelForCausalLM.from_pretrained(student_dir)
    pcfg = ProbeConfig(
        tokens=steps * BATCH * SEQ, batch_size=BATCH, lr=cfg.lr, decay_fraction=0.0, rungs=2,
        weights=LossWeights(), seed=0, placement=Placement(bf16=False),
    )  # fmt: skip
    schedule = pcfg.schedule(steps)
    assert schedule.warmup == 1
    prefix = prefix_of(student, schedule, BATCH, SEQ, seed, wiki_tokens.key)
    validation = pack(wiki_tokens.validation, SEQ, 2)
    state = ProbeState(folder, prefix, {"trial_id": "t1", "architecture": "tiny"})
    return probe(student, targets, pcfg, validation, state=state)


def test_a_winner_continued_from_its_probe_equals_one_uninterrupted_retraining(world, wiki_tokens, tmp_path):
    cfg, targets, student_dir, tokenizer = world
    whole = retrain(
        AutoModelForCausalLM.from_pretrained(student_dir), None, wiki_tokens, cfg, tmp_path / "whole",
        tokenizer, targets=targets, progress=False,
    )  # fmt: skip
    probed = _probe(world, wiki_tokens, tmp_path / "probe")
    assert [h.step for h in probed.history] == [2, 4]
    state = json.loads((tmp_path / "probe" / "state.json").read_text())
    assert state["step"] == 4 and state["origin"]["trial_id"] == "t1"
    continued = retrain(
        AutoModelForCausalLM.from_pretrained(student_dir), None, wiki_tokens, cfg, tmp_path / "continued",
        tokenizer, targets=targets, progress=False, start_from=tmp_path / "probe",
    )  # fmt: skip
    # the same weights to the bit: the probe's 4 steps are the retraining's first 4
    a, b = load_file(whole.out / "model.safetensors"), load_file(continued.out / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert continued.test_loss == whole.test_loss
    assert continued.provenance.resumed_at_step == 4
    assert continued.provenance.continued_from == ContinuedFrom(
        trial_id="t1", architecture="tiny", step=4, tokens=4 * BATCH * SEQ, seconds=state["seconds"],
    )  # fmt: skip
    assert continued.provenance.tokens_trained == whole.provenance.tokens_trained == cfg.tokens
    assert whole.provenance.continued_from is None
    # the probe's validations, then the retraining's own
    assert [h.step for h in continued.history] == [2, 4, 8]
    assert not (tmp_path / "continued" / "continued_from.json").exists()  # now in provenance.json


@pytest.mark.parametrize(
    ("seed", "steps", "reason"),
    [
        (1, 4, "its seed differs from the retraining's"),
        (0, 8, r"do not have the retraining's learning rates \(the retraining decays from step 6 of 8\)"),
    ],
)
def test_a_probe_that_is_not_the_start_is_refused_and_the_winner_starts_afresh(
    world, wiki_tokens, tmp_path, capsys, seed, steps, reason
):
    cfg, targets, student_dir, tokenizer = world
    _probe(world, wiki_tokens, tmp_path / "probe", seed=seed, steps=steps)
    fresh = retrain(
        AutoModelForCausalLM.from_pretrained(student_dir), None, wiki_tokens, cfg, tmp_path / "w",
        tokenizer, targets=targets, progress=False, start_from=tmp_path / "probe",
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "w: starts from its pruned weights; the probe state is not the retraining's start" in out
    assert __import__("re").search(reason, out), out
    assert fresh.provenance.continued_from is None and fresh.provenance.resumed_at_step is None


def test_a_missing_probe_state_starts_afresh(world, wiki_tokens, tmp_path, capsys):
    cfg, targets, student_dir, tokenizer = world
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "continued_from.json").write_text("{}")  # left by an adoption that never landed
    result = retrain(
        AutoModelForCausalLM.from_pretrained(student_dir), None, wiki_tokens, cfg, tmp_path / "w",
        tokenizer, targets=targets, progress=False, start_from=tmp_path / "nothing",
    )  # fmt: skip
    assert "no probe state in" in capsys.readouterr().out
    assert result.provenance.continued_from is None
