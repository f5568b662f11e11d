"""bench/rank_at_length.py: references pool by shape over files and seeds (never the search arms,
which continue from their probes), and each rung's ranking is scored against them."""

from __future__ import annotations

import json

from bench.rank_at_length import compare, read_references


def _row(arch: str, loss: float) -> dict:
    losses = {"speeches-en": loss + 1}
    return {
        "architecture": arch,
        "test_loss": loss,
        "test_losses": losses,
        "val_loss": loss + 2,
        "tokens": 100,
    }


def test_references_pool_by_shape_and_skip_searched_arms(tmp_path) -> None:
    first = {"rows": {"0": {"depth-only": _row("A", 3.0), "search": _row("B", 2.0)}}}
    second = {"rows": {"1": {"depth-only": _row("A", 3.2), "B": _row("B", 3.5)}}}
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path, data in zip(paths, (first, second), strict=True):
        path.write_text(json.dumps(data))
    refs = read_references(paths)
    assert refs == {
        "A": {
            0: {"mixture": 3.0, "ood": 4.0, "validation": 5.0, "tokens": 100},
            1: {"mixture": 3.2, "ood": 4.2, "validation": 5.2, "tokens": 100},
        },
        "B": {1: {"mixture": 3.5, "ood": 4.5, "validation": 5.5, "tokens": 100}},
    }


def test_each_rung_is_ranked_against_the_references() -> None:
    curves = {"A": {1: 6.0, 2: 5.0}, "B": {1: 5.5, 2: 5.2}, "C": {1: 7.0, 2: 6.0}}
    curves["unreferenced"] = {1: 1.0, 2: 1.0}
    truth = {"A": 3.7, "B": 3.8, "C": 3.9}
    table = compare(curves, truth)
    # rung 1 swaps A and B (one pair of three), rung 2 agrees with the references
    assert table["1"]["pick"] == "B" and abs(table["1"]["regret"] - 0.1) < 1e-12
    assert abs(table["1"]["tau"] - 1 / 3) < 1e-12
    assert table["2"] == {"tau": 1.0, "regret": 0.0, "pick": "A", "order": ["A", "B", "C"]}
