"""The settings tree: one default per value, strict loading, and runs saved by the flat layout."""

from __future__ import annotations

import dataclasses

import pytest

from minitron.distill.probe import ProbeConfig
from minitron.distill.retrain import RetrainConfig
from minitron.errors import MinitronError
from minitron.importance.scores import ImportanceConfig
from minitron.importance.selection import DepthMethod
from minitron.runtime import Placement
from search.options import build_parser
from search.settings import Resources, SearchPlan, SearchSettings

#: The settings of the default demo as the flat layout saved them (config.json of a run made before
#: the settings tree).
FLAT = {
    "budget": 70000000, "space": "spaces/smollm2-135m.yaml", "teacher": "smollm2-135m", "data": "wiki-en",
    "trials": 8, "probe_tokens": 16000, "probe_top_k": 64, "probe_lr": 0.0003, "top_k": 2,
    "retrain_tokens": 32000, "retrain_lr": 0.0002, "seq_len": 256, "batch_size": 4, "eval_sequences": 16,
    "calibration_samples": 128, "depth": "block", "depth_accuracy_items": 200, "cpus_per_trial": 2.0,
    "gpus_per_trial": 0.0, "concurrency": 1, "sampler": "tpe", "scheduler": "none", "seed": 0,
    "name": "demo", "out": "results", "address": None, "dashboard_host": "127.0.0.1",
    "allow_pickle": False, "trust_remote_code": False,
    "eval_tasks": ["hellaswag", "piqa", "winogrande", "arc_easy", "arc_challenge", "lambada_openai"],
    "eval_limit": 100, "eval_fewshot": None,
}  # fmt: skip


def default_run() -> SearchSettings:
    """What `search.py --budget 70M --name demo` resolves to on a 2-CPU machine."""
    args = build_parser().parse_args(["--budget", "70M"])
    return SearchSettings.create(
        budget=70_000_000,
        space="spaces/smollm2-135m.yaml",
        teacher="smollm2-135m",
        plan=SearchPlan(depth=args.depth, validation_sequences=args.eval_sequences),
        resources=Resources(cpus_per_trial=2.0),
        retrain_tokens=32_000,
        calibration_samples=args.calibration_samples,
        eval_tasks=tuple(args.eval.split(",")),
        eval_limit=int(args.eval_limit),
        eval_fewshot=None,
        seed=0,
        name="demo",
    )


def test_the_flat_layout_reads_as_the_same_run():
    assert SearchSettings.from_json(FLAT) == default_run()


def test_what_probes_and_retraining_use_is_what_the_flat_layout_meant():
    settings = default_run()
    placement = Placement(threads=2)
    assert settings.probe == ProbeConfig(batch_size=4, lr=3e-4, eval_every=3, seed=0, placement=placement)
    assert settings.probe_steps == 15 and settings.probe_sequences == 62 and settings.probe_reports == 5
    assert settings.retrain == RetrainConfig(
        tokens=32_000, seq_len=256, batch_size=4, lr=2e-4, eval_every=7, eval_sequences=16,
        checkpoint_every=3, seed=0, placement=placement,
    )  # fmt: skip
    assert settings.importance == ImportanceConfig(num_samples=128, seq_len=256)
    assert settings.plan.depth is DepthMethod.BLOCK


def test_settings_round_trip_exactly():
    settings = dataclasses.replace(default_run(), plan=SearchPlan(depth="layer_loss", probe_tokens=4000))
    again = SearchSettings.from_json(settings.to_json())
    assert again == settings and again.plan.depth is DepthMethod.LAYER_LOSS
    assert isinstance(again.eval.tasks, tuple)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["plan"].update(trails=4), "unknown setting settings.plan.trails"),
        (lambda d: d.update(colour="red"), "unknown setting settings.colour"),
        (lambda d: d.pop("budget"), "setting settings.budget is missing"),
        (lambda d: d["plan"].update(depth="sideways"), "settings.plan.depth has an unknown value 'sideways'"),
        (lambda d: d["plan"].update(trials="8"), "settings.plan.trials must be int, got '8'"),
        (lambda d: d["retrain"].update(seq_len=128), "retrain.seq_len differs"),
    ],
)
def test_saved_settings_are_read_strictly(change, message):
    data = default_run().to_json()
    change(data)
    with pytest.raises(MinitronError, match=message):
        SearchSettings.from_json(data)


def test_the_flat_layout_refuses_what_it_cannot_reproduce():
    with pytest.raises(MinitronError, match="unknown setting colour"):
        SearchSettings.from_json({**FLAT, "colour": "red"})
    with pytest.raises(MinitronError, match="cannot reproduce"):
        SearchSettings.from_json({**FLAT, "batch_size": 8})


def test_other_resources_change_threads_and_nothing_else():
    settings = default_run()
    moved = settings.with_resources(Resources(cpus_per_trial=8.0, gpus_per_trial=1.0, concurrency=4))
    assert moved.probe.placement.threads == 8 and moved.retrain.placement.threads == 8
    assert (
        dataclasses.replace(
            moved, resources=settings.resources, probe=settings.probe, retrain=settings.retrain
        )
        == settings
    )
    assert dataclasses.replace(moved.probe, placement=Placement(threads=2)) == settings.probe
