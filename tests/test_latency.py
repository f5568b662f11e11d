"""Latency: medians with their spread, candidates timed in turn with the teacher."""

import copy

import torch

from minitron.model.speed import Timing, compare_latency, measure_speed
from search.tuning import ProbeBudget
from tests.tiny import tiny_model


def _model():
    # big enough that one forward pass takes milliseconds, not microseconds of Python
    return tiny_model(hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=8,
                      num_key_value_heads=4, head_dim=32, max_position_embeddings=256)  # fmt: skip


def test_two_measurements_of_one_speedup_agree_within_the_stated_spread():
    """What the report states: a candidate's speed-up against its teacher, timed in turn, with the
    range of its per-round ratios. Measured twice, the two medians agree within 15 %, the bar two
    whole runs' speed-ups met (docs/measurements.md). Not "within the other's range": that held in
    20 of 20 pairs, then failed in a full `make test` (1.870, range 1.835-1.989, against 1.754,
    range 1.341-1.821): a 7-round range is narrower than the drift between two measurements."""
    torch.set_num_threads(2)
    teacher = _model()
    student = tiny_model(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=8,
                         num_key_value_heads=4, head_dim=32, max_position_embeddings=256)  # fmt: skip
    first, second = (compare_latency(teacher, student, seq_len=128, rounds=7) for _ in range(2))
    assert first.speedup_low <= first.speedup <= first.speedup_high and first.model.rounds == 7
    assert abs(second.speedup / first.speedup - 1) < 0.15, (first, second)
    latency = measure_speed(teacher, seq_len=128, repeats=7).latency
    assert (
        latency is not None and latency.rounds == 7 and latency.low_ms <= latency.median_ms <= latency.high_ms
    )


def test_a_model_against_its_copy_has_a_speedup_of_one_within_the_spread():
    model = _model()
    compared = compare_latency(model, copy.deepcopy(model), seq_len=128, rounds=7)
    assert compared.speedup_low <= compared.speedup <= compared.speedup_high
    assert 0.8 < compared.speedup < 1.25, compared
    assert compared.reference.rounds == compared.model.rounds == 7


class _Recorder(torch.nn.Module):
    """A stand-in model that records the order in which it and its partner run."""

    def __init__(self, name: str, calls: list[str]) -> None:
        super().__init__()
        self.name, self.calls = name, calls
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.config = type("Config", (), {"vocab_size": 10})()

    def forward(self, input_ids, use_cache=False):
        self.calls.append(self.name)


def test_teacher_and_candidate_are_timed_in_turn_after_a_warm_up():
    calls: list[str] = []
    compare_latency(_Recorder("teacher", calls), _Recorder("candidate", calls), seq_len=4, rounds=3)
    assert calls == ["teacher", "candidate"] + ["teacher", "candidate"] * 3
    calls.clear()
    compare_latency(
        _Recorder("teacher", calls), _Recorder("candidate", calls), seq_len=4, rounds=2, warm=True
    )
    assert calls == ["candidate"] + ["teacher", "candidate"] * 2, "a warm teacher is not warmed again"


def test_timing_statistics():
    timing = Timing.of([0.003, 0.001, 0.002, 0.010])
    assert (timing.median_ms, timing.low_ms, timing.high_ms, timing.rounds) == (2.5, 1.0, 10.0, 4)
    assert timing.agrees_with(Timing.of([0.002])) and not timing.agrees_with(Timing.of([0.02]))


def test_a_range_search_keeps_the_first_rungs_of_trials_not_yet_started(tmp_path):
    """With a reserve, no trial trains into the first rungs the trials still to come will need."""
    log = tmp_path / "trials.jsonl"
    plain = ProbeBudget(10_000, log, [1000, 2000, 4000])
    reserving = ProbeBudget(10_000, log, [1000, 2000, 4000], reserve_for=8)
    at = lambda tokens: {"probe_tokens": tokens, "probe_done": False}  # noqa: E731
    assert not reserving("t1", at(1000)), "on to 2,000: 7 first rungs (7,000) still fit beside it"
    assert not plain("t1", at(2000)), "alone, the budget has room for the last rung"
    assert reserving("t1", at(2000)), "on to 4,000 would eat into the 7,000 the trials to come need"
    for i in range(2, 9):
        reserving(f"t{i}", at(1000))
    assert reserving.spent == {"t1": 2000} | {f"t{i}": 1000 for i in range(2, 9)}
    assert not reserving("t8", at(1000)), "all started: what is left is free (10,000 - 9,000 >= 1,000)"


def test_a_failed_latency_task_leaves_the_run_without_speedups(tmp_path):
    """Speed-ups are figures of the report: a latency task that fails is said, and the run goes on."""
    import ray

    from minitron.importance.selection import DepthMethod
    from minitron.runtime import Placement
    from search.latency import LatencyJob, run_latency_task
    from search.settings import Resources

    job = LatencyJob(str(tmp_path / "missing"), {}, None, DepthMethod.BLOCK, Placement(threads=1), 16, [])
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        measured = run_latency_task(job, None, Resources(cpus_per_trial=1))  # type: ignore[arg-type]
    finally:
        ray.shutdown()
    assert measured["candidates"] == {} and measured["teacher"] == {}
    assert "does not exist" in measured["error"]
