"""What a model writes: greedy continuations of a few fixed prompts, to read beside the teacher's.

Why: a person judging a compressed model looks at its text before its loss. Greedy decoding makes
the text a function of the weights alone (no sampling seed), so two runs of the same model agree
and a teacher-vs-winner table shows only what pruning and distillation changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

#: One prompt per kind of text in the default mix: encyclopaedic, narrative, code, dialogue.
PROMPTS = (
    "The capital of France is",
    "Once upon a time, in a small village by the sea,",
    "def fibonacci(n):\n",
    "Q: Why is the sky blue?\nA:",
)
MAX_NEW_TOKENS = 32


@torch.no_grad()
def greedy_continuations(
    model: Any, tokenizer: Any, prompts: Sequence[str] = PROMPTS, max_new_tokens: int = MAX_NEW_TOKENS
) -> list[str]:
    """The text each prompt is continued with (the prompt itself left out), greedy, one at a time
    (no padding to get wrong), on the model's device."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    texts = []
    try:
        for prompt in prompts:
            ids = tokenizer(prompt, return_tensors="pt").input_ids.to(device)
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.eos_token_id,
            )
            texts.append(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
    finally:
        model.train(was_training)
    return texts
