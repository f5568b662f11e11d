"""Render a search report in headless Chromium: no console errors, no network requests, real plots,
and a page no wider than the window.

    python bench/report_check.py [REPORT.html | --range] [--chromium PATH] [--screenshot PNG] [--out JSON]

Without REPORT.html it writes one from a synthetic summary (20 candidates, winners, a stopped and a
failed trial whose error holds markup, the settings `search.py` resolves to, and what the teacher
and each winner write after the four prompts, with continuations the way small models write them:
several hundred characters without a space, one word repeated, long code lines; with `--range`, a
50M–110M range search with hand-designed shapes, latency spreads and three winners), read as
`summary.json` is read (`Summary.from_json`, strict about every value's type), into a temporary
folder with `search.outputs.report.write_report`.

Chromium runs on a fresh profile each time, with every host name resolving to nothing
(`--host-resolver-rules`), so nothing can leave the machine even if the page asked: once to dump
the DOM after the scripts ran, once more per window width to measure the page, once per width for a
screenshot. Each run logs the console to stderr and its network activity to a net log. A request
counts against the page when it is an http(s)/ws(s) request made for the page (its network
isolation key is the page's `file://` site); requests the browser makes for itself (clock sync,
sign-in probes) are listed but are not the page's doing. A bait page with a console error and a
remote image is checked first, to show both detectors work; a bait page wider than the window, to
show the width probe works.

The width is measured in a copy of the page with a small script added that writes, once the plots
are drawn, `document.documentElement.scrollWidth` and `window.innerWidth` into the DOM (and, when
the page is wider, the elements that stick out, with the section they are in); the page passes at a
width when it is no wider than the window (1400 and 800 px). Tables of numbers may scroll inside
their own box; the page itself may not. The screenshots (`--screenshot PNG` at 1400 px, the same
name with `-800` at 800 px) cover the whole page.

Prints a pass/fail table, writes JSON (default `results/bench/report_check.json`) and exits 0 when
every check passes, 1 on a failure (with one line on stderr naming it, e.g. the page's width),
2 on bad input, and 3 when it could not check (no Chromium).
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minitron import codec
from search.outputs.report import write_report
from search.outputs.summary import Summary
from search.plan.settings import (
    DEFAULT_EVAL_LIMIT,
    DEFAULT_EVAL_TASKS,
    RANGE_RUNGS,
    RANGE_WINNERS,
    Resources,
    Scheduler,
    SearchPlan,
    SearchSettings,
)

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # runs as root in containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-proxy-server",
    "--no-pings",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-default-apps",
    "--disable-features=OptimizationHints,Translate,MediaRouter,NetworkTimeServiceQuerying",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--enable-logging=stderr",
    "--v=0",
    "--hide-scrollbars",
    "--virtual-time-budget=15000",  # let plotly draw before the DOM is dumped or the shot taken
]
REMOTE = ("http://", "https://", "ws://", "wss://", "ftp://")
BAIT = (
    '<!DOCTYPE html><html><body><p>bait</p><img src="http://example.invalid/bait.png">'
    '<script>console.error("bait-console-error");</script></body></html>'
)
#: The window widths the page must fit: a laptop's browser window, and a narrow one.
WIDTHS = (1400, 800)
#: Added before `</body>` in a copy of the page: once the plots are drawn, it writes the page's
#: width, the window's and (when the page is wider) the outermost elements that stick out past the
#: window's right edge without a box around them that clips or scrolls, with the heading of their
#: section, into the `data-report-width` attribute of <html>, which `--dump-dom` prints.
WIDTH_PROBE = r"""<script>
(function () {
  function describe(el) {
    var name = el.tagName.toLowerCase();
    if (el.id) name += "#" + el.id;
    var cls = typeof el.className === "string" ? el.className.trim() : "";
    return cls ? name + "." + cls.split(/\s+/).join(".") : name;
  }
  function section(el) {
    while (el.parentElement && el.parentElement !== document.body) el = el.parentElement;
    for (var p = el; p; p = p.previousElementSibling) {
      if (/^H[1-3]$/.test(p.tagName)) return p.textContent.trim();
    }
    return "";
  }
  function boxed(el) {
    for (var a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== "visible") return true;
    }
    return false;
  }
  function right(el) {
    return el.getBoundingClientRect().right + window.scrollX;
  }
  function measure() {
    var doc = document.documentElement, inner = window.innerWidth, out = [];
    if (doc.scrollWidth > inner) {
      var all = document.body.getElementsByTagName("*");
      for (var i = 0; i < all.length; i++) {
        var el = all[i], up = el.parentElement;
        if (right(el) <= inner || boxed(el)) continue;
        if (up && up !== document.body && right(up) > inner) continue;
        out.push({element: describe(el), section: section(el), right: Math.round(right(el))});
      }
      out.sort(function (a, b) { return b.right - a.right; });
    }
    doc.setAttribute("data-report-width", JSON.stringify({scrollWidth: doc.scrollWidth,
      innerWidth: inner, scrollHeight: doc.scrollHeight, outside: out.slice(0, 5)}));
  }
  window.addEventListener("load", function () { setTimeout(measure, 1000); });
})();
</script>"""
#: A page wider than any window (600 characters without a space in a table), to show the probe sees it.
WIDE_BAIT = "<!DOCTYPE html><html><body><table><tr><td>" + "x" * 600 + "</td></tr></table></body></html>"
#: The prompts of `minitron.eval.samples.PROMPTS` (not imported: that module needs torch).
PROMPTS = (
    "The capital of France is",
    "Once upon a time, in a small village by the sea,",
    "def fibonacci(n):\n",
    "Q: Why is the sky blue?\nA:",
)
TEACHER_TEXTS = (
    " Paris. It is the largest city in France and its political, economic and cultural centre, home to"
    " the Louvre, the Eiffel Tower and about two million people.",
    " there lived an old fisherman called Tomas. Every morning he rowed out past the harbour wall\nbefore"
    " the sun rose, and every evening he came back",
    "    if n <= 1:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n\n\n"
    "print(fibonacci(10))",
    " The sky looks blue because the air scatters the short blue wavelengths of sunlight much more than"
    " the long red ones.",
)
#: What small pruned models write: one word over and over, hundreds of characters without a space
#: (a token glued to itself, an identifier, separator lines, a code line, Cyrillic).
WINNER_TEXTS = (
    (
        " Paris, the capital of the capital of the capital of the capital of France, the capital of"
        " France, the capital",
        " there was a little girl who lived in a small village by the sea, in a small village by the"
        " sea, in a small village by the sea,",
        "fibonacci" + "accion" * 60,
        " blue" * 120,
    ),
    (
        " " + "the_capital_of_france_is_paris_" * 12,
        "\n\n" + "=" * 240 + "\n" + "-" * 240,
        "    return " + "+".join(f"fibonacci(n-{k})" for k in range(1, 25)),
        " " + "blue" * 100 + " sky sky sky sky",
    ),
    (
        " Par" + "i" * 320 + "s",
        " once upon a time," * 12,
        "def fibonacci(n):\n" * 6,
        " A:" + "A:" * 200 + " " + "небоголубое" * 30,
    ),
)


def llama_params(layers: int, hidden: int, mlp: int, heads: int = 9, kv_heads: int = 3) -> int:
    """Parameters of a tied-embedding SmolLM2-style decoder (vocab 49,152, head_dim 64)."""
    attention = hidden * 64 * (2 * heads + 2 * kv_heads)
    return 49_152 * hidden + layers * (attention + 3 * hidden * mlp + 2 * hidden) + hidden


def _row(
    i: int,
    shape: tuple[int, int, int],
    params: int,
    teacher_params: int,
    probe: float,
    latency: float,
    teacher_latency: float,
    stopped: bool,
) -> dict[str, Any]:
    """One synthetic candidate of the ranking."""
    layers, hidden, mlp = shape
    arch = {"num_hidden_layers": layers, "hidden_size": hidden, "intermediate_size": mlp}
    return {
        "trial_id": f"trial_{i:03d}",
        "architecture": arch | {"num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64},
        "params": params,
        "fraction": params / teacher_params,
        "zero_shot_loss": probe + 3.1,
        "probe_loss": probe,
        "final_loss": None,
        "latency_ms": latency,
        "tokens_per_s": 256_000 / latency,
        "speedup": teacher_latency / latency,
        "status": "stopped early" if stopped else "completed",
        "error": None,
        "rank": None,
        "winner": False,
    }


def synthetic_samples(trial_ids: list[str]) -> dict[str, Any]:
    """`summary.json`'s `samples` for the teacher and each winner (by trial id), as a run writes
    them: prompts, and continuations by model."""
    continuations: dict[str, list[str]] = {"teacher": list(TEACHER_TEXTS)}
    for i, trial_id in enumerate(trial_ids):
        continuations[trial_id] = list(WINNER_TEXTS[i % len(WINNER_TEXTS)])
    return {"prompts": list(PROMPTS), "continuations": continuations}


def synthetic_settings(name: str, budget: int, budget_low: int | None = None) -> dict[str, Any]:
    """`summary.json`'s `settings` of a synthetic run: what `search.py --budget 70M` (or, for a
    range, `--budget 50M:110M --trials 16`: every probe to its end, three winners) resolves to on a
    2-CPU machine, and no dashboard."""
    plan = SearchPlan()
    if budget_low is not None:
        plan = SearchPlan(trials=16, scheduler=Scheduler.NONE, rungs=RANGE_RUNGS, top_k=RANGE_WINNERS)
    settings = SearchSettings.create(
        budget=budget,
        space="spaces/smollm2-135m.yaml",
        teacher="smollm2-135m",
        plan=plan,
        resources=Resources(cpus_per_trial=2.0),
        retrain_tokens=64_000,
        calibration_samples=128,
        eval_tasks=DEFAULT_EVAL_TASKS,
        eval_limit=DEFAULT_EVAL_LIMIT,
        eval_fewshot=None,
        seed=0,
        name=name,
        budget_low=budget_low,
    )
    return {**codec.encode(settings), "dashboard": None}


def synthetic_summary() -> dict[str, Any]:
    """A plausible 70M search over SmolLM2-135M, deterministic, with every kind of row."""
    teacher_params = llama_params(30, 576, 1536)
    grid = [(n, h, m) for n in range(16, 31, 2) for h in (384, 432, 480, 576) for m in range(512, 1537, 128)]
    # The 20 shapes nearest the budget, as a search would sample them.
    shapes = sorted(grid, key=lambda s: abs(llama_params(*s) - 70_000_000))[:20]
    candidates: list[dict[str, Any]] = []
    for i, (layers, hidden, mlp) in enumerate(shapes):
        params = llama_params(layers, hidden, mlp)
        # Made-up but shaped like real probes: wider and deeper help, with some noise.
        stopped = i % 6 == 5
        probe = 4.0 + 0.3 * (576 - hidden) / 192 + 0.02 * (30 - layers) + 0.07 * ((i * 7) % 5)
        probe += 0.3 * (70_000_000 - params) / 1_500_000  # larger is better
        probe += 0.4 if stopped else 0.0  # stopped at an early rung, so its loss is higher
        latency = 4.0 + layers * 0.6 + hidden / 300
        candidates.append(
            _row(i, (layers, hidden, mlp), params, teacher_params, probe, latency, 27.0, stopped)
        )
    candidates[7].update(
        status="failed",
        probe_loss=None,
        latency_ms=None,
        speedup=None,
        tokens_per_s=None,
        error="RuntimeError: probe diverged <script>alert('x')</script>\n  at step 120",
    )
    ranked = sorted((c for c in candidates if c["status"] == "completed"), key=lambda c: c["probe_loss"])
    for rank, c in enumerate(ranked, 1):
        c["rank"] = rank
    winners = []
    for c in ranked[:2]:
        c.update(winner=True, final_loss=c["probe_loss"] - 0.6)
        winners.append(
            {
                "rank": c["rank"],
                "trial_id": c["trial_id"],
                "path": f"results/synthetic/winner-{c['rank']}",
                "final_loss": c["final_loss"],
                "architecture": c["architecture"],
                "params": c["params"],
            }
        )
    return {
        "name": "synthetic-70m",
        "budget": 70_000_000,
        "band": 0.05,
        "space": "spaces/smollm2-135m.yaml",
        "created": "2026-01-01T00:00:00+00:00",
        "limited": "synthetic numbers for the rendering check <not a real run>",
        "teacher": {
            "name": "smollm2-135m",
            "params": teacher_params,
            "architecture": {
                "num_hidden_layers": 30,
                "hidden_size": 576,
                "intermediate_size": 1536,
                "num_attention_heads": 9,
                "num_key_value_heads": 3,
                "head_dim": 64,
            },
            "zero_shot_loss": 2.968,
            "latency_ms": 27.0,
            "tokens_per_s": 3700.0,
        },
        "settings": synthetic_settings("synthetic-70m", 70_000_000),
        "candidates": candidates,
        "winners": winners,
        "samples": synthetic_samples([w["trial_id"] for w in winners]),
    }


def synthetic_range_summary() -> dict[str, Any]:
    """A plausible 50M–110M range search over SmolLM2-135M: 16 searched shapes spread over the
    range, two hand-designed ones, latencies with their spread over rounds, 3 winners spread
    along the front at budget points 50M, 80M and 110M. Deterministic."""
    teacher_params = llama_params(30, 576, 1536)
    teacher_latency = 27.0
    grid = [(n, h, m) for n in range(12, 31, 2) for h in (384, 432, 480, 576) for m in range(512, 1537, 128)]
    targets = [48e6 + i * (115e6 - 48e6) / 15 for i in range(16)]
    shapes: list[tuple[int, int, int]] = []
    for target in targets:  # the shape nearest each target, as a search would spread them
        shapes.append(min((s for s in grid if s not in shapes), key=lambda s: abs(llama_params(*s) - target)))
    hand = [("width-only-71M", (30, 384, 1024)), ("depth-only@90M", (18, 576, 1536))]
    rows = [(None, s) for s in shapes] + hand
    candidates: list[dict[str, Any]] = []
    for i, (name, (layers, hidden, mlp)) in enumerate(rows):
        params = llama_params(layers, hidden, mlp)
        stopped = name is None and i % 7 == 6
        probe = 3.35 + 1.25 * (115e6 - params) / 70e6 + 0.05 * ((i * 7) % 5) + (0.35 if stopped else 0.0)
        probe += 0.12 if name == "depth-only@90M" else 0.0  # cutting whole layers costs more
        latency = teacher_latency * (params / teacher_params) * (1 + 0.04 * ((i * 3) % 5 - 2) / 2)
        low, high = latency * (0.97 + 0.005 * (i % 3)), latency * (1.03 - 0.004 * (i % 4))
        row = _row(i, (layers, hidden, mlp), params, teacher_params, probe, latency, teacher_latency, stopped)
        row.update(
            name=name,
            latency_low_ms=low,
            latency_high_ms=high,
            latency_rounds=5,
            teacher_latency_ms=teacher_latency,
            speedup_low=teacher_latency / high,
            speedup_high=teacher_latency / low,
        )
        candidates.append(row)
    ranked = sorted((c for c in candidates if c["status"] == "completed"), key=lambda c: c["probe_loss"])
    for rank, c in enumerate(ranked, 1):
        c["rank"] = rank
    winners = []
    for i, point in enumerate((50e6, 80e6, 110e6), 1):
        # The best feasible completed candidate at each budget point (the band is 5%).
        c = min((c for c in ranked if 47.5e6 <= c["params"] <= point * 1.05), key=lambda c: c["probe_loss"])
        c.update(winner=True, final_loss=c["probe_loss"] - 0.6, test_loss=c["probe_loss"] - 0.55)
        winners.append(
            {
                "rank": i,
                "trial_id": c["trial_id"],
                "path": f"results/synthetic-range/winner-{i}",
                "final_loss": c["final_loss"],
                "test_loss": c["test_loss"],
                "architecture": c["architecture"],
                "params": c["params"],
                "budget_point": point,
            }
        )
    summary = synthetic_summary()
    return {
        **summary,
        "name": "synthetic-50m-110m",
        "budget": 110_000_000,
        "budget_low": 50_000_000,
        "objective": "params",
        "settings": synthetic_settings("synthetic-50m-110m", 110_000_000, 50_000_000),
        "teacher": {
            **summary["teacher"],
            "params": teacher_params,
            "latency_ms": teacher_latency,
            "latency_low_ms": 26.4,
            "latency_high_ms": 27.9,
        },
        "candidates": candidates,
        "winners": winners,
        "samples": synthetic_samples([w["trial_id"] for w in winners]),
    }


def run_chromium(chromium: str, page: Path, mode: list[str], work: Path) -> dict[str, Any]:
    """One headless run on a fresh profile; its stdout, console lines and network requests."""
    work.mkdir(parents=True, exist_ok=True)
    net_log = work / "net-log.json"
    cmd = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={work / 'profile'}",
        f"--log-net-log={net_log}",
        *mode,
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    console = [
        line
        for line in proc.stderr.splitlines()
        if ":CONSOLE" in line or "CONSOLE(" in line or "Uncaught" in line
    ]
    page_requests, browser_requests = net_requests(net_log)
    return {
        "returncode": proc.returncode,
        "stdout": proc.stdout,
        "console": console,
        "page_requests": page_requests,
        "browser_requests": browser_requests,
    }


def net_requests(net_log: Path) -> tuple[list[str], list[str]]:
    """Remote URLs requested for the page, and those the browser requested for itself."""
    if not net_log.exists():
        return ["(no net log was written)"], []
    text = net_log.read_text(encoding="utf-8", errors="replace").rstrip()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # a browser killed mid-write leaves the event list unclosed
        log = json.loads(text.rstrip(",") + "]}")
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    page: set[str] = set()
    browser: set[str] = set()
    for event in log.get("events", []):
        params = event.get("params") or {}
        url = str(params.get("url", ""))
        if event.get("type") != start_job or not url.lower().startswith(REMOTE):
            continue
        for_page = str(params.get("network_isolation_key", "")).startswith("file://")
        (page if for_page else browser).add(url)
    return sorted(page), sorted(browser)


def with_width_probe(page: Path, copy: Path) -> Path:
    """A copy of `page` with `WIDTH_PROBE` added before `</body>`."""
    text = page.read_text(encoding="utf-8")
    end = text.lower().rfind("</body>")
    text = text[:end] + WIDTH_PROBE + text[end:] if end >= 0 else text + WIDTH_PROBE
    copy.write_text(text, encoding="utf-8")
    return copy


def read_width(dom: str) -> dict[str, Any] | None:
    """What the width probe wrote into a dumped DOM: `scrollWidth`, `innerWidth`, `scrollHeight`
    and `outside` (the elements sticking out); None when it wrote nothing."""
    found = re.search(r'\bdata-report-width="([^"]*)"', dom)
    return json.loads(html.unescape(found.group(1))) if found else None


def width_verdict(width: dict[str, Any] | None, window: int) -> tuple[bool, str]:
    """Whether the page fits a window `window` px wide, and why not: what sticks out, and where."""
    if width is None:
        return False, "the width probe wrote nothing (did the page's scripts run?)"
    page, inner = width["scrollWidth"], width["innerWidth"]
    detail = f"page {page} px wide in a {inner} px window"
    if inner != window:
        return False, f"{detail}, not the {window} px asked for"
    if page <= inner:
        return True, detail
    outside = "; ".join(
        f"<{o['element']}>"
        + (f' under "{o["section"]}"' if o["section"] else "")
        + f" reaches {o['right']} px"
        for o in width.get("outside") or []
    )
    return False, f"{detail}: {outside}" if outside else detail


def screenshot_at(screenshot: Path, window: int) -> Path:
    """The screenshot's path at a window width: `screenshot` itself at the first, `NAME-800.png` at 800."""
    return (
        screenshot
        if window == WIDTHS[0]
        else screenshot.with_name(f"{screenshot.stem}-{window}{screenshot.suffix}")
    )


def check(
    chromium: str, report: Path, screenshot: Path, work: Path, samples: list[str] | None = None
) -> tuple[list[tuple[str, bool, str]], dict[int, dict[str, Any] | None]]:
    """Every check as (name, passed, detail), and what the width probe saw at each window width.
    `samples`: continuations the page must show (the synthetic summary's)."""
    results: list[tuple[str, bool, str]] = []
    version = subprocess.run([chromium, "--version"], capture_output=True, text=True, timeout=60)
    results.append(("chromium", version.returncode == 0, version.stdout.strip()))

    bait = work / "bait.html"
    bait.write_text(BAIT, encoding="utf-8")
    seen = run_chromium(chromium, bait, ["--dump-dom"], work / "bait")
    caught = bool(seen["console"]) and any("bait.png" in u for u in seen["page_requests"])
    results.append(("detectors see bait", caught, f"{len(seen['console'])} console, {seen['page_requests']}"))
    (work / "wide-bait.html").write_text(WIDE_BAIT, encoding="utf-8")
    wide = with_width_probe(work / "wide-bait.html", work / "wide-bait-probed.html")
    narrow = ["--dump-dom", f"--window-size={WIDTHS[-1]},600"]
    bait_width = read_width(run_chromium(chromium, wide, narrow, work / "wide")["stdout"])
    fits, detail = width_verdict(bait_width, WIDTHS[-1])
    results.append(
        ("width probe sees wide bait", not fits and bool((bait_width or {}).get("outside")), detail)
    )

    dom_run = run_chromium(chromium, report, ["--dump-dom"], work / "dom")
    runs = [dom_run]
    probed = with_width_probe(report, work / "probed.html")
    widths: dict[int, dict[str, Any] | None] = {}
    for window in WIDTHS:
        run = run_chromium(
            chromium, probed, ["--dump-dom", f"--window-size={window},3000"], work / f"w{window}"
        )
        widths[window] = read_width(run["stdout"])
        runs.append(run)
    shots = {}
    for window in WIDTHS:  # the whole page: as tall as the probe measured it at this width
        height = min(max(int((widths[window] or {}).get("scrollHeight") or 3000), 600), 16_000)
        shots[window] = screenshot_at(screenshot, window)
        mode = [f"--screenshot={shots[window]}", f"--window-size={window},{height}"]
        runs.append(run_chromium(chromium, report, mode, work / f"shot{window}"))
    dom = dom_run["stdout"]
    results.append(("chromium exit status", all(r["returncode"] == 0 for r in runs), "0 expected"))
    console = [line for r in runs for line in r["console"]]
    results.append(("no console messages", not console, "; ".join(console)[:300] or "none"))
    requests = sorted({u for r in runs for u in r["page_requests"]})
    results.append(("no network requests by page", not requests, ", ".join(requests)[:300] or "none"))
    background = sorted({u for r in runs for u in r["browser_requests"]})
    results.append(("(browser's own requests, info)", True, ", ".join(background)[:300] or "none"))
    remote_src = re.findall(r"""\b(?:src|srcset|data)\s*=\s*["']?\s*(?:https?:)?//[^"' >]*""", dom)
    remote_src += re.findall(r"<link\b[^>]*>", dom)
    results.append(("no remote src/link in DOM", not remote_src, ", ".join(remote_src)[:300] or "none"))
    graphs, svgs = dom.count('class="plotly-graph-div'), dom.count('class="main-svg"')
    results.append(("plotly graph divs", graphs == 2, f"{graphs} (2 expected)"))
    results.append(("plots rendered (main-svg)", svgs >= 2, f"{svgs} main-svg elements"))
    points = dom.count('class="point"')
    empty = "no candidate has parameters and a probe loss" in dom  # an empty or all-failed run
    detail = f"{points} scatter points" + (" (the run has none to plot)" if empty else "")
    results.append(("markers drawn", points > 0 or empty, detail))
    if samples:
        shown = sum(html.escape(text.strip(), quote=False) in dom for text in samples)
        ok = "<h2>What it writes</h2>" in dom and shown == len(samples)
        results.append(("samples shown", ok, f"{shown} of {len(samples)} continuations in the DOM"))
    for window in WIDTHS:
        results.append((f"page width at {window} px", *width_verdict(widths[window], window)))
    for window in WIDTHS:
        size = shots[window].stat().st_size if shots[window].exists() else 0
        results.append((f"screenshot at {window} px", size > 10_000, f"{shots[window]} ({size:,} bytes)"))
    return results, widths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", nargs="?", type=Path, help="report.html (default: a synthetic one)")
    parser.add_argument("--chromium", default=None, help="browser binary (default: chromium on PATH)")
    parser.add_argument(
        "--screenshot",
        type=Path,
        default=Path("results/bench/report_check.png"),
        help=f"the whole page at {WIDTHS[0]} px; the same name with -{WIDTHS[1]} at {WIDTHS[1]} px",
    )
    parser.add_argument("--out", type=Path, default=Path("results/bench/report_check.json"))
    parser.add_argument(
        "--range", action="store_true", help="the synthetic report of a budget range (50M–110M)"
    )
    args = parser.parse_args()

    chromium = args.chromium or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        print(
            f"report_check: could not check: Chromium not found ({chromium}); "
            "install it with: apt-get install -y chromium",
            file=sys.stderr,
        )
        return 3
    if args.report is not None and not args.report.is_file():
        print(f"report_check: error: {args.report} is not a file", file=sys.stderr)
        return 2
    args.screenshot.parent.mkdir(parents=True, exist_ok=True)
    for window in WIDTHS:
        screenshot_at(args.screenshot, window).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="report-check-") as tmp:
        work = Path(tmp)
        report, samples = args.report, None
        if report is None:
            summary = Summary.from_json(synthetic_range_summary() if args.range else synthetic_summary())
            write_report(work / "run", summary)
            report = work / "run" / "report.html"
            written = summary.samples.continuations if summary.samples is not None else {}
            samples = [t for texts in written.values() for t in texts]
        results, widths = check(chromium, report, args.screenshot.resolve(), work, samples)

    passed = all(ok for _, ok, _ in results)
    width = max(len(name) for name, _, _ in results)
    synthetic_name = "synthetic range" if args.range else "synthetic"
    print(f"report: {args.report or synthetic_name + ' (search.outputs.report.write_report)'}")
    for name, ok, detail in results:
        print(f"{name.ljust(width)}  {'pass' if ok else 'FAIL'}  {detail}")
    shots = ", ".join(str(screenshot_at(args.screenshot, w)) for w in WIDTHS)
    print(f"{'overall'.ljust(width)}  {'pass' if passed else 'FAIL'}  screenshots: {shots}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "report": str(args.report) if args.report else synthetic_name,
        "passed": passed,
        "screenshots": {str(w): str(screenshot_at(args.screenshot, w)) for w in WIDTHS},
        "widths": {str(w): widths[w] for w in WIDTHS},
        "checks": [{"name": n, "passed": ok, "detail": d} for n, ok, d in results],
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    if not passed:
        failed = " | ".join(f"{name}: {detail}" for name, ok, detail in results if not ok)
        print(f"report_check: FAIL: {failed}", file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
