"""The distillation loss computed from the student's last hidden states and its output head, a
chunk of positions at a time, so that no `[positions × vocabulary]` tensor is ever held whole.

Why: `losses.kl_full` materialises the student's logits, their fp32 copy and two log-softmaxes
over the whole vocabulary for every position of a batch; at Llama 3's 128,256-token vocabulary and
8 × 4096 positions each such fp32 tensor is 16.8 GB, more than the student's own weights. Here the
output head's matmul, the softmaxes and the loss's gradient are computed for `chunk` positions at
a time (as Liger-Kernel's fused linear cross-entropy does), and the gradients with respect to the
hidden states and the head's weight are accumulated during the forward pass, so the vocabulary-wide
memory is that of one chunk whatever the batch.

The loss is the same mix as `step.distillation_loss`: forward KL to the teacher's full
distribution (its logits given whole, or computed chunk by chunk from the teacher's own last hidden
states and head) or to its renormalised top-k logits, plus next-token cross-entropy, each a mean
over its positions; temperature as in `losses`. Gradients, per position's logits z (q = softmax(z/τ)):
- KL to p (full): τ (q − p) / N;
- KL to the top-k p over indices i_k: τ (q − scatter(p, i_k)) / N (q's normaliser is the whole
  vocabulary's, as in `kl_topk`);
- cross-entropy to the next token y: (softmax(z) − onehot(y)) / M, over the M positions that have
  a next token.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

#: Logits computed at once by default: 2^25 of them (128 MiB in fp32), about 256 positions of a
#: 128k vocabulary, 680 of SmolLM2's 49k.
CHUNK_LOGITS = 2**25
#: Above this many logits in a batch, training computes its loss in chunks (`use_chunks`): at or
#: below it the whole-vocabulary path of `losses` runs as it always did (the CPU demo's 4 x 256
#: positions of a 49k vocabulary are 50M logits, under it).
WHOLE_LOGITS_LIMIT = 2**28


def use_chunks(positions: int, vocab_size: int) -> bool:
    """Whether a batch of `positions` over `vocab_size` should take the chunked loss (more logits
    than `WHOLE_LOGITS_LIMIT`, read at each call)."""
    return positions * vocab_size > WHOLE_LOGITS_LIMIT


def plain_head(model: Any) -> bool:
    """Whether `model`'s logits are its last hidden states times its head's weight, nothing more (no
    bias, no soft-capping): what the candidate and chunked losses compute the head's matmul as."""
    head = model.get_output_embeddings()
    return getattr(head, "bias", None) is None and not getattr(model.config, "final_logit_softcapping", None)


@dataclass(frozen=True)
class Targets:
    """What one batch is distilled towards, flattened over its positions `[N, ...]`."""

    teacher_logits: torch.Tensor | None = None
    """The teacher's logits `[N, vocab]` (held whole: when it ran outside this loss)."""
    teacher_hidden: torch.Tensor | None = None
    """The teacher's last hidden states `[N, hidden]`, with `teacher_head`: its logits are then
    computed a chunk at a time too."""
    teacher_head: torch.Tensor | None = None
    top_values: torch.Tensor | None = None
    """The teacher's k largest logits `[N, k]` and their token ids `top_indices`."""
    top_indices: torch.Tensor | None = None
    next_tokens: torch.Tensor | None = None
    """The next token of each position `[N]` for the cross-entropy, −1 where there is none."""

    def in_precision(self, dtype: torch.dtype) -> Targets:
        """These targets with the teacher's head in `dtype`, converted once for every chunk."""
        if self.teacher_head is None or self.teacher_head.dtype == dtype:
            return self
        return dataclasses.replace(self, teacher_head=self.teacher_head.to(dtype))

    def teacher_chunk(self, rows: slice, dtype: torch.dtype) -> torch.Tensor | None:
        """The teacher's fp32 logits at `rows`, made in `dtype` from its hidden states (after
        `in_precision(dtype)`, so the head is not converted again for every chunk)."""
        if self.teacher_logits is not None:
            return self.teacher_logits[rows].float()
        if self.teacher_hidden is not None and self.teacher_head is not None:
            return (self.teacher_hidden[rows].to(dtype) @ self.teacher_head.T).float()
        return None


def chunked_head_loss(
    hidden: torch.Tensor,
    head_weight: torch.Tensor,
    targets: Targets,
    kd: float,
    ce: float,
    temperature: float = 1.0,
    chunk: int | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """`kd` × KL(teacher ‖ student) + `ce` × next-token cross-entropy of the student whose last
    hidden states are `hidden` `[N, hidden]` and whose output head is `head_weight` `[vocab,
    hidden]`, computed `chunk` positions at a time (default: `CHUNK_LOGITS` logits). `dtype`: the
    head's matmul precision (bf16 under autocast; default `hidden`'s); softmaxes and the loss in
    fp32. Differentiable in `hidden` and `head_weight`."""
    rows = chunk or max(CHUNK_LOGITS // head_weight.shape[0], 1)
    precision = dtype or hidden.dtype
    return _ChunkedHeadLoss.apply(hidden, head_weight, targets, kd, ce, temperature, rows, precision)


class _ChunkedHeadLoss(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        targets: Targets,
        kd: float,
        ce: float,
        temperature: float,
        rows: int,
        dtype: torch.dtype,
    ) -> torch.Tensor:
        n = hidden.shape[0]
        targets = targets.in_precision(dtype)
        w = weight.detach().to(dtype)
        grad_hidden = torch.zeros(hidden.shape, dtype=torch.float32, device=hidden.device)
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        ce_count = 0
        if ce and targets.next_tokens is not None:
            ce_count = int((targets.next_tokens >= 0).sum())
        for start in range(0, n, rows):
            part = slice(start, min(start + rows, n))
            h = hidden[part].detach().to(dtype)
            z = (h @ w.T).float()
            grad_z: torch.Tensor | None = None
            if ce_count:  # first: the KL's gradient is made in place of the logits
                assert targets.next_tokens is not None
                loss, grad = _ce_chunk(z, targets.next_tokens[part])
                total += ce * loss / ce_count
                grad_z = grad.mul_(ce / ce_count)
            if kd:
                loss, grad = _kd_chunk(z, targets, part, temperature, dtype)
                total += kd * loss / n
                grad_z = grad.mul_(kd / n) if grad_z is None else grad_z.add_(grad, alpha=kd / n)
            del z
            if grad_z is None:
                continue
            g = grad_z.to(dtype)
            grad_hidden[part] = (g @ w).float()
            if g.dtype == grad_weight.dtype:  # summed into the head's gradient, no head-sized temporary
                grad_weight.addmm_(g.T, h)
            else:  # a low-precision product (half the size) added in fp32
                grad_weight.add_(g.T @ h)
        # kept on ctx, not saved for backward: returned as the only reference, autograd can adopt
        # them as the gradients instead of copying a head-sized tensor
        ctx.grads = [grad_hidden, grad_weight]
        ctx.dtypes = (hidden.dtype, weight.dtype)
        return total

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Any, ...]:
        grad_hidden, grad_weight = ctx.grads
        ctx.grads = None
        hidden_dtype, weight_dtype = ctx.dtypes
        return (
            grad_hidden.mul_(grad_output).to(hidden_dtype),
            grad_weight.mul_(grad_output).to(weight_dtype),
            None,
            None,
            None,
            None,
            None,
            None,
        )


def _kd_chunk(
    z: torch.Tensor, targets: Targets, part: slice, temperature: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed KL over the chunk's positions (× τ²) and its gradient in the logits (× N); made in
    place where it can, so that a chunk holds about four vocabulary-wide tensors at once."""
    log_q = F.log_softmax(z / temperature, dim=-1)
    teacher = targets.teacher_chunk(part, dtype)
    if teacher is not None:
        # never in place: given logits are the caller's
        log_p = F.log_softmax(teacher if temperature == 1 else teacher / temperature, dim=-1)
        del teacher
        p = log_p.exp()
        loss = log_p.sub_(log_q).mul_(p).sum() * temperature**2
        del log_p
        return loss, log_q.exp_().sub_(p).mul_(temperature)
    if targets.top_values is None or targets.top_indices is None:
        raise ValueError("a KD weight needs teacher logits, hidden states or top-k targets")
    index = targets.top_indices[part].long()
    log_pk = F.log_softmax(targets.top_values[part].float() / temperature, dim=-1)
    pk = log_pk.exp()
    loss = (pk * (log_pk - log_q.gather(-1, index))).sum() * temperature**2
    return loss, log_q.exp_().scatter_add_(-1, index, -pk).mul_(temperature)


def _ce_chunk(z: torch.Tensor, next_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token cross-entropy of the chunk's positions that have one, and its gradient."""
    valid = next_tokens >= 0
    labels = torch.where(valid, next_tokens, torch.zeros_like(next_tokens)).long()
    log_q = F.log_softmax(z, dim=-1)
    loss = -(log_q.gather(-1, labels[:, None]).squeeze(-1) * valid).sum()
    grad = log_q.exp_().scatter_add_(-1, labels[:, None], -torch.ones_like(z[:, :1]))
    return loss, grad.mul_(valid[:, None])


def next_tokens(input_ids: torch.Tensor) -> torch.Tensor:
    """Each position's next token `[B × S]`, −1 at the last position of each sequence."""
    shifted = torch.full_like(input_ids, -1)
    shifted[:, :-1] = input_ids[:, 1:]
    return shifted.reshape(-1)
