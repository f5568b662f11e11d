"""Ray start-up defaults (`search.run.ray_runtime`): the dashboard stays on localhost unless asked, and a bad
`--address` fails in seconds. `ray.init` is replaced here (a unit test of the arguments we pass);
the end-to-end search tests start a real local Ray and check the dashboard URL it reports."""

from types import SimpleNamespace

import pytest
import ray

from minitron.errors import MinitronError
from search.plan.settings import Resources
from search.run import ray_runtime as tuning


@pytest.fixture
def fake_ray(monkeypatch):
    calls = []

    def init(**kwargs):
        calls.append(kwargs)
        return SimpleNamespace(dashboard_url=f"{kwargs.get('dashboard_host', 'x')}:8265")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(tuning, "_dashboard_url", None)
    monkeypatch.setattr(tuning, "local_resources", lambda: (2, 0))
    return calls


def test_local_dashboard_binds_to_localhost_without_a_warning(fake_ray, capsys):
    url = tuning.start_ray(Resources(dashboard_host="127.0.0.1"))
    assert fake_ray[0]["dashboard_host"] == "127.0.0.1" and fake_ray[0]["include_dashboard"]
    assert url == "http://127.0.0.1:8265" and "warning" not in capsys.readouterr().err


def test_a_public_dashboard_is_warned_about(fake_ray, capsys):
    tuning.start_ray(Resources(dashboard_host="0.0.0.0"))
    assert fake_ray[0]["dashboard_host"] == "0.0.0.0"
    err = capsys.readouterr().err
    assert "warning: the Ray dashboard will listen on 0.0.0.0, reachable from other machines" in err


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("localhost", "is not auto, HOST:PORT or ray://HOST:PORT"),
        ("ray://10.0.0.1:port", "is not auto, HOST:PORT or ray://HOST:PORT"),
        ("127.0.0.1:9", "no Ray cluster answers at 127.0.0.1:9"),
    ],
)
def test_bad_addresses_fail_in_one_line(address, message, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(MinitronError, match=message):
        tuning.check_address(address)


def test_auto_is_left_to_ray_unless_ray_address_names_a_host(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    tuning.check_address("auto")  # ray.init finds (or refuses) the local cluster itself
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")
    with pytest.raises(MinitronError, match=r"no Ray cluster answers at 127\.0\.0\.1:9"):
        tuning.check_address("auto")


@pytest.mark.parametrize(
    ("resources", "nodes", "message"),
    [
        (Resources(cpus_per_trial=0), [(2, 0)], "--cpus-per-trial must be positive"),
        (Resources(cpus_per_trial=-1), [(2, 0)], "--cpus-per-trial must be positive"),
        (Resources(gpus_per_trial=-1), [(2, 0)], "--gpus-per-trial must be 0 or more"),
        (Resources(concurrency=0), [(2, 0)], "--concurrency must be at least 1"),
        (Resources(gpus_per_trial=1), [(2, 0)], "asks for 2 CPUs and 1 GPUs, but here has 2 CPUs and 0 GPUs"),
        (Resources(cpus_per_trial=4, gpus_per_trial=1), [(2, 1), (8, 0)], "has 2 CPUs and 1 GPUs, 8 CPUs"),
    ],
)
def test_trials_that_no_node_can_run_are_refused(resources, nodes, message):
    with pytest.raises(MinitronError, match=message):
        tuning.check_fits(resources, nodes, "here")


def test_a_trial_fits_when_one_node_has_enough():
    tuning.check_fits(Resources(cpus_per_trial=4, gpus_per_trial=1), [(2, 1), (8, 2)], "the cluster")


def test_the_probe_budget_ends_the_search_once_spent(tmp_path):
    import pickle

    from search.outputs.records import TrialLog, TrialRecord, TrialStatus
    from search.run.tuning import ProbeBudget
    from tests.tiny import BASE

    log = tmp_path / "trials.jsonl"
    points = [1024, 2048, 4096]
    stopper = ProbeBudget(6000, log, points)
    assert stopper("a", {"probe_tokens": 1024}) is False and not stopper.stop_all()
    assert stopper("a", {"probe_tokens": 2048}) is False, "a trial counts once, at its latest report"
    assert stopper("a", {"probe_tokens": 4096, "probe_done": True}) is False and not stopper.stop_all()
    assert stopper("b", {"trial_error": "no tokens"}) is False
    # b's next rung (to 2,048) would take the spent tokens to 6,144 > 6,000: it stops at its first
    assert stopper("b", {"probe_tokens": 1024}) is True
    assert stopper.stop_all(), "5,120 spent of 6,000: no room for another first rung"
    assert sum(stopper.spent.values()) <= 6000
    # a restored experiment counts again from the trials on record, not from a stale pickle
    arch = {k: BASE[k] for k in ("num_hidden_layers", "hidden_size", "intermediate_size")}
    arch |= {"num_attention_heads": 6, "num_key_value_heads": 2, "head_dim": 8}
    from minitron.model.architecture import Architecture

    TrialLog(log).put(TrialRecord("a", Architecture(**arch), 1, TrialStatus.COMPLETED, probe_tokens=2048.0))
    restored = pickle.loads(pickle.dumps(stopper))
    assert restored.spent == {"a": 2048.0} and restored.points == points and not restored.stop_all()


def test_a_replayed_trial_is_recorded_once_whatever_its_trial_id(tmp_path):
    """A driver killed while Tune's searcher state lagged behind its trials: restored, the searcher
    suggests an architecture already on record again, under a new trial id. The trial replays the
    record (`probe_trial`) so the searcher learns it, and `trials.jsonl` keeps one line for it."""
    from types import SimpleNamespace

    from minitron.model.architecture import Architecture
    from search.outputs.records import TrialLog, TrialRecord, TrialStatus
    from search.run.progress import TrialRecorder

    arch = Architecture(1, 36, 40, 2, 1, 8)
    log = TrialLog(tmp_path / "trials.jsonl")
    log.put(TrialRecord("old", arch, 3_500_000, TrialStatus.FAILED, error="RuntimeError: injected"))
    recorder = TrialRecorder(log, total=3, concurrency=1)
    config = {**arch.as_dict(), "params": 3_500_000}
    replay = log.records["old"].replayed().metrics()
    for trial_id in ("old", "new"):  # restarted under its own id, or suggested again under a new one
        trial = SimpleNamespace(trial_id=trial_id, config=config, last_result=replay)
        recorder.on_trial_result(1, [], trial, replay)
        recorder.on_trial_complete(1, [], trial)
    lines = (tmp_path / "trials.jsonl").read_text().splitlines()
    assert len(lines) == 1 and list(TrialLog(tmp_path / "trials.jsonl").records) == ["old"]
    # a fresh result of a new architecture is recorded as usual
    other = Architecture(1, 36, 16, 6, 2, 8)
    fresh = {"architecture": other.short(), "params": 3_400_000, "probe_loss": 11.6, "probe_done": True}
    trial = SimpleNamespace(
        trial_id="third", config={**other.as_dict(), "params": 3_400_000}, last_result=fresh
    )
    recorder.on_trial_complete(1, [], trial)
    assert len((tmp_path / "trials.jsonl").read_text().splitlines()) == 2
