"""Depth importance by accuracy: Winogrande accuracy of every contiguous-block removal, through
lm-eval on the offline copy, saved with the importance and used by the `block_accuracy` method."""

from __future__ import annotations

import pytest
import torch

from minitron.errors import MinitronError
from minitron.eval.benchmarks import EvalConfig, evaluate
from minitron.importance.depth_accuracy import estimate_depth_accuracy
from minitron.importance.scores import Importance, ImportanceConfig
from minitron.importance.selection import choose_layers
from minitron.importance.width import estimate_width_importance
from minitron.model.surgery import layer_view
from tests.tiny import tiny_batches, tiny_model


@pytest.fixture(scope="module")
def four_layers(teacher):
    model = tiny_model(vocab_size=teacher.tokenizer.vocab_size, num_hidden_layers=4)
    ids = tiny_batches(4, 16) % 97
    importance = estimate_width_importance(
        model, ids, ImportanceConfig(num_samples=4, seq_len=16), progress=False
    )
    return model, importance


def test_block_accuracies_are_lm_eval_scores_of_layer_views(four_layers, teacher, tmp_path):
    model, importance = four_layers
    estimate_depth_accuracy(model, teacher.tokenizer, importance, [2], items=6, progress=False)
    accuracy = importance.block_accuracy[2]
    assert accuracy.shape == (3,) and bool(((accuracy >= 0) & (accuracy <= 1)).all())
    assert importance.meta["depth_accuracy"]["items"] == 6
    # the entry for start 1 is exactly lm-eval's score of the model without layers 1 and 2
    direct = evaluate(
        layer_view(model, (0, 3)), teacher.tokenizer, EvalConfig(tasks=("winogrande",), limit=6)
    )
    assert accuracy[1].item() == pytest.approx(direct.headline("winogrande")[1])
    # saved and loaded with the rest of the importance
    importance.save(tmp_path / "imp")
    again = Importance.load(tmp_path / "imp")
    assert torch.equal(again.block_accuracy[2], accuracy)


def test_block_accuracy_method_drops_the_block_that_costs_least(four_layers):
    _, importance = four_layers
    importance.block_accuracy[2] = torch.tensor([0.50, 0.75, 0.60])
    assert choose_layers(importance, keep=2, method="block_accuracy") == (0, 3)
    importance.block_accuracy[2] = torch.tensor([0.70, 0.55, 0.70])  # ties: the first block
    assert choose_layers(importance, keep=2, method="block_accuracy") == (2, 3)
    with pytest.raises(MinitronError, match="no Winogrande accuracies for dropping 1 layers"):
        choose_layers(importance, keep=3, method="block_accuracy")
