"""Distillation losses. All reduce to a mean over token positions and compute in fp32.

Forward KL, KL(p_teacher ‖ q_student), at temperature τ and scaled by τ² (so gradients keep their
size across temperatures); τ = 1 was best in Minitron (arXiv 2407.14679, Table 15). With top-k
teacher targets the teacher distribution is the softmax of its k largest logits, renormalized; with
k equal to the vocabulary this is exactly the full KL.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_full(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """KL(teacher ‖ student) per token, averaged; logits are [..., vocab]."""
    s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    kl = (t.exp() * (t - s)).sum(-1)
    return kl.mean() * temperature**2


def kl_topk(
    student_logits: torch.Tensor,
    top_values: torch.Tensor,
    top_indices: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """KL of the renormalized top-k teacher distribution against the student's full distribution.

    `top_values`/`top_indices` are the teacher's k largest logits per position, [..., k].
    """
    s = F.log_softmax(student_logits.float() / temperature, dim=-1).gather(-1, top_indices.long())
    return _topk_kl(s, top_values, temperature)


def kl_topk_candidates(
    hidden: torch.Tensor,
    head_weight: torch.Tensor,
    top_values: torch.Tensor,
    top_indices: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """`kl_topk` with the student's softmax over the batch's candidate tokens, not the vocabulary.

    The candidates are the union of the teacher's top-k over every position of the batch (about
    10k of SmolLM2's 49k tokens for 4 x 256 positions at k = 64), so the student's output head is a
    matmul with only those rows of `head_weight` [vocab, hidden]: a fifth of the head, the largest
    matmul of a small student. `hidden` is the student's final hidden state [..., hidden]. Tokens
    outside the candidates get no gradient; within them the loss is the same KL as `kl_topk` with
    the student's normalizer taken over the candidates. For probes, which rank candidates by their
    full-vocabulary validation loss: on `bench/rank_fidelity.py`'s 8 candidates an 8k-token probe
    with it ranked exactly as one with the whole vocabulary (see docs/speed.md).
    """
    candidates, position = torch.unique(top_indices, return_inverse=True)
    logits = (hidden @ head_weight[candidates].T).float() / temperature
    s = F.log_softmax(logits, dim=-1).gather(-1, position.long())
    return _topk_kl(s, top_values, temperature)


def _topk_kl(student_log_probs: torch.Tensor, top_values: torch.Tensor, temperature: float) -> torch.Tensor:
    """The renormalized top-k teacher distribution's KL against the student's log-probabilities at
    the same k tokens [..., k], averaged over positions and scaled by τ²."""
    t = F.log_softmax(top_values.float() / temperature, dim=-1)
    kl = (t.exp() * (t - student_log_probs)).sum(-1)
    return kl.mean() * temperature**2


def next_token_ce(student_logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy on a packed batch (position t predicts token t + 1)."""
    logits = student_logits[:, :-1].float()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), input_ids[:, 1:].reshape(-1))


class IntermediateLoss(torch.nn.Module):
    """1 − cosine between student hidden states (projected to the teacher's width) and the teacher's.

    For heavily depth-pruned students (Minitron §4.3). Student layer i is compared with teacher layer
    `layer_map[i]`; a learned linear projection bridges different widths. Cosine ignores scale, so
    no extra normalization is needed.
    """

    def __init__(self, student_hidden: int, teacher_hidden: int, layer_map: list[tuple[int, int]]) -> None:
        super().__init__()
        self.layer_map = layer_map
        self.projection = (
            torch.nn.Linear(student_hidden, teacher_hidden, bias=False)
            if student_hidden != teacher_hidden
            else None
        )
        if self.projection is not None:
            torch.nn.init.eye_(self.projection.weight)  # start as "keep the shared channels"

    def forward(
        self, student_states: tuple[torch.Tensor, ...], teacher_states: tuple[torch.Tensor, ...]
    ) -> torch.Tensor:
        losses = []
        for s_index, t_index in self.layer_map:
            s = student_states[s_index].float()
            if self.projection is not None:
                s = self.projection(s)
            losses.append(1 - F.cosine_similarity(s, teacher_states[t_index].float(), dim=-1).mean())
        return torch.stack(losses).mean()


def evenly_mapped_layers(student_layers: int, teacher_layers: int) -> list[int]:
    """Teacher layer for each student layer when the pruning map is unknown: evenly spaced, last to last."""
    if student_layers == 1:
        return [teacher_layers - 1]
    return [round(i * (teacher_layers - 1) / (student_layers - 1)) for i in range(student_layers)]
