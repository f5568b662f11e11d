"""Chance-normalised retention of benchmark scores, with Wilson intervals over the items."""

import math

import pytest

from minitron.eval.benchmarks import Scores
from minitron.eval.retention import CHANCE, format_retention, retention, retention_rows, wilson


def test_wilson_matches_the_textbook_values():
    low, high = wilson(0.5, 100)
    assert (round(low, 4), round(high, 4)) == (0.4038, 0.5962)
    low, high = wilson(0.0, 20)  # no negative lower bound, a positive upper one
    assert low == 0.0 and 0.15 < high < 0.17
    assert wilson(1.0, 20)[1] == pytest.approx(1.0)


def test_the_default_item_count_resolves_five_points_on_lambada_and_hellaswag():
    from search.plan.settings import DEFAULT_EVAL_LIMIT

    for p in (0.02, 0.3, 0.46, 0.5):  # lambada and hellaswag accuracies seen here, and the worst case
        low, high = wilson(p, DEFAULT_EVAL_LIMIT)
        assert high - p < 0.05 and p - low < 0.05


def test_retention_is_zero_at_chance_and_one_at_the_teacher():
    assert retention("piqa", 0.68, 0.5, 400).retention == pytest.approx(0.0)
    assert retention("piqa", 0.68, 0.68, 400).retention == pytest.approx(1.0)
    r = retention("lambada_openai", 0.29, 0.02, 400)
    assert r.retention == pytest.approx(0.02 / 0.29)
    assert r.retention_low is not None and r.retention_high is not None
    assert r.retention_low < r.retention < r.retention_high
    assert retention("piqa", 0.45, 0.5, 100).retention is None  # a teacher at chance has nothing to keep


def test_retention_rows_read_lm_evals_results_and_skip_groups():
    def scores(values):
        return Scores(
            results={t: {"acc,none": v, "acc_norm,none": v} for t, v in values.items()},
            n_samples={t: {"effective": 100, "original": 1000} for t in values},
        )

    teacher = scores({"hellaswag": 0.46, "lambada_openai": 0.29})
    student = scores({"hellaswag": 0.31, "lambada_openai": 0.02})
    rows = retention_rows(teacher, student, ("hellaswag", "lambada_openai", "mmlu"))
    assert [r.task for r in rows] == ["hellaswag", "lambada_openai"]
    assert rows[0].retention == pytest.approx((0.31 - 0.25) / (0.46 - 0.25))
    table = format_retention(rows)
    assert "| hellaswag | 100 | 25 | 46.0" in table and "| lambada_openai | 100 | 0 |" in table
    assert all(math.isfinite(CHANCE[t]) for t in ("hellaswag", "piqa", "winogrande", "arc_easy"))
