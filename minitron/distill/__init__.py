"""Knowledge distillation: one training loop, two target sources, probes and resumable retraining.

- `loop`: the one training loop (`train`) every probe, retraining, command and bench runs;
- `sources`: where a step's batch and targets come from (cached teacher top-k; the teacher online),
  both in the same seeded training order;
- `schedule`: warm-up, cosine decay and where validations fall (geometric rungs for ASHA);
- `checkpoint`: the checkpoint hook only retraining uses (exact resume);
- `losses`: forward KL (full or top-k teacher distribution), cross-entropy, intermediate cosine loss;
- `chunked`: the same loss from the last hidden states and the head, a chunk of positions at a
  time (no `[positions × vocabulary]` tensor held whole), where the whole logits would be large;
- `targets`: the teacher's top-k logits over the training order, computed once and shared;
- `probe`: a short, seeded, comparable run that scores a candidate;
- `retrain`: the long run with a final checkpoint and test loss;
- `step`: the loss mix, the optimizer under its schedule, the history.
"""
