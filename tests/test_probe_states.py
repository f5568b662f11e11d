"""Which probe states a run keeps, and what the search cost once winners keep their probes' tokens."""

import dataclasses

from search.outputs.outcomes import WinnerResult
from search.outputs.records import TrialRecord, TrialStatus
from search.outputs.summary import search_cost
from search.plan.settings import SearchPlan, SearchSettings
from search.run.probe_states import contenders, drop_losers, keep_only


def record(tid, layers, loss, params, status=TrialStatus.COMPLETED, tokens=8192.0):
    from minitron.model.architecture import Architecture

    arch = Architecture(
        num_hidden_layers=layers, hidden_size=64, intermediate_size=128, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16,
    )  # fmt: skip
    return TrialRecord(tid, arch, params, status, probe_loss=loss, probe_tokens=tokens)


def test_the_best_finished_probes_are_kept_on_one_budget_and_the_front_on_a_range(tmp_path):
    records = [
        record("a", 1, 4.0, 10),
        record("b", 2, 3.0, 20),
        record("c", 3, 3.5, 5),
        record("d", 4, 2.0, 30, status=TrialStatus.STOPPED_EARLY, tokens=1024.0),
    ]
    label = {r.trial_id: r.architecture.short() for r in records}
    assert contenders(records, 2, None) == {label["b"], label["c"]}, "stopped early never wins"
    # the front of (params, loss): c (5, 3.5) and b (20, 3.0); a (10, 4.0) is dominated by c
    assert contenders(records, 2, "params") == {label["b"], label["c"]}
    for r in records:
        (tmp_path / label[r.trial_id]).mkdir()
    (tmp_path / "running-probe").mkdir()  # a probe still writing: not a finished trial's label
    drop_losers(tmp_path, records, contenders(records, 1, None))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([label["b"], "running-probe"])
    keep_only(tmp_path, set())
    assert not list(tmp_path.iterdir())


def test_the_search_cost_counts_only_tokens_of_candidates_not_kept():
    records = [record("a", 1, 3.0, 10), record("b", 2, 4.0, 10), record("c", 3, 5.0, 10, tokens=2048.0)]
    finals = {
        "a": WinnerResult("w1", 2.5, tokens_trained=65536, probe_tokens_kept=8192),
        "b": WinnerResult("w2", 2.6, tokens_trained=65536),  # started afresh: its probe was spent
    }
    plan = SearchPlan(overhead=0.25, top_k=2, max_not_kept=1.0)  # as a run from before the cap reads
    settings = SearchSettings(budget=1, space="s", teacher="t", plan=plan)
    cost = search_cost(records, finals, settings)
    assert cost.probe_tokens == 8192 * 2 + 2048 and cost.probe_tokens_kept == 8192
    assert cost.tokens_all == 2 * 65536 + 8192 + 2048  # every token trained once
    assert cost.tokens_not_kept == 8192 + 2048
    assert cost.not_kept_fraction == (8192 + 2048) / (2 * 65536 + 8192 + 2048)
    assert search_cost(records, {}, settings).not_kept_fraction is None, "nothing retrained yet"
    assert cost.not_kept_allowed is None, "a run from before --max-not-kept had no cap"
    capped = dataclasses.replace(settings, plan=dataclasses.replace(plan, max_not_kept=0.1))
    cost = search_cost(records, finals, capped)
    assert cost.not_kept_allowed == 0.1 and cost.probe_budget == capped.tokens.probe_budget
    assert cost.not_kept_clause().endswith("went to candidates that were not kept (allowed 10%)")
