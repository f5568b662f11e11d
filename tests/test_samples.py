"""Greedy continuations: a function of the weights alone, and only the continuation."""

from __future__ import annotations

from minitron.eval.samples import PROMPTS, greedy_continuations
from tests.tiny import tiny_model


def test_greedy_continuations_are_deterministic_and_leave_the_prompt_out(teacher):
    model = tiny_model(vocab_size=len(teacher.tokenizer), num_hidden_layers=2).train()
    first = greedy_continuations(model, teacher.tokenizer, max_new_tokens=8)
    assert model.training, "the model's mode is given back"
    model.eval()
    assert first == greedy_continuations(model, teacher.tokenizer, max_new_tokens=8)
    assert len(first) == len(PROMPTS) and all(isinstance(text, str) for text in first)
    for prompt, text in zip(PROMPTS, first, strict=True):
        assert text and not text.startswith(prompt)  # the continuation only
