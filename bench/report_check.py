"""Render a search report in headless Chromium: no console errors, no network requests, real plots.

    python bench/report_check.py [REPORT.html | --range] [--chromium PATH] [--screenshot PNG] [--out JSON]

Without REPORT.html it writes one from a synthetic summary (20 candidates, winners, a stopped and a
failed trial whose error holds markup; with `--range`, a 50M–110M range search with hand-designed
shapes and latency spreads) into a temporary folder with `search.outputs.report.write_report`.

Chromium runs twice on a fresh profile, with every host name resolving to nothing
(`--host-resolver-rules`), so nothing can leave the machine even if the page asked: once to dump
the DOM after the scripts ran, once for a screenshot. Each run logs the console to stderr and its
network activity to a net log. A request counts against the page when it is an http(s)/ws(s)
request made for the page (its network isolation key is the page's `file://` site); requests the
browser makes for itself (clock sync, sign-in probes) are listed but are not the page's doing. A
bait page with a console error and a remote image is checked first, to show both detectors work.
Prints a pass/fail table, writes JSON (default `results/bench/report_check.json`) and exits 1 on
failure, 2 when Chromium is missing.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search.outputs.report import write_report
from search.outputs.summary import Summary

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
        "settings": {"probe_tokens": 200_000, "scheduler": "asha", "seed": 0, "top_k": 2},
        "candidates": candidates,
        "winners": winners,
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
        "teacher": {
            **summary["teacher"],
            "params": teacher_params,
            "latency_ms": teacher_latency,
            "latency_low_ms": 26.4,
            "latency_high_ms": 27.9,
        },
        "candidates": candidates,
        "winners": winners,
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


def check(chromium: str, report: Path, screenshot: Path, work: Path) -> list[tuple[str, bool, str]]:
    """Every check as (name, passed, detail)."""
    results: list[tuple[str, bool, str]] = []
    version = subprocess.run([chromium, "--version"], capture_output=True, text=True, timeout=60)
    results.append(("chromium", version.returncode == 0, version.stdout.strip()))

    bait = work / "bait.html"
    bait.write_text(BAIT, encoding="utf-8")
    seen = run_chromium(chromium, bait, ["--dump-dom"], work / "bait")
    caught = bool(seen["console"]) and any("bait.png" in u for u in seen["page_requests"])
    results.append(("detectors see bait", caught, f"{len(seen['console'])} console, {seen['page_requests']}"))

    dom_run = run_chromium(chromium, report, ["--dump-dom"], work / "dom")
    shot_run = run_chromium(
        chromium, report, [f"--screenshot={screenshot}", "--window-size=1280,2000"], work / "shot"
    )
    dom = dom_run["stdout"]
    results.append(
        ("chromium exit status", dom_run["returncode"] == shot_run["returncode"] == 0, "0 expected")
    )
    console = dom_run["console"] + shot_run["console"]
    results.append(("no console messages", not console, "; ".join(console)[:300] or "none"))
    requests = sorted(set(dom_run["page_requests"] + shot_run["page_requests"]))
    results.append(("no network requests by page", not requests, ", ".join(requests)[:300] or "none"))
    background = sorted(set(dom_run["browser_requests"] + shot_run["browser_requests"]))
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
    size = screenshot.stat().st_size if screenshot.exists() else 0
    results.append(("screenshot", size > 10_000, f"{screenshot} ({size:,} bytes)"))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", nargs="?", type=Path, help="report.html (default: a synthetic one)")
    parser.add_argument("--chromium", default=None, help="browser binary (default: chromium on PATH)")
    parser.add_argument("--screenshot", type=Path, default=Path("results/bench/report_check.png"))
    parser.add_argument("--out", type=Path, default=Path("results/bench/report_check.json"))
    parser.add_argument(
        "--range", action="store_true", help="the synthetic report of a budget range (50M–110M)"
    )
    args = parser.parse_args()

    chromium = args.chromium or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        print(
            f"error: Chromium not found ({chromium}); install it with: apt-get install -y chromium",
            file=sys.stderr,
        )
        return 2
    args.screenshot.parent.mkdir(parents=True, exist_ok=True)
    args.screenshot.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="report-check-") as tmp:
        work = Path(tmp)
        report = args.report
        if report is None:
            synthetic = synthetic_range_summary() if args.range else synthetic_summary()
            write_report(work / "run", Summary.from_json(synthetic))
            report = work / "run" / "report.html"
        if not report.is_file():
            print(f"error: {report} is not a file", file=sys.stderr)
            return 2
        results = check(chromium, report, args.screenshot.resolve(), work)

    passed = all(ok for _, ok, _ in results)
    width = max(len(name) for name, _, _ in results)
    print(f"report: {args.report or 'synthetic (search.outputs.report.write_report)'}")
    for name, ok, detail in results:
        print(f"{name.ljust(width)}  {'pass' if ok else 'FAIL'}  {detail}")
    print(f"{'overall'.ljust(width)}  {'pass' if passed else 'FAIL'}  screenshot: {args.screenshot}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "report": str(args.report) if args.report else "synthetic",
        "passed": passed,
        "screenshot": str(args.screenshot),
        "checks": [{"name": n, "passed": ok, "detail": d} for n, ok, d in results],
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
