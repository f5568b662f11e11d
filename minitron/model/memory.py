"""How much memory a probe or a retraining of an architecture needs, before anything runs.

    training_memory(family, arch, batch_size, seq_len, bf16) -> Memory

Why: a search over an 8B teacher that cannot fit its candidates on the GPUs it was given should
say so in the dry run, not after an hour of out-of-memory trials. The estimate is the sum of what
training with AdamW holds at its peak (the backward pass of the first step):
- fp32 weights, gradients and AdamW's two moments: 4 + 4 + 8 bytes per parameter; with bf16
  autocast, the bf16 copies of the weights autocast keeps for the step: 2 more;
- per token, each decoder layer's saved activations (residual stream and norms in fp32; the
  projections' inputs and outputs, attention and MLP intermediates in bf16 under autocast, fp32
  without), and the vocabulary-wide tensors of the loss (the LM head's logits, their fp32 copy, the
  log-softmax and its gradient: about 14 bytes per vocabulary entry with autocast; 18 without,
  as measured, since the loss then keeps more fp32 copies);
- retraining with the teacher online adds the teacher's weights in the dtype it is loaded in
  (bf16 on a GPU, fp32 on the CPU) and its logits for a batch;
- where a batch's logits over the whole vocabulary would be large (`minitron.distill.chunked`),
  the loss is computed a chunk of positions at a time: the vocabulary-wide tensors are then one
  chunk's, and the teacher online hands over its last hidden states (fp32 here) instead of its
  logits; a sharded student keeps the whole-vocabulary loss;
- retraining on N FSDP2 workers (`minitron.distill.sharded`): each worker holds 1/N of the weights,
  gradients and AdamW state, its 1/N of the batch, and the full weights of what is gathered at
  once (the root's embeddings and head, and two decoder layers: the one computing, the next one
  prefetched).
Checked against the peak memory of real probes on the embedded teacher (CPU, both precisions) in
`tests/test_memory.py`; what it leaves out (the allocator's slack, the framework itself, CUDA's
context) is why the dry run keeps a margin.
"""

from __future__ import annotations

from dataclasses import dataclass

from minitron.distill.chunked import CHUNK_LOGITS, use_chunks
from minitron.model.architecture import Architecture, Family, count_params

GIB = 1024**3


@dataclass(frozen=True)
class Memory:
    """Bytes one training process holds at its peak, by what holds them."""

    weights: int
    """fp32 master weights (and bf16 copies under autocast)."""
    gradients: int
    optimizer: int
    """AdamW's two moments."""
    activations: int
    """Saved activations of every layer and the loss's vocabulary-wide tensors, for one batch."""
    teacher: int = 0
    """The teacher online: its weights and logits (0 on cached targets)."""

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + self.teacher

    def gib(self) -> float:
        return self.total / GIB


def loss_bytes_per_logit(bf16: bool) -> int:
    """The loss's vocabulary-wide tensors, per logit: the head's logits, their fp32 copy, the
    log-softmax and its gradient (measured: without autocast the loss keeps more fp32 copies)."""
    return 14 if bf16 else 18


def layer_bytes_per_token(arch: Architecture, bf16: bool) -> int:
    """Saved activations of one token through every decoder layer."""
    h, m = arch.hidden_size, arch.intermediate_size
    q, kv = arch.num_attention_heads * arch.head_dim, arch.num_key_value_heads * arch.head_dim
    low = 2 if bf16 else 4  # what autocast computes in bf16
    # residual stream, norms' inputs and outputs (fp32): 8 tensors of h; the projections' inputs and
    # outputs, RoPE and attention (low precision): 4 of h, 4 of q, 4 of kv; MLP gate, up, SiLU, product.
    per_layer = 4 * 8 * h + low * (4 * h + 4 * q + 4 * kv + 4 * m)
    return arch.num_hidden_layers * per_layer


def training_memory(
    family: Family,
    arch: Architecture,
    batch_size: int,
    seq_len: int,
    bf16: bool,
    teacher_params: int = 0,
    teacher_bytes_per_param: int = 4,
    workers: int = 1,
    micro_batch: int | None = None,
    teacher_hidden_size: int = 0,
) -> Memory:
    """Peak memory of one process training `arch` with AdamW on batches of `batch_size` x `seq_len`
    tokens; `teacher_params` > 0 adds a teacher running online in `teacher_bytes_per_param`;
    `workers` > 1: one of that many FSDP2 workers sharing each batch; `micro_batch`: sequences per
    forward pass of this process when a step accumulates several (None: its whole share);
    `teacher_hidden_size`: the teacher's, for its hidden states where the loss is chunked."""
    params = count_params(family, arch)
    tokens = (micro_batch or batch_size // workers) * seq_len
    vocab = family.vocab_size
    chunked = use_chunks(tokens, vocab)
    student_chunked = chunked and workers == 1
    logits = min(CHUNK_LOGITS, tokens * vocab) if student_chunked else tokens * vocab
    loss = logits * loss_bytes_per_logit(bf16) + (tokens * arch.hidden_size * 4 if student_chunked else 0)
    teacher = 0
    if teacher_params:
        outputs = tokens * teacher_hidden_size * 4 if student_chunked else tokens * vocab * 4
        teacher = teacher_params * teacher_bytes_per_param + outputs
    per_weight = 6 if bf16 else 4
    gathered = 0
    if workers > 1:
        embeddings = family.vocab_size * arch.hidden_size * (1 if family.tie_word_embeddings else 2)
        layer = (params - embeddings) // arch.num_hidden_layers
        gathered = (embeddings + 2 * layer) * per_weight
    return Memory(
        weights=-(-params * per_weight // workers) + gathered,
        gradients=-(-params * 4 // workers),
        optimizer=-(-params * 8 // workers),
        activations=tokens * layer_bytes_per_token(arch, bf16) + loss,
        teacher=teacher,
    )


def trained_together(memories: list[Memory]) -> Memory:
    """Peak memory of one process training several students one step after another on one teacher
    (`minitron.distill.retrain.retrain_together`): every student's weights and optimizer moments
    are held throughout, but only one step's gradients and activations, and the teacher once."""
    return Memory(
        weights=sum(m.weights for m in memories),
        gradients=max((m.gradients for m in memories), default=0),
        optimizer=sum(m.optimizer for m in memories),
        activations=max((m.activations for m in memories), default=0),
        teacher=max((m.teacher for m in memories), default=0),
    )
