"""The chunked distillation loss (`minitron.distill.chunked`) against today's whole-vocabulary loss
(`step.distillation_loss` on the head's full logits): equal losses and gradients, in fp32.

Tolerance: 1e-5 relative (and 1e-6 of the largest entry, absolute) for losses and for the
gradients of the hidden states and the head's weight. Both sides compute the same float32 terms;
only their summation order differs (over chunks of positions, and the head's gradient summed
chunk by chunk), a few float32 roundings (~1e-7 relative each) of sums over at most a few hundred
terms. A wrong gradient formula (a missing temperature factor, the top-k teacher's mass put on the
wrong tokens, a CE term averaged over the wrong count) is off by tens of percent."""

from __future__ import annotations

import pytest
import torch

from minitron.distill.chunked import Targets, chunked_head_loss, next_tokens, use_chunks
from minitron.distill.step import LossWeights, distillation_loss

B, S, H, V = 2, 5, 12, 37  # 10 positions: chunks of 3 leave a short last one


def _inputs(seed: int = 0):
    torch.manual_seed(seed)
    hidden = (torch.randn(B, S, H) * 2).requires_grad_()
    weight = (torch.randn(V, H) * 0.5).requires_grad_()
    ids = torch.randint(0, V, (B, S))
    teacher_hidden, teacher_head = torch.randn(B, S, 8) * 2, torch.randn(V, 8)
    return hidden, weight, ids, teacher_hidden, teacher_head


def _reference(hidden, weight, ids, weights: LossWeights, **targets):
    logits = hidden @ weight.T
    loss = distillation_loss(logits, ids, weights, **targets)
    loss.backward()
    return loss.detach(), hidden.grad.clone(), weight.grad.clone()


def _chunked(hidden, weight, ids, weights: LossWeights, targets: Targets, chunk: int):
    hidden, weight = hidden.detach().requires_grad_(), weight.detach().requires_grad_()
    loss = chunked_head_loss(
        hidden.reshape(-1, H), weight, targets, weights.kd, weights.ce, weights.temperature, chunk=chunk
    )
    loss.backward()
    return loss.detach(), hidden.grad, weight.grad


def _close(ours, theirs):
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6 * float(b.abs().max()))


@pytest.mark.parametrize("chunk", [3, 10, 64])
@pytest.mark.parametrize(
    "weights",
    [LossWeights(), LossWeights(temperature=2.0), LossWeights(kd=0.7, ce=0.3), LossWeights(kd=0.0, ce=1.0)],
    ids=["kd", "kd-T2", "kd+ce", "ce"],
)
def test_full_teacher_equals_the_whole_vocabulary_loss(weights, chunk):
    hidden, weight, ids, t_hidden, t_head = _inputs()
    teacher_logits = t_hidden @ t_head.T
    reference = _reference(hidden, weight, ids, weights, teacher_logits=teacher_logits)
    flat = next_tokens(ids)
    given = Targets(teacher_logits=teacher_logits.reshape(-1, V), next_tokens=flat)
    _close(_chunked(hidden, weight, ids, weights, given, chunk), reference)
    # the teacher's logits made a chunk at a time from its hidden states and head: the same
    computed = Targets(teacher_hidden=t_hidden.reshape(-1, 8), teacher_head=t_head, next_tokens=flat)
    _close(_chunked(hidden, weight, ids, weights, computed, chunk), reference)


TOP_K_MIXES = [LossWeights(), LossWeights(temperature=2.0), LossWeights(kd=0.7, ce=0.3)]


@pytest.mark.parametrize("weights", TOP_K_MIXES)
def test_top_k_targets_equal_the_whole_vocabulary_loss(weights):
    hidden, weight, ids, t_hidden, t_head = _inputs(1)
    values, indices = (t_hidden @ t_head.T).topk(6, dim=-1)
    reference = _reference(hidden, weight, ids, weights, top_values=values, top_indices=indices)
    flat = next_tokens(ids)
    targets = Targets(top_values=values.reshape(-1, 6), top_indices=indices.reshape(-1, 6), next_tokens=flat)
    _close(_chunked(hidden, weight, ids, weights, targets, chunk=4), reference)


def test_the_chunked_path_is_taken_only_where_the_whole_logits_would_be_large():
    assert not use_chunks(4 * 256, 49_152), "the CPU demo keeps the whole-vocabulary path"
    assert use_chunks(8 * 4096, 128_256), "a GPU batch over Llama 3's vocabulary is chunked"


@pytest.mark.parametrize("mode", ["online", "online+ce", "top-k"])
def test_a_training_batch_takes_the_chunked_loss_where_logits_are_large_with_the_same_gradients(
    mode, monkeypatch
):
    """`batch_loss` on a tiny student: with the limit lowered so that its batch counts as large,
    the teacher online hands over its last hidden states and head instead of its logits, and the
    student's loss and gradients equal those of the whole-vocabulary path."""
    import minitron.distill.chunked as chunked
    from minitron.distill.sources import Batch, OnlineTeacher
    from minitron.distill.step import batch_loss
    from tests.tiny import tiny_model

    teacher = tiny_model(num_hidden_layers=2, seed=1).eval()
    windows = torch.randint(0, 97, (8, 16), generator=torch.Generator().manual_seed(0))
    weights = LossWeights(kd=0.7, ce=0.3) if mode == "online+ce" else LossWeights()

    def step(limit: int):
        monkeypatch.setattr(chunked, "WHOLE_LOGITS_LIMIT", limit)
        student = tiny_model(num_hidden_layers=1, seed=2)
        batch = OnlineTeacher(teacher, windows, seed=0).batch(0, 4, torch.device("cpu"), False)
        if mode == "top-k":
            with torch.no_grad():
                values, indices = teacher(input_ids=batch.input_ids).logits.topk(8, dim=-1)
            batch = Batch(batch.input_ids, top_values=values, top_indices=indices)
        loss, _ = batch_loss(student, batch, weights)
        loss.backward()
        return batch, loss.detach(), [p.grad for p in student.parameters()]

    whole_batch, whole, whole_grads = step(2**40)
    chunk_batch, ours, our_grads = step(0)
    if mode != "top-k":
        assert whole_batch.teacher_logits is not None and chunk_batch.teacher_logits is None
        assert chunk_batch.teacher_hidden is not None and chunk_batch.teacher_head is not None
    torch.testing.assert_close(ours, whole, rtol=1e-5, atol=0)
    for a, b in zip(our_grads, whole_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6 * float(b.abs().max()))


def test_the_given_teacher_logits_are_left_as_they_were():
    hidden, weight, ids, t_hidden, t_head = _inputs(2)
    teacher_logits = (t_hidden @ t_head.T).reshape(-1, V)
    before = teacher_logits.clone()
    weights = LossWeights(temperature=2.0)
    _chunked(hidden, weight, ids, weights, Targets(teacher_logits=teacher_logits), chunk=3)
    assert torch.equal(teacher_logits, before)
