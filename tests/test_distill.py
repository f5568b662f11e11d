"""KD losses against reference computations; probes are deterministic and learn."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from minitron.data.tokens import pack
from minitron.distill.losses import (
    IntermediateLoss,
    evenly_mapped_layers,
    kl_full,
    kl_topk,
    kl_topk_candidates,
    next_token_ce,
)
from minitron.distill.probe import ProbeConfig, probe
from minitron.distill.schedule import Schedule, lr_at
from minitron.distill.sources import Batch, OnlineTeacher, training_windows
from minitron.distill.step import Head, LossWeights, batch_loss
from minitron.distill.targets import TeacherTargets, compute_targets
from minitron.errors import MinitronError
from minitron.runtime import Placement
from tests.tiny import tiny_batches, tiny_model


def reference_kl(student_logits, teacher_logits, temperature):
    """A plain, loop-based KL(p || q), computed in float64 with numpy."""
    s = student_logits.double().numpy() / temperature
    t = teacher_logits.double().numpy() / temperature
    total, count = 0.0, 0
    for srow, trow in zip(s.reshape(-1, s.shape[-1]), t.reshape(-1, t.shape[-1]), strict=True):
        log_q = srow - np.log(np.exp(srow - srow.max()).sum()) - srow.max()
        log_p = trow - np.log(np.exp(trow - trow.max()).sum()) - trow.max()
        total += float((np.exp(log_p) * (log_p - log_q)).sum())
        count += 1
    return total / count * temperature**2


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_kl_matches_a_plain_reference(temperature):
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 5, 11) * 3, torch.randn(2, 5, 11) * 3
    assert kl_full(student, teacher, temperature).item() == pytest.approx(
        reference_kl(student, teacher, temperature), rel=1e-5
    )
    torch_kl = (
        F.kl_div(
            F.log_softmax(student / temperature, -1),
            F.log_softmax(teacher / temperature, -1),
            log_target=True,
            reduction="none",
        )
        .sum(-1)
        .mean()
        * temperature**2
    )
    torch.testing.assert_close(kl_full(student, teacher, temperature), torch_kl)
    assert kl_full(teacher, teacher).item() == pytest.approx(0.0, abs=1e-6)


def test_topk_with_the_whole_vocabulary_is_the_full_kl():
    torch.manual_seed(1)
    student, teacher = torch.randn(3, 4, 13), torch.randn(3, 4, 13)
    values, indices = teacher.topk(13, dim=-1)
    torch.testing.assert_close(kl_topk(student, values, indices), kl_full(student, teacher))
    values, indices = teacher.topk(5, dim=-1)  # fewer: the renormalized top-5 distribution
    p = F.softmax(values, -1)
    expected = (p * (p.log() - F.log_softmax(student, -1).gather(-1, indices))).sum(-1).mean()
    torch.testing.assert_close(kl_topk(student, values, indices), expected)


def masked_kl(student_logits, values, indices, temperature=1.0):
    """The candidate head's loss the long way: `kl_topk` on the full logits with every token outside
    the batch's candidates (the union of its top-k) masked out of the student's softmax."""
    keep = torch.zeros(student_logits.shape[-1], dtype=torch.bool)
    keep[indices.long().unique()] = True
    return kl_topk(student_logits.masked_fill(~keep, float("-inf")), values, indices, temperature)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_the_candidate_head_is_the_kl_over_the_batch_candidates(temperature):
    torch.manual_seed(2)
    hidden = torch.randn(2, 5, 8, requires_grad=True)
    weight = torch.randn(31, 8, requires_grad=True)
    values, indices = (torch.randn(2, 5, 31) * 2).topk(4, dim=-1)
    got = kl_topk_candidates(hidden, weight, values, indices.int(), temperature)
    got_grads = torch.autograd.grad(got, (hidden, weight))
    expected = masked_kl(hidden @ weight.T, values, indices, temperature)
    expected_grads = torch.autograd.grad(expected, (hidden, weight))
    assert indices.unique().numel() < 31, "some tokens are outside the candidates"
    torch.testing.assert_close(got, expected)
    for a, b in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(a, b)
    assert (got_grads[1].abs().sum(-1) > 0).sum() == indices.unique().numel(), "only candidates learn"
    # with every token a candidate it is the exact top-k KL over the whole vocabulary
    values, indices = (torch.randn(2, 5, 31) * 2).topk(31, dim=-1)
    torch.testing.assert_close(
        kl_topk_candidates(hidden, weight, values, indices, temperature),
        kl_topk(hidden @ weight.T, values, indices, temperature),
    )


def test_a_probe_step_on_the_candidate_head_equals_the_masked_full_head():
    teacher, student = tiny_model(), tiny_model(seed=3)
    ids = tiny_batches(4, 12)
    targets = compute_targets(teacher, ids, k=8, progress=False)
    batch = Batch(ids, None, targets.values, targets.indices)
    weights = LossWeights(head=Head.CANDIDATES)
    loss, states = batch_loss(student, batch, weights)
    grads = torch.autograd.grad(loss, list(student.parameters()))
    expected = masked_kl(student(input_ids=ids).logits, targets.values, targets.indices)
    expected_grads = torch.autograd.grad(expected, list(student.parameters()))
    assert states is None and targets.indices.unique().numel() < student.config.vocab_size
    torch.testing.assert_close(loss, expected)
    for a, b in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(a, b)
    # full teacher logits, or hidden states asked for, take the whole vocabulary
    with torch.no_grad():
        t = teacher(input_ids=ids).logits
    full, _ = batch_loss(student, Batch(ids, t), weights)
    torch.testing.assert_close(full, kl_full(student(input_ids=ids).logits, t))
    exact, states = batch_loss(student, batch, weights, hidden_states=True)
    torch.testing.assert_close(exact, kl_topk(student(input_ids=ids).logits, targets.values, targets.indices))
    assert states is not None
    with pytest.raises(ValueError, match="CE term needs the student's whole vocabulary"):
        LossWeights(ce=0.5, head=Head.CANDIDATES)


def test_cached_targets_with_k_equal_to_vocabulary_give_the_full_loss():
    teacher, student = tiny_model(), tiny_model(seed=3)
    ids = tiny_batches(4, 12)
    targets = compute_targets(teacher, ids, k=teacher.config.vocab_size, progress=False)
    with torch.no_grad():
        s, t = student(ids).logits, teacher(ids).logits
    torch.testing.assert_close(kl_topk(s, targets.values, targets.indices), kl_full(s, t))
    small = compute_targets(teacher, ids, k=8, batch_size=3, progress=False)
    assert small.values.shape == (4, 12, 8) and small.k == 8
    torch.testing.assert_close(small.values.sort(-1).values, t.topk(8, dim=-1).values.sort(-1).values)
    with pytest.raises(MinitronError, match="top-k must be between 1 and the vocabulary size 97"):
        compute_targets(teacher, ids, k=98, progress=False)


def test_targets_round_trip(tmp_path):
    teacher = tiny_model()
    targets = compute_targets(teacher, tiny_batches(3, 8), k=5, progress=False, meta={"teacher": "tiny"})
    targets.save(tmp_path / "t")
    loaded = TeacherTargets.load(tmp_path / "t")
    assert torch.equal(loaded.input_ids, targets.input_ids) and torch.equal(loaded.values, targets.values)
    assert torch.equal(loaded.indices, targets.indices) and loaded.meta["teacher"] == "tiny"


def test_training_windows_follow_the_seeded_order_of_every_run():
    train = pack(np.arange(1000, dtype=np.uint32), 10)
    a, b, c = (
        training_windows(train, 5, seed=0),
        training_windows(train, 5, seed=0),
        training_windows(train, 5, 1),
    )
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert all((row[1:] - row[:-1] == 1).all() for row in a), "each row is one contiguous window"
    # a probe's sequences are the first ones a retraining with the same seed reads
    online = OnlineTeacher(None, train, seed=0)
    first_steps = torch.cat(
        [online.batch(step, 2, torch.device("cpu"), False).input_ids for step in range(3)]
    )
    assert torch.equal(first_steps, training_windows(train, 6, seed=0))
    # past one epoch the order goes on in a new permutation
    assert len({tuple(r.tolist()) for r in training_windows(train, 200, 0)}) == 100


def test_schedule_points():
    assert Schedule.geometric(16, 4) == (2, 4, 8, 16) and Schedule.geometric(3, 4) == (1, 3)
    assert Schedule.every(10, 4) == (4, 8, 10) and Schedule.every(10, 0, start=True) == (0, 10)
    schedule = Schedule(16, 1e-3, 1e-4, 2, Schedule.geometric(16, 3))
    assert (
        schedule.rungs == 3
        and schedule.lr(1) == pytest.approx(1e-3)
        and schedule.lr(15) == pytest.approx(1e-4)
    )
    with pytest.raises(ValueError, match="end at the last step"):
        Schedule(16, 1e-3, 1e-4, 2, (4, 8))


def test_ce_and_schedule():
    logits = torch.randn(2, 6, 9)
    ids = torch.randint(0, 9, (2, 6))
    expected = F.cross_entropy(logits[:, :-1].reshape(-1, 9), ids[:, 1:].reshape(-1))
    torch.testing.assert_close(next_token_ce(logits, ids), expected)
    assert lr_at(0, 100, 1e-3, 10, 1e-5) == pytest.approx(1e-4)
    assert lr_at(9, 100, 1e-3, 10, 1e-5) == pytest.approx(1e-3)
    assert lr_at(100, 101, 1e-3, 10, 1e-5) == pytest.approx(1e-5)
    assert lr_at(55, 101, 1e-3, 10, 1e-5) == pytest.approx((1e-3 + 1e-5) / 2)


def test_intermediate_loss():
    states = tuple(torch.randn(2, 3, 8) for _ in range(4))
    same = IntermediateLoss(8, 8, [(1, 1), (2, 3)])
    assert same(states, states).item() == pytest.approx(
        (1 - F.cosine_similarity(states[2], states[3], dim=-1).mean().item()) / 2, abs=1e-6
    )
    wide = IntermediateLoss(6, 8, [(1, 1)])
    assert wide.projection is not None and wide.projection.weight.shape == (8, 6)
    assert math.isfinite(wide(tuple(s[..., :6] for s in states), states).item())
    assert evenly_mapped_layers(3, 9) == [0, 4, 8] and evenly_mapped_layers(1, 5) == [4]


def periodic_batches(n, length, vocab, seed=0):
    """Learnable data: each row counts upward modulo the vocabulary from a random start."""
    starts = torch.randint(0, vocab, (n, 1), generator=torch.Generator().manual_seed(seed))
    return (starts + torch.arange(length)) % vocab


def test_probe_is_deterministic_and_learns():
    teacher = tiny_model()
    ids = periodic_batches(32, 16, 97)
    targets = compute_targets(teacher, ids, k=16, progress=False)
    validation = periodic_batches(4, 16, 97, seed=1)
    student = tiny_model(seed=7, num_hidden_layers=2)
    cfg = ProbeConfig(batch_size=4, lr=3e-3, eval_every=2, seed=0)
    seen = []
    first = probe(copy.deepcopy(student), targets, cfg, validation, callback=seen.append)
    second = probe(copy.deepcopy(student), targets, cfg, validation)
    assert [h.val_loss for h in first.history] == [h.val_loss for h in second.history]
    assert seen == first.history and len(first.history) == 4 and first.tokens == 32 * 16
    rungs = probe(
        copy.deepcopy(student),
        targets,
        ProbeConfig(batch_size=4, lr=3e-3, rungs=3, tokens=16 * 16),
        validation,
    )
    assert [h.step for h in rungs.history] == [1, 2, 4] and rungs.tokens == 16 * 16
    assert first.history[-1].train_loss < first.history[0].train_loss, "the KD loss falls"
    assert first.train_seconds + first.eval_seconds <= first.seconds

    ce = ProbeConfig(batch_size=4, lr=1e-2, eval_every=0, weights=LossWeights(kd=0.0, ce=1.0))
    untrained = probe(
        copy.deepcopy(student), targets, ProbeConfig(batch_size=4, lr=0.0, eval_every=0), validation
    )
    trained = probe(copy.deepcopy(student), targets, ce, validation)
    assert trained.loss < untrained.loss - 0.5, "cross-entropy on periodic data lowers the validation loss"


def test_probe_with_full_cached_targets_equals_the_online_teacher():
    teacher = tiny_model()
    ids = periodic_batches(8, 12, 97)
    full = compute_targets(teacher, ids, k=97, progress=False)
    validation = periodic_batches(2, 12, 97, seed=1)
    student = tiny_model(seed=4, num_hidden_layers=2)
    cfg = ProbeConfig(batch_size=2, lr=1e-3, eval_every=2, placement=Placement(bf16=False))
    cached = probe(copy.deepcopy(student), full, cfg, validation)
    online = probe(copy.deepcopy(student), full, cfg, validation, teacher=teacher)
    assert [h.val_loss for h in cached.history] == pytest.approx(
        [h.val_loss for h in online.history], rel=1e-5
    )
