"""Knowledge distillation: KD losses, cached teacher targets, short probes and resumable retraining.

- `losses`: forward KL (full or top-k teacher distribution), cross-entropy, intermediate cosine loss;
- `targets`: the teacher's top-k logits on the fixed probe batches, computed once and shared;
- `probe`: a short, seeded, comparable distillation run that scores a candidate;
- `retrain`: the long run with the teacher online, exact resume and a final checkpoint;
- `step`: the loss mix, the optimizer and one training step both share.
"""
