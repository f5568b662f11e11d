"""The time budget: stage estimates from the settings and one measured rate; the ETA's scaling."""

import time

import pytest

from search.plan.settings import Resources, SearchPlan, SearchSettings
from search.run.stages import eta
from search.run.timebudget import Rate, calibrate, estimate
from tests.tiny import tiny_batches, tiny_model

ALL = {"importance", "teacher targets", "search", "retrain winners", "benchmarks"}


def settings(**plan):
    return SearchSettings.create(
        budget=70_000_000,
        space="smollm2-135m",
        teacher="smollm2-135m",
        plan=SearchPlan(**plan),
        resources=Resources(),
        retrain_tokens=64_000,
        calibration_samples=128,
        eval_tasks=("piqa",),
        eval_limit=100,
        eval_fewshot=None,
        seed=0,
    )


def test_estimates_scale_with_the_work_and_the_rate():
    base = estimate(settings(), 134_500_000, 70_000_000, (True, 7), Rate(1e11, "t"), ALL)
    assert set(base) == ALL and all(v > 0 for v in base.values())
    faster = estimate(settings(), 134_500_000, 70_000_000, (True, 7), Rate(2e11, "t"), ALL)
    for name in ALL:
        assert faster[name] == pytest.approx(base[name] / 2, rel=0.2)  # fixed costs aside
    cached = estimate(settings(), 134_500_000, 70_000_000, (False, 0), Rate(1e11, "t"), ALL)
    assert cached["importance"] == 0, "importance read from the cache costs nothing"
    depth_only = estimate(settings(), 134_500_000, 70_000_000, (False, 3), Rate(1e11, "t"), ALL)
    assert 0 < depth_only["importance"] < base["importance"]
    # the latency stage: a worker that loads the teacher, then a cut and a few rounds per trial
    latency = estimate(
        settings(trials=16, overhead=1.0, max_not_kept=1.0),
        134_500_000,
        70_000_000,
        (False, 0),
        Rate(1e11, "t"),
        {"latency"},
    )
    assert (
        latency["latency"]
        > estimate(settings(), 134_500_000, 70_000_000, (False, 0), Rate(1e11, "t"), {"latency"})["latency"]
    )
    # only what is left to do is estimated (a resumed run)
    assert set(estimate(settings(), 1, 1, (False, 0), Rate(1e9, "t"), {"benchmarks"})) == {"benchmarks"}


def test_more_winners_cost_more_retraining():
    def retraining(top_k: int, lockstep: bool = False) -> float:
        # --overhead 1 and no cap on the candidates not kept: one winner's probes fit too
        free = settings(top_k=top_k, overhead=1.0, max_not_kept=1.0)
        stages = estimate(free, 134_500_000, 70_000_000, (False, 0), Rate(1e11, "t"), ALL, lockstep=lockstep)
        return stages["retrain winners"]

    one, two, shared = retraining(1), retraining(2), retraining(2, lockstep=True)
    assert two == pytest.approx(2 * one)
    # one teacher pass for both: 2 x (student) + 1 x (teacher) instead of 2 x (student + teacher)
    assert one < shared < two


def test_calibration_times_a_forward_pass_or_a_matmul():
    model = tiny_model()
    measured = calibrate(model, tiny_batches(2), bf16=False)
    assert measured.flops > 0 and "forward" in measured.how
    fallback = calibrate(None, None, bf16=False)
    assert fallback.flops > 0 and "matmul" in fallback.how


def test_eta_scales_what_is_left_by_how_finished_stages_compared():
    estimates = {"importance": 10.0, "search": 100.0, "retrain winners": 200.0}
    line = eta(estimates, {"teacher": 5.0, "importance": 20.0}, time.perf_counter())
    assert "about 10m00s left" in line and "x2.00" in line  # 300 s left, taking twice the estimate
    assert "about 5m10s left" in eta(estimates, {}, time.perf_counter())  # nothing measured yet
