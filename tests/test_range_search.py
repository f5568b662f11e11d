"""`python search.py --budget LOW:HIGH` end to end on the tiny teacher: a Pareto front over the range."""

import json

from minitron.model.architecture import Architecture
from tests.test_search_cli import private_cache, search

# The tiny space's candidates come in two clusters (hidden 36: ~3.55M, hidden 48: ~4.73M parameters).
RANGE = "3.6M:4.6M"


def test_a_budget_range_probes_across_it_and_retrains_winners_along_the_front(tiny_space, tmp_path):
    space, env = tiny_space
    env = private_cache(tmp_path, env)
    # 3 retraining steps; 1-step probes (--overhead 1: 3 winners x 4k / 6 trials), which the winners
    # continue from (--max-not-kept 1: the three others' probes may cost more than 10 % of all tokens)
    args = ["--space", str(space), "--budget", RANGE, "--trials", "6", "--retrain-tokens", "4k"]
    args += ["--calibration-samples", "8", "--eval-sequences", "4", "--test-sequences", "8"]
    args += ["--eval", "none", "--overhead", "1", "--max-not-kept", "1"]
    result = search(env, *args, "--out", str(tmp_path / "runs"), "--name", "run")
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "runs" / "run"
    summary = json.loads((run / "summary.json").read_text())
    config = json.loads((run / "config.json").read_text())["settings"]
    assert (config["budget_low"], config["budget"]) == (3_600_000, 4_600_000)
    assert (config["plan"]["scheduler"], config["plan"]["rungs"], config["plan"]["top_k"]) == ("none", 1, 3)
    assert (summary["budget_low"], summary["objective"]) == (3_600_000, "params")

    trials = [json.loads(line) for line in (run / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 6 and all(t["status"] == "completed" for t in trials), "no scheduler stops a probe"
    assert len({t["probe_tokens"] for t in trials}) == 1, "every probe trained as long: losses compare"
    assert all(3_420_000 <= t["params"] <= 4_830_000 for t in trials), "inside the range's bands"
    assert {t["params"] > 4_000_000 for t in trials} == {True, False}, "both ends of the range are probed"
    # The hand shapes at the budget points went first and are named in the summary.
    assert "[search] probing first: width-only@3.6M" in result.stdout
    named = {c["name"] for c in summary["candidates"] if c["name"]}
    assert named and all(n.startswith(("width-only@", "depth-only@")) for n in named)
    # The study had two objectives: probe loss and parameters.
    import optuna

    study = optuna.load_study(study_name="run", storage=f"sqlite:///{run / 'optuna.db'}")
    assert len(study.directions) == 2
    told = [t.values for t in study.trials if t.state.name == "COMPLETE" and t.values[0] < 100]
    assert sorted(v[1] for v in told) == sorted(t["params"] for t in trials), (
        "each probe told as (loss, params)"
    )

    # Winners along the front: the best candidate at each of 3 budget points, each retrained once.
    winners = summary["winners"]
    assert 1 <= len(winners) <= 3 and len({w["trial_id"] for w in winners}) == len(winners)
    points = [w["budget_point"] for w in winners]
    assert points == sorted(points) and set(points) <= {3_600_000, 4_100_000, 4_600_000}
    by_id = {c["trial_id"]: c for c in summary["candidates"]}
    for w in winners:
        fits = [c for c in summary["candidates"] if c["params"] <= w["budget_point"] * 1.05]
        assert by_id[w["trial_id"]]["probe_loss"] == min(c["probe_loss"] for c in fits)
        assert w["test_loss"] is not None and Architecture(**w["architecture"]).short() in w["path"]
        assert w["probe_tokens_kept"] == 1024, "every winner along the front continued from its probe"
    assert not any((run / "probes").iterdir())
    # The report draws the front over the range.
    assert "3.6M–4.6M" in (run / "report.html").read_text()
    assert (run / "pareto.png").stat().st_size > 10_000
