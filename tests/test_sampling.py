"""The searcher: Optuna proposals through Ray's OptunaSearch, never infeasible, never repeated."""

import json

import yaml
from ray.tune.search import Searcher

from minitron.model.architecture import Architecture, count_params
from search.plan.candidates import feasible
from search.plan.front import seeded_shapes
from search.plan.space import load_space
from search.run.sampling import architecture_of, make_searcher

BUDGET = 70_000_000


def drive(searcher, n, loss=lambda i: 5.0 + i / 100):
    archs = []
    for i in range(n):
        config = searcher.suggest(f"trial{i}")
        if config == Searcher.FINISHED:
            break
        archs.append(architecture_of(config))
        searcher.on_trial_complete(f"trial{i}", {"probe_loss": loss(i)})
    return archs


def test_suggestions_are_feasible_and_new(tmp_path):
    space = load_space("smollm2-135m")
    allowed = {c.arch for c in feasible(space, BUDGET)}
    for sampler in ("tpe", "nsga2", "random"):
        searcher = make_searcher(
            space,
            BUDGET,
            sampler,
            0,
            f"sqlite:///{tmp_path}/{sampler}.db",
            sampler,
            [],
            stats_path=str(tmp_path / f"{sampler}.json"),
        )
        archs = drive(searcher, 8)
        assert len(archs) == 8 and len(set(archs)) == 8, sampler
        assert set(archs) <= allowed, sampler
        assert all(abs(count_params(space.family, a) - BUDGET) <= 0.05 * BUDGET for a in archs)
        assert searcher.rejected["infeasible"] > 0, "the constraint API saw infeasible proposals"
        assert (tmp_path / f"{sampler}.json").exists()


def test_grid_sampler_ends_when_the_feasible_set_is_exhausted(tmp_path):
    # The default space cut down to 48 grid points (the grid sampler visits every one of them).
    data = yaml.safe_load(load_space("smollm2-135m").path.read_text())
    data["choices"] = {
        "num_hidden_layers": [12, 20, 30],
        "hidden_size": [432, 576],
        "intermediate_size": [768, 1024, 1536, 1280],
        "num_attention_heads": [6, 9],
    }
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(data))
    space = load_space(tmp_path / "small.yaml")
    expected = sorted(c.arch for c in feasible(space, BUDGET))
    assert len(expected) >= 4
    searcher = make_searcher(space, BUDGET, "grid", 0, f"sqlite:///{tmp_path}/grid.db", "grid", [])
    archs = drive(searcher, 100)
    assert sorted(archs) == expected, "each feasible shape exactly once"


def test_known_architectures_go_first_and_a_restored_searcher_goes_on(tmp_path):
    space = load_space("llama-3.1-8b")
    seeds = [k.arch for k in space.known]
    storage = f"sqlite:///{tmp_path}/s.db"
    searcher = make_searcher(space, 4_500_000_000, "tpe", 0, storage, "s", seeds)
    first = drive(searcher, 2)
    assert first == seeds
    searcher.save(str(tmp_path / "searcher.pkl"))  # what Tune saves for --resume
    restored = make_searcher(space, 4_500_000_000, "tpe", 0, storage, "s", [])
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert restored.known == {seeds[0]: 5.0, seeds[1]: 5.01}, "finished probes survive the restore"
    after = [architecture_of(restored.suggest(f"later{i}")) for i in range(3)]
    assert not set(after) & set(seeds), "a restored searcher never hands out a probed architecture again"
    assert len(set(after)) == 3


def test_in_flight_architectures_are_not_handed_out_twice(tmp_path):
    space = load_space("smollm2-135m")
    searcher = make_searcher(space, BUDGET, "random", 1, f"sqlite:///{tmp_path}/r.db", "r", [])
    pending = [architecture_of(searcher.suggest(f"t{i}")) for i in range(10)]  # none completes
    assert len(set(pending)) == 10


def test_a_budget_range_spreads_its_trials_over_the_strata_and_tells_optuna_both_objectives(tmp_path):
    """Two objectives (probe loss, parameters); every stratum of the range gets a trial before any
    gets a second, seeded hand shapes first whatever their stratum."""
    space = load_space("smollm2-135m")
    low, high = 50_000_000, 110_000_000
    pool = {c.arch: c.params for c in feasible(space, high, low)}
    seeds = [k.arch for k in seeded_shapes(space, low, high, 3)]
    for sampler in ("tpe", "nsga2"):
        searcher = make_searcher(
            space, high, sampler, 0, f"sqlite:///{tmp_path}/{sampler}.db", sampler, seeds, low=low, pool=pool
        )
        strata = searcher.strata
        assert searcher.metric == ["probe_loss", "params"]
        archs = []
        for i in range(len(seeds) + 10):
            config = searcher.suggest(f"t{i}")
            arch = architecture_of(config)
            archs.append(arch)
            searcher.on_trial_complete(f"t{i}", {"probe_loss": 6.0 - pool[arch] / 1e8, "params": pool[arch]})
        assert archs[: len(seeds)] == seeds, sampler
        assert len(set(archs)) == len(archs) and set(archs) <= set(pool), sampler
        reachable = {strata.of(p) for p in pool.values()}
        assert {strata.of(pool[a]) for a in archs} == reachable, f"{sampler}: every stratum has a trial"
        study = searcher._ot_study
        done = [t for t in study.trials if t.state.name == "COMPLETE" and t.values[0] < 100]
        assert len(done) >= len(archs) and all(len(t.values) == 2 for t in done)
        assert searcher.rejected["stratum_full"] > 0, "suggestions for full strata were turned down"
    latency = make_searcher(
        space, high, "tpe", 0, f"sqlite:///{tmp_path}/l.db", "l", [], low=low, objective="latency"
    )
    assert latency.metric == ["probe_loss", "latency_ms"] and latency.mode == ["min", "min"]


def test_layer_blocks_are_a_searched_choice(tmp_path):
    """With layer_blocks 3 the sampler also picks which block a shallower candidate drops; known
    shapes keep block 0, full-depth shapes never get another block, and every pick is feasible."""
    data = yaml.safe_load(load_space("smollm2-135m").path.read_text())
    data["layer_blocks"] = 3
    (tmp_path / "blocks.yaml").write_text(yaml.safe_dump(data))
    space = load_space(tmp_path / "blocks.yaml")
    candidates = feasible(space, BUDGET)
    plain = feasible(load_space("smollm2-135m"), BUDGET)
    shallow = [c for c in plain if c.arch.num_hidden_layers < 30]
    assert len(candidates) == len(plain) + 2 * len(shallow)
    seeds = [k.arch for k in space.known]
    assert all(a.layer_block == 0 for a in seeds)
    searcher = make_searcher(space, BUDGET, "random", 0, f"sqlite:///{tmp_path}/b.db", "b", seeds)
    archs = drive(searcher, 16)
    assert archs[: len(seeds)] == seeds, "the hand shapes go first, with the block of least loss"
    assert set(archs) <= {c.arch for c in candidates} and len(set(archs)) == len(archs)
    assert any(a.layer_block for a in archs), "another block was tried"
    assert all(a.layer_block == 0 for a in archs if a.num_hidden_layers == 30)


def test_a_trial_record_keeps_its_layer_block_and_old_records_read_as_block_0():
    from minitron import codec
    from search.outputs.records import TrialRecord, TrialStatus

    arch = Architecture(12, 576, 1536, 9, 3, 64, layer_block=2)
    record = TrialRecord("t1", arch, 70_793_280, TrialStatus.COMPLETED, probe_loss=5.0)
    data = json.loads(json.dumps(codec.encode(record)))
    assert data["architecture"]["layer_block"] == 2
    assert codec.decode(TrialRecord, data, "trials.jsonl") == record
    del data["architecture"]["layer_block"]  # a line of trials.jsonl written before layer blocks
    assert codec.decode(TrialRecord, data, "trials.jsonl").architecture == Architecture(
        12, 576, 1536, 9, 3, 64
    )
