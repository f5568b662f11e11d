"""The search report: self-contained HTML (no network), the Pareto PNG, escaping, empty runs."""

from __future__ import annotations

import dataclasses
import html
import json
import math
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from minitron import codec
from minitron.errors import MinitronError
from minitron.eval.benchmarks import EvalConfig, Scores
from search.outputs.outcomes import BenchmarkResults
from search.outputs.report import pareto_front, write_report
from search.outputs.summary import Summary
from tests.test_settings import default_run

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVIL = "RuntimeError: CUDA out of memory <script>alert('pwned')</script> & more"

TEACHER_ARCH = {
    "num_hidden_layers": 30,
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "head_dim": 64,
}


def _arch(layers: int, hidden: int, mlp: int, q: int, kv: int) -> dict[str, int]:
    return dict(zip(TEACHER_ARCH, (layers, hidden, mlp, q, kv, 64), strict=True))


def _candidate(
    trial: str, arch: dict[str, int], params: int, probe: float | None, **kw: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "trial_id": trial,
        "architecture": arch,
        "params": params,
        "fraction": params / 134_515_008,
        "zero_shot_loss": None if probe is None else probe + 3.0,
        "probe_loss": probe,
        "final_loss": None,
        "test_loss": None,
        "latency_ms": None if probe is None else params / 5e6,
        "tokens_per_s": None if probe is None else 5e9 / params,
        "speedup": None if probe is None else 134_515_008 / params,
        "status": "completed",
        "error": None,
        "rank": None,
        "winner": False,
    }
    return {**out, **kw}


def sample_summary() -> dict[str, Any]:
    """Six candidates around 70M: two retrained winners, one stopped early, one failed."""
    a1, a2 = _arch(24, 432, 1024, 9, 3), _arch(20, 576, 768, 6, 3)
    candidates = [
        _candidate("t1", a1, 69_000_000, 3.9, rank=1, winner=True, final_loss=3.41),
        _candidate("t2", a2, 68_100_000, 4.1, rank=2, winner=True, final_loss=3.55),
        _candidate("t3", _arch(26, 384, 1152, 6, 2), 67_200_000, 4.3, rank=4),
        _candidate("t4", _arch(30, 384, 768, 6, 2), 66_500_000, 4.6, status="stopped early"),
        _candidate("t5", _arch(22, 480, 960, 6, 3), 71_300_000, 4.0, rank=3),
        _candidate("t6", _arch(18, 576, 1024, 9, 3), 70_100_000, None, status="failed", error=EVIL),
    ]
    return {
        "name": "smollm2-70m <b>run</b>",
        "budget": 70_000_000,
        "band": 0.05,
        "space": "spaces/smollm2-135m.yaml",
        "created": "2026-01-02T03:04:05+00:00",
        "limited": "CPU only: probes shortened to 2k tokens <i>not comparable</i>",
        "teacher": {
            "name": "smollm2-135m",
            "params": 134_515_008,
            "architecture": TEACHER_ARCH,
            "zero_shot_loss": 2.968,
            "latency_ms": 27.0,
            "tokens_per_s": 9500.0,
        },
        "settings": {**codec.encode(default_run()), "dashboard": None},  # as summary.json holds them
        "candidates": candidates,
        "winners": [
            {"rank": 1, "trial_id": "t1", "path": "results/run/winner-1", "final_loss": 3.41,
             "test_loss": 3.467, "architecture": a1, "params": 69_000_000},
            {"rank": 2, "trial_id": "t2", "path": "results/run/winner-2", "final_loss": 3.55,
             "test_loss": 3.598, "architecture": a2, "params": 68_100_000},
        ],
        "cost": {"probe_tokens": 30720, "retrain_tokens": 128000, "overhead": 0.24, "overhead_allowed": 0.25},
    }  # fmt: skip


class _Page(HTMLParser):
    """Collects what a browser would fetch: tag attributes, script bodies, style bodies."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attrs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs += [(tag, k, v or "") for k, v in attrs]
        if tag in ("script", "style"):
            self._in = tag
            (self.scripts if tag == "script" else self.styles).append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        # The parser treats script/style bodies as raw text, so URLs inside plotly's JS code
        # never show up as attributes here.
        if self._in == "script":
            self.scripts[-1] += data
        elif self._in == "style":
            self.styles[-1] += data


def _parse(html_text: str) -> _Page:
    page = _Page()
    page.feed(html_text)
    page.close()
    return page


def test_report_is_self_contained_escaped_and_complete(tmp_path: Path) -> None:
    summary = sample_summary()
    write_report(tmp_path, Summary.from_json(summary))
    html_path, png_path = tmp_path / "report.html", tmp_path / "pareto.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pareto.png", "report.html"]  # no temp files left
    assert png_path.stat().st_size > 1000 and png_path.read_bytes().startswith(PNG_SIGNATURE)
    text = html_path.read_text(encoding="utf-8")
    page = _parse(text)

    # plotly.js is inlined (megabytes of script), nothing is loaded by src, and no attribute or
    # stylesheet points at the network.
    assert max(len(s) for s in page.scripts) > 1_000_000
    assert "plotly.js" in max(page.scripts, key=len)[:200]
    assert not [a for a in page.attrs if a[0] == "script" and a[1] == "src"]
    remote = [a for a in page.attrs if a[1] in ("src", "href", "srcset", "data", "poster", "action")]
    assert not [a for a in remote if a[2].strip().lower().startswith(("http:", "https:", "//"))]
    assert not [a for a in page.attrs if a[0] == "link"]
    for css in [*page.styles, *(v for _, k, v in page.attrs if k == "style")]:
        assert "@import" not in css and "url(" not in css.replace(" ", "")
    # Outside plotly's library (whose code mentions URLs it never fetches here), no URL at all:
    # not in the markup, nor in the small scripts that draw each figure.
    bundle = max(page.scripts, key=len)
    others = "".join(s for s in page.scripts if s is not bundle)
    assert "http:" not in others and "https:" not in others and "mathjax.js" not in others.lower()
    markup = text.replace(bundle, "")
    assert "http:" not in markup and "https:" not in markup
    assert text.count('class="plotly-graph-div"') == 2

    # Every candidate appears by its compact label; summary text is escaped everywhere.
    for label in (
        "L24-h432-m1024-q9kv3-d64",
        "L20-h576-m768-q6kv3-d64",
        "L26-h384-m1152-q6kv2-d64",
        "L30-h384-m768-q6kv2-d64",
        "L22-h480-m960-q6kv3-d64",
        "L18-h576-m1024-q9kv3-d64",
    ):
        assert label in text
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt; &amp; more" in text
    assert "<script>alert" not in text
    assert "smollm2-70m &lt;b&gt;run&lt;/b&gt;" in text and "<b>run</b>" not in text
    assert "&lt;i&gt;not comparable&lt;/i&gt;" in text  # the caveat, escaped
    assert "70M" in text and "134.5M" in text and "smollm2-135m" in text
    assert "results/run/winner-2" in text and "asha" in text
    # The settings as summary.json holds them, nested ones as dotted keys, the dashboard beside them.
    settings = text[text.index("<h2>Settings") :]
    for key in ("plan.scheduler", "probe.weights.kd", "eval.tasks", "dashboard"):
        assert f"<code>{key}</code>" in settings, key

    # The ranking lists rank 1..4, then the unranked stopped-early trial, then the failed one.
    ranking = text[text.index("<h2>Ranking") : text.index("<h2>Retrained")]
    positions = [
        ranking.index(s) for s in ("L24-h432", "L20-h576", "L22-h480", "L26-h384", "L30-h384", "L18-h576")
    ]
    assert positions == sorted(positions)
    assert "51.3%" in ranking and "3.410" in ranking and "stopped early" in ranking
    winners = text[text.index("<h2>Retrained") : text.index("<h2>Benchmarks")]
    assert "test loss" in winners and "<b>3.467</b>" in winners and "3.410" in winners
    assert "search cost: probes trained 30,720 tokens, 24% of the retraining tokens (allowed 25%)" in text


def test_report_handles_empty_single_and_all_failed_runs(tmp_path: Path) -> None:
    summary = sample_summary()
    failed = [
        {**c, "probe_loss": None, "latency_ms": None, "status": "failed", "error": "boom", "rank": None}
        for c in summary["candidates"]
    ]
    teacher_unknown = {"name": "t", "params": None, "architecture": {}, "zero_shot_loss": None}
    cases: dict[str, dict[str, Any]] = {
        "empty": {**summary, "candidates": [], "winners": [], "settings": {}, "limited": None},
        "all-failed": {**summary, "candidates": failed, "winners": []},
        "single": {**summary, "candidates": summary["candidates"][:1], "winners": summary["winners"][:1]},
        "bare": {"name": "bare", "candidates": [], "winners": [], "teacher": teacher_unknown},
    }
    for name, case in cases.items():
        write_report(tmp_path / name, Summary.from_json(case))
        assert (tmp_path / name / "pareto.png").read_bytes().startswith(PNG_SIGNATURE), name
        text = (tmp_path / name / "report.html").read_text(encoding="utf-8")
        assert text.count('class="plotly-graph-div"') == 2 and text.rstrip().endswith("</html>"), name
    empty = (tmp_path / "empty" / "report.html").read_text(encoding="utf-8")
    assert "No trial failed" in empty and "No settings recorded." in empty and "No candidates." in empty
    bare = (tmp_path / "bare" / "report.html").read_text(encoding="utf-8")
    assert "<code>L?-h?-m?-q?kv?-d?</code>" in bare  # a teacher without its sizes
    assert "search cost: not recorded" in bare and "No winners were retrained." in bare
    assert "boom" in (tmp_path / "all-failed" / "report.html").read_text(encoding="utf-8")
    # A second write replaces the files in place.
    write_report(tmp_path / "single", Summary.from_json(summary))
    assert "L18-h576" in (tmp_path / "single" / "report.html").read_text(encoding="utf-8")


def test_pareto_front() -> None:
    points = [
        (5.0, 1.0),  # 0 front (largest, best loss)
        (1.0, 5.0),  # 1 front (smallest)
        (3.0, 3.0),  # 2 front
        (3.0, 4.0),  # 3 dominated by 2 (same x, worse y)
        (4.0, 3.0),  # 4 dominated by 2 (same y, larger x)
        (2.0, 6.0),  # 5 dominated by 1
        (3.0, 3.0),  # 6 identical to 2: neither dominates the other
        (0.5, math.nan),  # 7 not finite: never on the front
        (6.0, 0.5),  # 8 front
    ]
    assert pareto_front(points) == [1, 2, 6, 0, 8]
    assert pareto_front([]) == []
    assert pareto_front([(1.0, 1.0)]) == [0]
    assert pareto_front([(2.0, 1.0), (1.0, 2.0), (1.0, 2.0)]) == [1, 2, 0]


def test_report_module_never_imports_ray_or_optuna() -> None:
    code = "import sys, search.outputs.report; print(sorted({'ray', 'optuna'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_summary_json_round_trips_through_the_typed_summary() -> None:
    data = sample_summary()
    again = Summary.from_json(data).to_json()
    for key in ("name", "budget", "band", "space", "created", "limited", "settings"):
        assert again[key] == data[key], key
    for before, after in zip(data["candidates"], again["candidates"], strict=True):
        assert {k: after[k] for k in before} == before
    for before, after in zip(data["winners"], again["winners"], strict=True):
        assert after == before


SHAPE_EVIL = "<img src=x onerror=alert('shape')> $x^2$ & co"


def range_summary() -> dict[str, Any]:
    """The sample as a 60M–80M range search: hand shapes, latency spreads, budget points."""
    summary = sample_summary()
    spreads = {"t1": (13.4, 14.2), "t2": (13.1, 13.9), "t3": (13.0, 13.8), "t5": (14.0, 14.5)}
    candidates = []
    for c in summary["candidates"]:
        c = dict(c)
        if c["trial_id"] in spreads and c["latency_ms"] is not None:
            low, high = spreads[c["trial_id"]]
            c.update(latency_low_ms=low, latency_high_ms=high, latency_rounds=5, teacher_latency_ms=27.0)
            c.update(speedup=27.0 / c["latency_ms"], speedup_low=27.0 / high, speedup_high=27.0 / low)
        candidates.append(c)
    candidates[2]["name"] = "width-only-67M"
    candidates[4]["name"] = "depth-only@71M"
    winners = [
        {**summary["winners"][0], "budget_point": 80_000_000},
        {**summary["winners"][1], "budget_point": 60_000_000},
    ]
    teacher = {**summary["teacher"], "latency_low_ms": 26.5, "latency_high_ms": 27.75}
    return {
        **summary,
        "budget_low": 60_000_000,
        "budget": 80_000_000,
        "objective": "params",
        "teacher": teacher,
        "candidates": candidates,
        "winners": winners,
    }


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _markup(text: str) -> str:
    """The page without plotly's library, which is megabytes of minified code."""
    return text.replace(max(_parse(text).scripts, key=len), "")


def test_range_report_shows_range_shapes_spreads_and_budget_points(tmp_path: Path) -> None:
    summary = range_summary()
    write_report(tmp_path, Summary.from_json(summary))
    width, height = _png_size((tmp_path / "pareto.png").read_bytes())
    assert width > height > 400  # two panels side by side
    text = _markup((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert text.count('class="plotly-graph-div"') == 2

    # The header, the page title and the shaded band name the range (plotly writes JSON in ASCII).
    assert "budget <b>60M–80M</b> ±5%" in text and "objectives probe loss and <b>parameters</b>" in text
    assert "<title>smollm2-70m &lt;b&gt;run&lt;/b&gt;: 60M–80M from smollm2-135m</title>" in text
    assert "budget 60M\\u201380M" in text or "budget 60M–80M" in text

    # Hand shapes are marked in the ranking and named in both figures (as markers with text).
    ranking = text[text.index("<h2>Ranking") : text.index("<h2>Retrained")]
    assert "hand shape width-only-67M" in ranking and "hand shape depth-only@71M" in ranking
    assert text.count("hand-designed shapes") == 2  # the legend entry of each figure

    # Latency and speed-up with their spread where it is known, alone where it is not.
    assert "13.80 (13.40–14.20)" in ranking
    assert f"{27 / 13.8:.2f}× ({27 / 14.2:.2f}–{27 / 13.4:.2f}×)" in ranking
    assert '<td class="n">13.30</td>' in ranking  # t4: no spread recorded
    assert "latency 27.00 (26.50–27.75) ms" in text  # the teacher
    assert "latency: fastest–slowest round" in text.encode().decode("unicode_escape")  # error bars
    assert '"error_x":{"array"' in text.replace(" ", "")

    # The winners' budget points: a column, and a dotted line each in the parameters figure.
    winners = text[text.index("<h2>Retrained") : text.index("<h2>Benchmarks")]
    assert "<th>budget point</th>" in winners
    assert '<td class="n">80M</td>' in winners and '<td class="n">60M</td>' in winners
    assert "60M (#2)" in text and "80M (#1)" in text


def test_range_report_with_the_latency_objective(tmp_path: Path) -> None:
    summary = range_summary()
    summary["objective"] = "latency"
    summary["winners"][0]["budget_point"] = 14.0
    del summary["winners"][1]["budget_point"]
    write_report(tmp_path, Summary.from_json(summary))
    assert _png_size((tmp_path / "pareto.png").read_bytes())[0] > 0
    text = _markup((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert "objectives probe loss and <b>latency</b>" in text
    winners = text[text.index("<h2>Retrained") : text.index("<h2>Benchmarks")]
    assert '<td class="n">14.00 ms</td>' in winners and winners.count("—") >= 1
    assert "14.00 ms (#1)" in text  # its line is in the latency figure


def test_old_summary_without_range_fields_renders_as_before(tmp_path: Path) -> None:
    summary = sample_summary()
    write_report(tmp_path, Summary.from_json(summary))
    width, height = _png_size((tmp_path / "pareto.png").read_bytes())
    assert width > height
    text = _markup((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert "budget <b>70M</b> ±5%" in text and "budget \\u00b15%" in text  # the header, the band
    assert "budget point" not in text and "hand shape" not in text and "hand-designed" not in text
    ranking = text[text.index("<h2>Ranking") : text.index("<h2>Retrained")]
    assert '<td class="n">13.80</td>' in ranking
    assert f'<td class="n">{134_515_008 / 69e6:.2f}×</td>' in ranking
    assert "latency 27.00 ms" in text
    # A hand-made summary: a range without a band, half a latency spread, no budget points, no
    # objective (the default: parameters).
    odd = {
        **summary,
        "budget_low": 60_000_000,
        "band": None,
        "candidates": [{**c, "latency_low_ms": None, "latency_high_ms": 20.0} for c in summary["candidates"]],
        "winners": [{**w, "budget_point": None} for w in summary["winners"]],
    }
    write_report(tmp_path / "odd", Summary.from_json(odd))
    text = _markup((tmp_path / "odd" / "report.html").read_text(encoding="utf-8"))
    assert "budget <b>60M–70M</b>" in text and "budget point" not in text
    assert "objectives probe loss and <b>parameters</b>" in text and "budget 60M\\u201370M" in text
    assert '<td class="n">13.80</td>' in text  # a latency without its spread


#: Values of the wrong type in a hand-made summary: (what is changed, the key the error names).
WRONG_TYPES = [
    (lambda d: d["candidates"][0].update(name=7), "name must be str, got 7"),
    (lambda d: d["candidates"][1].update(probe_loss="4.1"), "probe_loss must be float, got '4.1'"),
    (lambda d: d["candidates"][2].update(latency_ms="fast"), "latency_ms must be float, got 'fast'"),
    (lambda d: d["candidates"][0].update(status="done"), "status has an unknown value 'done'"),
    (lambda d: d.update(budget="70M"), "budget must be int, got '70M'"),
    (lambda d: d.update(band="5%"), "band must be float, got '5%'"),
    (lambda d: d.update(objective=None), "objective has an unknown value None"),
    (lambda d: d["winners"][0].update(budget_point="80M"), "budget_point must be float, got '80M'"),
    (lambda d: d["teacher"].update(latency_ms="27 ms"), "teacher.latency_ms must be float, got '27 ms'"),
    (lambda d: d["cost"].update(probe_tokens="30,720"), "cost.probe_tokens must be int, got '30,720'"),
    (lambda d: d["settings"].update(seed="0"), "settings.seed must be int, got '0'"),
    (lambda d: d.update(samples={"prompts": ["a"], "continuations": {"teacher": "x"}}), "must be a list"),
]


@pytest.mark.parametrize(("change", "message"), WRONG_TYPES)
def test_a_summary_with_values_of_the_wrong_type_is_refused(change: Any, message: str) -> None:
    """Strings where numbers belong (or a name that is not a string, an unknown status) are refused
    when the summary is read, with one line naming the key and the value; the report never sees them."""
    data = range_summary()
    change(data)
    with pytest.raises(MinitronError) as err:
        Summary.from_json(data)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_hand_shape_names_are_escaped(tmp_path: Path) -> None:
    summary = range_summary()
    summary["candidates"][0]["name"] = SHAPE_EVIL  # a winner too
    write_report(tmp_path, Summary.from_json(summary))
    assert (tmp_path / "pareto.png").read_bytes().startswith(PNG_SIGNATURE)
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<img src=x" not in text and "onerror=alert('shape')>" not in text
    escaped = "&lt;img src=x onerror=alert(&#x27;shape&#x27;)&gt; $x^2$ &amp; co"
    assert f"hand shape {escaped}" in text  # the ranking and the winners table
    # In the figures' JSON (where plotly writes `&` as \u0026 and `<` as \u003c): the marker's
    # label and its hover text, escaped too, since plotly reads both as a small HTML subset.
    figures = text.replace("\\u0026", "&")
    assert figures.count(escaped) >= 2 + 2 * 2  # the two tables; label and hover in both figures
    assert "\\u003cimg" not in text
    assert not [a for a in _parse(text).attrs if a[0] == "img"]


def _benchmarks() -> BenchmarkResults:
    """Two tasks (400 items each) scored for the teacher and winner 1 (trial t1), as a run records them."""
    counts = {t: {"effective": 400, "original": 5000} for t in ("hellaswag", "lambada_openai")}
    teacher = {"hellaswag": {"acc_norm,none": 0.46}, "lambada_openai": {"acc,none": 0.29}}
    winner = {"hellaswag": {"acc_norm,none": 0.31}, "lambada_openai": {"acc,none": 0.02}}
    config = EvalConfig(tasks=("hellaswag", "lambada_openai"), limit=400)
    scores = {name: Scores(results=r, n_samples=counts) for name, r in (("teacher", teacher), ("t1", winner))}
    return BenchmarkResults.of(config, scores, {}, {})


def test_report_and_card_tables_show_per_domain_losses_and_retention(tmp_path: Path) -> None:
    from search.outputs.quality import domain_table, markdown, retention_table

    data = sample_summary()
    mix = dataclasses.replace(default_run(), data="wiki-en=0.7,code-py=0.3,speeches-en=0")
    data["settings"] = {**codec.encode(mix), "dashboard": None}
    data["teacher"] |= {"test_loss": 2.9, "test_losses": {"wiki-en": 2.8, "code-py": 1.5, "speeches-en": 3.0}}
    data["winners"][0] |= {"test_losses": {"wiki-en": 4.1, "code-py": 2.5, "speeches-en": 5.4}}
    data["benchmarks"] = codec.encode(_benchmarks())
    summary = Summary.from_json(data)
    header, rows = domain_table(summary)
    assert header[:3] == ["test split", "weight", "teacher"]
    assert [r[:3] for r in rows] == [
        ["mixture", "—", "2.900"],
        ["wiki-en", "0.7", "2.800"],
        ["code-py", "0.3", "1.500"],
        ["speeches-en", "out of domain", "3.000"],
    ]
    assert rows[3][3] == "5.400 (+2.400)" and rows[3][4] == "—"  # winner 2 has no per-domain losses
    assert "| speeches-en | out of domain |" in markdown(header, rows)
    kept = retention_table(summary, summary.winners[0])
    assert [round(r.retention or 0, 3) for r in kept] == [round(0.06 / 0.21, 3), round(0.02 / 0.29, 3)]
    assert retention_table(summary, summary.winners[1]) == []  # no scores for winner 2
    write_report(tmp_path, summary)
    page = (tmp_path / "report.html").read_text()
    assert "Test loss per domain" in page and "out of domain" in page
    assert "Retention, winner 1" in page and "Retention, winner 2" not in page
    # The benchmarks: the teacher's score, winner 1's with its change in points (a minus sign when
    # it lost), a dash for winner 2, which has none.
    markup = _markup(page)
    bench = markup[markup.index("<h2>Benchmarks") :]
    bench = bench[: bench.index("</table>")]
    assert '<td>hellaswag</td><td>acc_norm</td><td class="n">400</td>' in bench
    assert '<td class="n">46.0</td><td class="n">31.0 (-15.0)</td><td class="n">—</td>' in bench
    assert '<td class="n">29.0</td><td class="n">2.0 (-27.0)</td><td class="n">—</td>' in bench
    one_corpus = Summary.from_json(sample_summary())
    assert domain_table(one_corpus) == ([], [])


def test_a_winner_below_the_teacher_shows_its_gap_with_a_minus_sign(tmp_path: Path) -> None:
    data = sample_summary()
    mix = dataclasses.replace(default_run(), data="wiki-en=0.7,code-py=0.3,speeches-en=0")
    data["settings"] = {**codec.encode(mix), "dashboard": None}
    data["teacher"] |= {"test_loss": 2.9, "test_losses": {"wiki-en": 2.8, "code-py": 1.5, "speeches-en": 3.0}}
    data["winners"][0] |= {"test_losses": {"wiki-en": 4.1, "code-py": 1.249, "speeches-en": 5.4}}
    write_report(tmp_path, Summary.from_json(data))
    page = _markup((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert "1.249 (-0.251)" in page and "(+-" not in page


def test_a_winner_that_drops_another_layer_block_says_so() -> None:
    """The report labels a candidate of another layer block `-b1`; its model card names the kept
    teacher layers and the block's rank (from the winner's `provenance.json`)."""
    from minitron.distill.provenance import Provenance, WinnerOrigin
    from minitron.model.architecture import Architecture
    from search.outputs.cards import _layers
    from search.outputs.report_data import _label

    arch = Architecture(12, 576, 1536, 9, 3, 64)
    assert _label(arch) == "L12-h576-m1536-q9kv3-d64"
    assert _label(dataclasses.replace(arch, layer_block=1)) == "L12-h576-m1536-q9kv3-d64-b1"

    def provenance(layer_block: int | None, kept: list[int]) -> Provenance:
        origin = None
        if layer_block is not None:
            origin = WinnerOrigin("run", 1, "t1", None, "block", layer_block, kept)
        return Provenance(
            origin, "job", "", None, arch.as_dict(), 0, {}, "", 0, None, None, [], 0.0, 0.0, {}, 0, 0.0,
            0.0, None, {},
        )  # fmt: skip

    assert _layers(provenance(None, [])) == "", "a model a search did not choose: nothing said"
    least = _layers(provenance(0, [0, 1, 2, 21]))
    assert least == " (it keeps teacher layers 0, 1, 2, 21)"
    other = _layers(provenance(2, [0, 1, 20, 21]))
    assert other == (
        " (it keeps teacher layers 0, 1, 20, 21, the contiguous block of rank 2 by removal loss"
        " (0: the least))"
    )


# ------------------------------------------------------------------ the page's width (issue 46, 8)


def _css_rules(text: str) -> dict[str, str]:
    """The report's stylesheet as selector -> declarations (one rule per selector list)."""
    css = "".join(_parse(text).styles)
    return {sel.strip(): body.strip() for sel, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css)}


def _declares(rules: dict[str, str], selector: str, *declarations: str) -> bool:
    body = rules.get(selector, "").replace(" ", "")
    return all(d.replace(" ", "") in body for d in declarations)


def _longest_run(text: str) -> int:
    """The longest stretch of `text` without a space or line break."""
    return max((len(word) for word in text.split()), default=0)


def test_report_check_synthetic_summaries_have_real_looking_samples() -> None:
    """bench/report_check.py's synthetic runs show what the teacher and each winner write, with
    the continuations that once pushed the page sideways: hundreds of characters without a space,
    one word repeated."""
    from bench.report_check import synthetic_range_summary, synthetic_summary
    from minitron.eval.samples import PROMPTS

    for make, n_winners in ((synthetic_summary, 2), (synthetic_range_summary, 3)):
        data = make()
        samples, winners = data["samples"], data["winners"]
        assert len(winners) == n_winners, make.__name__
        assert samples["prompts"] == list(PROMPTS)
        texts = samples["continuations"]
        assert list(texts) == ["teacher"] + [w["trial_id"] for w in winners]
        assert all(len(t) == len(PROMPTS) for t in texts.values())
        every = [t for model in texts.values() for t in model]
        assert max(_longest_run(t) for t in every) >= 300  # unbroken, several hundred characters
        assert any(t.split().count("blue") >= 50 for t in every)  # a word over and over
        assert sum(_longest_run(t) >= 200 for t in every) >= 4
        assert codec.encode(Summary.from_json(data).samples) == samples  # what summary.json would hold


def test_long_continuations_wrap_inside_the_page(tmp_path: Path) -> None:
    """'What it writes' wraps each continuation inside its cell (equal columns, the page's width),
    free-text tables wrap, and every table sits in a box that scrolls sideways on its own, so
    the page never gets wider than the window (measured in Chromium by bench/report_check.py)."""
    from bench.report_check import synthetic_range_summary

    data = synthetic_range_summary()
    loser = next(c for c in data["candidates"] if not c["winner"])
    loser.update(status="failed", probe_loss=None, rank=None, error="ValueError: " + "nan" * 200)
    write_report(tmp_path, Summary.from_json(data))
    text = _markup((tmp_path / "report.html").read_text(encoding="utf-8"))
    rules = _css_rules(text)
    assert _declares(rules, ".table-wrap", "max-width: 100%", "overflow-x: auto")
    assert _declares(rules, "table.samples", "width: 100%", "table-layout: fixed")
    assert _declares(rules, "table.free td", "overflow-wrap: anywhere", "word-break: break-word")
    assert _declares(rules, ".sample", "white-space: pre-wrap", "overflow-wrap: anywhere")
    assert _declares(rules, "pre", "white-space: pre-wrap", "overflow-wrap: anywhere")
    assert _declares(rules, "td code.path", "white-space: normal", "overflow-wrap: anywhere")
    assert _declares(rules, "body", "max-width: 1200px", "overflow-wrap: break-word")
    # No rule makes anything wider than its box.
    widening = r"min-width|(?<![-\w])width:\s*\d+px|white-space:\s*pre\s*;"
    assert not re.search(widening, "".join(rules.values()))

    # Every table is in a scrolling box of its own.
    assert text.count("<table") == text.count('<div class="table-wrap"><table') == 5

    writes = text[text.index("<h2>What it writes</h2>") : text.index("<h2>Failed trials")]
    assert '<div class="table-wrap"><table class="free samples">' in writes
    assert "<th>prompt</th><th>teacher</th><th>winner 1</th><th>winner 2</th><th>winner 3</th>" in writes
    texts = data["samples"]["continuations"]
    for model in texts.values():
        for continuation in model:
            assert f'<span class="sample">{html.escape(continuation)}</span>' in writes
    # The settings and the failed trials are free text too; the checkpoints wrap at any character.
    assert '<table class="free"><thead><tr><th>setting</th>' in text
    assert '<table class="free"><thead><tr><th>trial</th><th>architecture</th><th>status</th>' in text
    assert '<code class="path">results/synthetic-range/winner-3</code>' in text
    assert f"<pre>ValueError: {'nan' * 200}</pre>" in text


def test_width_probe_reads_the_page_and_names_what_sticks_out(tmp_path: Path) -> None:
    from bench.report_check import WIDTHS, read_width, screenshot_at, width_verdict, with_width_probe

    page = tmp_path / "page.html"
    page.write_text("<html><body><p>x</p></BODY></html>", encoding="utf-8")
    probed = with_width_probe(page, tmp_path / "probed.html").read_text(encoding="utf-8")
    assert probed.startswith("<html><body><p>x</p><script>") and probed.endswith("</script></BODY></html>")
    assert "scrollWidth" in probed and "innerWidth" in probed and "data-report-width" in probed

    fits = {"scrollWidth": 1400, "innerWidth": 1400, "scrollHeight": 3000, "outside": []}
    wide = {
        "scrollWidth": 6076,
        "innerWidth": 1400,
        "scrollHeight": 3168,
        "outside": [{"element": "table.free.samples", "section": "What it writes", "right": 6076}],
    }
    dom = '<html lang="en" data-report-width="{}"><body></body></html>'
    assert read_width(dom.format(html.escape(json.dumps(wide)))) == wide
    assert read_width("<html><body></body></html>") is None
    assert width_verdict(fits, 1400) == (True, "page 1400 px wide in a 1400 px window")
    ok, line = width_verdict(wide, 1400)
    assert not ok and line == (
        'page 6076 px wide in a 1400 px window: <table.free.samples> under "What it writes" reaches 6076 px'
    )
    assert width_verdict(fits, 800) == (
        False,
        "page 1400 px wide in a 1400 px window, not the 800 px asked for",
    )
    assert not width_verdict(None, 1400)[0]
    assert WIDTHS == (1400, 800)
    shot = tmp_path / "check.png"
    assert [screenshot_at(shot, w).name for w in WIDTHS] == ["check.png", "check-800.png"]


def test_report_check_says_when_it_could_not_check(tmp_path: Path) -> None:
    """Without Chromium it checks nothing and says so, with its own exit status (3), not a failure's."""
    out = subprocess.run(
        [sys.executable, "bench/report_check.py", "--chromium", str(tmp_path / "no-chromium")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 3, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("report_check: could not check: Chromium not found")
    assert not out.stdout


def _chromium() -> str | None:
    found = shutil.which("chromium") or "/usr/bin/chromium"
    return found if Path(found).exists() else None


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (apt-get install -y chromium)")
def test_report_fits_the_window_in_chromium(tmp_path: Path) -> None:
    """The synthetic report with its long continuations is no wider than a 1400 or 800 px window
    in headless Chromium, and the probe does see a page that is wider."""
    from bench.report_check import (
        WIDE_BAIT,
        WIDTHS,
        read_width,
        run_chromium,
        synthetic_summary,
        width_verdict,
        with_width_probe,
    )

    chromium = _chromium()
    assert chromium is not None
    write_report(tmp_path / "run", Summary.from_json(synthetic_summary()))
    (tmp_path / "wide.html").write_text(WIDE_BAIT, encoding="utf-8")
    pages = {
        "report": with_width_probe(tmp_path / "run" / "report.html", tmp_path / "probed.html"),
        "wide": with_width_probe(tmp_path / "wide.html", tmp_path / "wide-probed.html"),
    }
    for window in WIDTHS:
        for name, page in pages.items():
            run = run_chromium(
                chromium, page, ["--dump-dom", f"--window-size={window},2000"], tmp_path / name
            )
            fits, line = width_verdict(read_width(run["stdout"]), window)
            assert fits == (name == "report"), f"{name} at {window} px: {line}"


def test_model_cards_keep_their_markdown_samples_table() -> None:
    """The model card's side of the samples is untouched by the page's wrapping: a plain markdown
    table, one row per prompt with three cells, each continuation whole on its line."""
    from bench.report_check import synthetic_summary
    from search.outputs.cards import _cell, _results

    summary = Summary.from_json(synthetic_summary())
    assert summary.samples is not None
    texts = summary.samples.continuations
    for winner in summary.winners:
        card = _results(summary, winner)
        table = card[card.index("What it writes") :].split("\n\n")[1].splitlines()
        assert table[:2] == ["| prompt | teacher | this model |", "|---|---|---|"]
        assert len(table) == 2 + len(texts["teacher"])
        for i, row in enumerate(table[2:]):
            assert len(re.split(r"(?<!\\)\|", row)) == 3 + 2, row[:80]
            assert _cell(texts["teacher"][i]) in row and _cell(texts[winner.trial_id][i]) in row
        assert "<span" not in card and "class=" not in card
