"""The settings tree: one default per value, strict loading, and the probe plan the overhead buys."""

from __future__ import annotations

import dataclasses

import pytest

from minitron.distill.probe import ProbeConfig
from minitron.distill.retrain import RetrainConfig
from minitron.distill.step import Head
from minitron.errors import MinitronError
from minitron.importance.scores import ImportanceConfig
from minitron.importance.selection import DepthMethod
from minitron.runtime import Placement
from search.cli.options import build_parser
from search.plan.settings import Resources, SearchPlan, SearchSettings


def default_run() -> SearchSettings:
    """What `search.py --budget 70M --name demo` resolves to on a 2-CPU machine."""
    args = build_parser().parse_args(["--budget", "70M"])
    return SearchSettings.create(
        budget=70_000_000,
        space="spaces/smollm2-135m.yaml",
        teacher="smollm2-135m",
        plan=SearchPlan(depth=args.depth, validation_sequences=args.eval_sequences),
        resources=Resources(cpus_per_trial=2.0),
        retrain_tokens=64_000,
        calibration_samples=args.calibration_samples,
        eval_tasks=tuple(args.eval.split(",")),
        eval_limit=int(args.eval_limit),
        eval_fewshot=None,
        seed=0,
        name="demo",
    )


def test_the_default_probe_plan_is_what_the_overhead_pays_for():
    settings = default_run()
    placement = Placement(threads=2)
    # 0.25 x 2 winners x 64k retraining tokens = 32,000 probe tokens; ASHA over 8 trials and 4 rungs
    # costs about 8 x 5/2 + 8 = 28 first rungs, so the first rung is one step (1,024 tokens) and a
    # full probe 8 steps, validated after steps 1, 2, 4 and 8.
    # --max-not-kept 0.1: beside the winners' 2 x 62 x 1,024 = 126,976 tokens the candidates not kept
    # may train 126,976 / 9 = 14,108 tokens, so the search stops at those plus the winners' two full
    # probes (16,384): 30,492 (their expected 28 - 16 = 12 first rungs, 12,288 tokens, fit).
    assert settings.tokens.winner_tokens == 126_976
    assert settings.tokens.probe_budget == 14_108 + 16_384
    # probes do not decay: they are the first steps of their winner's retraining
    assert settings.probe == ProbeConfig(
        tokens=8 * 1024, rungs=4, seed=0, placement=placement, decay_fraction=0.0
    )
    assert settings.tokens.probe_steps == 8 and settings.tokens.probe_reports == 4
    assert settings.probe.schedule(8).validate_at == (1, 2, 4, 8)
    # winners retrain with the teacher online: only the probes' targets are cached
    assert settings.plan.retrain_teacher == "online"
    assert settings.tokens.target_sequences == 8 * settings.probe.batch_size == 32
    assert settings.retrain == RetrainConfig(
        tokens=64_000, seq_len=256, batch_size=4, lr=1.2e-3, eval_every=15, eval_sequences=16,
        checkpoint_every=7, seed=0, placement=placement, warmup_steps=1, decay_fraction=54 / 62,
    )  # fmt: skip
    # 62 steps: one of warm-up (the probe's), the peak to step 8 (where a full probe ends), then the
    # cosine decay over the last 54
    schedule = settings.retrain.schedule()
    assert (schedule.warmup, schedule.decay_start, schedule.steps) == (1, 8, 62)
    assert settings.probe.schedule(8).is_prefix_of(schedule, 8)
    assert settings.importance == ImportanceConfig(num_samples=128, seq_len=256)
    assert settings.plan.depth is DepthMethod.BLOCK and settings.plan.scheduler == "asha"


def test_fresh_winners_keep_the_cosine_recipe():
    """`--fresh-winners`: cosine probes and a cosine retraining from the pruned weights (40 warm-up
    steps capped at a tenth of the run), as before winners continued from their probes."""
    settings = default_run()
    fresh = SearchSettings.create(
        **{**_create_args(settings), "plan": dataclasses.replace(settings.plan, continue_probes=False)}
    )
    assert fresh.probe.decay_fraction == 1.0 and fresh.retrain.decay_fraction == 1.0
    assert fresh.tokens.probe_budget == 32_000, "every probe token is spent: --overhead alone caps them"
    schedule = fresh.retrain.schedule()
    assert schedule.warmup == 6 and schedule.decay_start == 6


def test_a_probe_reaching_into_the_decay_is_one_clear_line():
    settings = default_run()
    # the decay starts where a full probe ends, so only a probe as long as the retraining reaches it
    plan = dataclasses.replace(settings.plan, probe_tokens=64 * 1024, overhead=10.0, max_not_kept=1.0)
    decays = r"a full probe \(64 steps\) must end before its winner's retraining decays \(step 61 of 62"
    with pytest.raises(MinitronError, match=decays):
        SearchSettings.create(**{**_create_args(settings), "plan": plan})


def _create_args(settings: SearchSettings) -> dict:
    return dict(
        budget=settings.budget, space=settings.space, teacher=settings.teacher, plan=settings.plan,
        resources=settings.resources, retrain_tokens=settings.retrain.tokens,
        calibration_samples=settings.importance.num_samples, eval_tasks=settings.eval.tasks,
        eval_limit=settings.eval.limit, eval_fewshot=None, seed=0, name="demo",
    )  # fmt: skip


def test_cached_retraining_caches_the_winners_whole_token_stream():
    """With `--retrain-teacher cached` one cache of teacher targets serves the probes and the
    winners' retraining (62 steps of 4 sequences)."""
    settings = default_run()
    cached = dataclasses.replace(settings, plan=dataclasses.replace(settings.plan, retrain_teacher="cached"))
    assert cached.tokens.probe_steps * cached.probe.batch_size == 32
    assert cached.tokens.target_sequences == 248


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (
            {"probe_tokens": 16_000},
            r"--probe-tokens 16k for 8 trials \(asha scheduler\) costs about 53.76k tokens",
        ),
        (
            {"overhead": 0.01},
            r"--overhead 0.01 of 128k retraining tokens \(1.28k probe tokens\) cannot pay for one step",
        ),
        ({"scheduler": "none", "probe_tokens": 8_192}, "costs about 65.54k tokens"),
        # one winner (63,488 tokens) beside seven other probes: they may train 7,054 tokens, while
        # ASHA's 28 - 8 = 20 first rungs beyond the winner's full probe cost 20,480 even at one step each
        (
            {"top_k": 1, "overhead": 1.0},
            r"--max-not-kept 0.1: candidates that are not kept may train 7.054k tokens beside the "
            r"winners' 63.49k, less than one step \(1.024k tokens\) per rung for 8 trials and 1 winner",
        ),
        (
            {"top_k": 1, "overhead": 1.0, "probe_tokens": 8_192},
            r"spends about 20.48k tokens on candidates that are not kept, more than --max-not-kept 0.1",
        ),
    ],
)
def test_a_probe_plan_over_the_overhead_is_refused(plan, message):
    with pytest.raises(MinitronError, match=message):
        SearchSettings.create(
            budget=70_000_000, space="s", teacher="t", plan=SearchPlan(**plan), resources=Resources(),
            retrain_tokens=64_000, calibration_samples=8, eval_tasks=(), eval_limit=None,
            eval_fewshot=None, seed=0,
        )  # fmt: skip


def test_a_search_without_the_cap_and_a_run_from_before_it_spend_what_the_overhead_allows():
    settings = default_run()
    uncapped = SearchSettings.create(
        **{**_create_args(settings), "plan": dataclasses.replace(settings.plan, max_not_kept=1.0)}
    )
    assert (
        uncapped.tokens.probe_budget == 32_000 and uncapped.tokens.probe_steps == settings.tokens.probe_steps
    )
    # config.json of a run before --max-not-kept: resumed, it stops where it would have
    saved = settings.to_json()
    del saved["plan"]["max_not_kept"]
    assert SearchSettings.from_json(saved) == uncapped


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


def test_probes_use_the_candidate_head_and_older_runs_keep_the_whole_vocabulary():
    settings = default_run()
    assert settings.probe.weights.head is Head.CANDIDATES
    assert settings.retrain.weights.head is Head.VOCABULARY, "the deliverable trains on the exact KL"
    saved = settings.to_json()
    assert SearchSettings.from_json(saved).probe.weights.head is Head.CANDIDATES
    del saved["probe"]["weights"]["head"]  # a config.json written before the candidate head
    assert SearchSettings.from_json(saved).probe.weights.head is Head.VOCABULARY


def test_every_token_count_is_derived_once_from_the_saved_settings():
    """`tokens` is computed from the settings as saved, never stored: a run read back from its
    config.json has the same counts, and the rung points are the probe's validations."""
    settings = default_run()
    again = SearchSettings.from_json(settings.to_json())
    assert again.tokens == settings.tokens and "tokens" not in settings.to_json()
    assert settings.tokens.probe_points == (1024, 2048, 4096, 8192)
    assert settings.tokens.probe_tokens == settings.probe.tokens == 8 * 1024


def test_runs_distil_on_the_mix_by_default_and_older_runs_keep_their_one_corpus():
    settings = default_run()
    assert settings.data == "mix" and settings.generation.documents > 0
    saved = settings.to_json()
    saved["data"] = "wiki-en"  # a config.json written before the mix: one corpus, no sampling settings
    del saved["generation"]
    old = SearchSettings.from_json(saved)
    assert old.data == "wiki-en" and old.generation == settings.generation
