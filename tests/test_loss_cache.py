"""The teacher's losses are measured once per model, dtype, device kind and exact sequences."""

import json

import pytest

from minitron.eval.loss import cached_validation_loss, validation_loss
from tests.tiny import tiny_batches, tiny_model


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MINITRON_CACHE", str(tmp_path))
    return tmp_path / "losses"


def test_a_loss_is_measured_once_then_read_back(cache):
    model, sequences = tiny_model(), tiny_batches(4)
    first = cached_validation_loss(model, sequences, progress=False)
    assert first == validation_loss(model, sequences, progress=False)
    (entry,) = cache.iterdir()
    saved = json.loads(entry.read_text())
    saved["loss"] = 123.0  # what is read back is the cache's, not a new measurement
    entry.write_text(json.dumps(saved))
    assert cached_validation_loss(model, sequences, progress=False).loss == 123.0


def test_other_sequences_or_weights_are_measured_anew(cache):
    model, sequences = tiny_model(), tiny_batches(4)
    cached_validation_loss(model, sequences, progress=False)
    other = tiny_batches(4, seed=2)
    assert cached_validation_loss(model, other, progress=False) == validation_loss(
        model, other, progress=False
    )
    changed = tiny_model(seed=1)
    assert cached_validation_loss(changed, sequences, progress=False) == validation_loss(
        changed, sequences, progress=False
    )
    assert len(list(cache.iterdir())) == 3


def test_a_damaged_entry_is_measured_again(cache):
    model, sequences = tiny_model(), tiny_batches(4)
    first = cached_validation_loss(model, sequences, progress=False)
    (entry,) = cache.iterdir()
    entry.write_text("{not json")
    assert cached_validation_loss(model, sequences, progress=False) == first
    assert json.loads(entry.read_text())["loss"] == first.loss
