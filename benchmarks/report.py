"""``python -m benchmarks --report``: write ``BENCHMARKS.md`` from ``benchmarks/results/``.

Every case side by side with its peer (seconds, ratio peer/gridkit, sizes, peak
memory, the side-by-side check), the machine and the date of each module's run, and
the scaling run (``benchmarks/results/scaling.json``) with its plots in ``docs/``.
The figures are the committed results: rerun a module (``python -m benchmarks --only
NAME``) or the scaling run (``python -m benchmarks.scaling``) to refresh them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _fmt_s(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:.3g}" if x < 100 else f"{x:,.0f}"


def _size(size: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in size.items())


def _mb(x: float | None) -> str:
    return "" if x is None else f"{x:,.1f}"


def module_section(payload: dict[str, Any]) -> list[str]:
    """Markdown lines for one ``bench_*`` result file."""
    m = payload.get("machine", {})
    lines = [
        f"### {payload['module'].removeprefix('bench_')}",
        "",
        f"Run {payload.get('when', '?')} on Python {m.get('python', '?')}, "
        f"{m.get('platform', '?')}.",
        "",
        "| case | size | gridkit s | peer | peer s | peer/gridkit | gridkit MB | peer MB | check |",
        "|---|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for c in payload["cases"]:
        ratio = f"{c['ratio']:.2f}x" if "ratio" in c else ""
        check = c.get("check", "")
        if isinstance(check, dict):
            check = json.dumps(check, ensure_ascii=False)
        lines.append(
            f"| {c['name']} | {_size(c.get('size', {}))} | {_fmt_s(c['ours_s'])} "
            f"| {c.get('peer', '')} | {_fmt_s(c.get('peer_s'))} | {ratio} "
            f"| {_mb(c.get('ours_peak_mb'))} | {_mb(c.get('peer_peak_mb'))} | {check} |"
        )
    figures = [(c["name"], c["figures"]) for c in payload["cases"] if c.get("figures")]
    if figures:
        lines += ["", "<details><summary>quality figures</summary>", ""]
        lines += [f"- {n}: {_size(f)}" for n, f in figures]
        lines += ["", "</details>"]
    return [*lines, ""]


def scaling_section(payload: dict[str, Any]) -> list[str]:
    """Markdown lines for the scaling run."""
    m = payload["machine"]
    lines = [
        "## Scaling on Dask (national dataset)",
        "",
        f"`{payload['command'].strip()}`, run {payload['when']} on {m['cpus']} cores and "
        f"{m['memory_gb']} GB ({m['platform']}), {payload['seconds']:,.0f} s in all. "
        "Cities of a fixed size, so a partition's work is the same at every point and "
        "only the number of partitions grows; a fresh `LocalCluster` of 2 single-threaded "
        "workers per run. Seconds are wall seconds, with the workers' CPU seconds in "
        "brackets where measured (the load does not change those). Peak MB is the "
        "largest worker's peak RSS (imports included; on Linux a spawned worker's "
        "`ru_maxrss` starts at its parent's, so these are floored by the driver's RSS "
        "when the cluster started), with the largest RSS sampled every 30 s in brackets "
        "where recorded. Load is the machine's 1-minute load average before/after the "
        "point: the cores are shared with other jobs, so the wall seconds are upper "
        "bounds.",
        "",
        "| buildings | cities | provinces | build s | rivers s | communities s "
        "| 1 worker s | speed-up | peak MB per worker (build / rivers / communities) "
        "| load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in payload["points"]:
        one = r.get("communities_1w_s")
        two = r.get("communities_s")
        speed = f"{one / two:.2f}x" if one and two else ""
        sampled = payload.get("samples", {}).get(str(r["buildings"]), [])

        def largest_rss(step: str, sampled: list = sampled) -> str:
            seen = [max(x["rss_mb"]) for x in sampled if x["sample"].startswith(step + " ")]
            return f" ({_mb(max(seen))})" if seen else ""

        peaks = " / ".join(
            (_mb(max(r[k])) if k in r else "-") + largest_rss(step)
            for step, k in (
                ("build", "build_peak_mb"),
                ("rivers", "rivers_peak_mb"),
                ("communities", "communities_peak_mb"),
            )
        )
        load = f"{r['load_before'][0]:.1f} / {r['load_after'][0]:.1f}"

        def cost(step: str, r: dict = r) -> str:
            wall = _fmt_s(r.get(f"{step}_s"))
            cpu = r.get(f"{step}_cpu_s")
            return f"{wall} ({cpu:,.0f})" if cpu else wall

        lines.append(
            f"| {r['buildings']:,} | {r['cities']} | {r['provinces']} | {cost('build')} "
            f"| {cost('rivers')} | {cost('communities')} | {_fmt_s(one)} | {speed} | {peaks} "
            f"| {load} |"
        )
    lines += [
        "",
        "![cost against size](docs/scaling_cost.png)",
        "![memory per worker](docs/scaling_memory.png)",
        "![a worker's memory against the community tasks done](docs/scaling_memory_tasks.png)",
        "",
        "What it means for a whole country, and what limits it: [docs/scaling.md]"
        "(docs/scaling.md).",
        "",
    ]
    return lines


def staffing_section(payloads: list[dict[str, Any]]) -> list[str]:
    """Markdown lines for the ``benchmarks.staffing_province`` runs."""
    first = payloads[0]
    lines = [
        "## Staffing a province",
        "",
        f"`python -m benchmarks.staffing_province --time-limit S`: {first['units']:,} units x "
        f"{first['workers']:,} workers (the synthetic city of `bench_assign`, 9 districts; "
        "a district is a jurisdiction component). Target (issue 26): within 2 % of the "
        "proven bound in 60 s on 2 cores.",
        "",
        "Wall seconds depend on the machine's load (other jobs share its 2 cores); the "
        "CPU seconds of the districts do not: *two free cores* is the longest-first "
        "schedule of the districts' CPU seconds on 2 cores.",
        "",
        "| run | when | load before/after | seconds (wall) | CPU s of the districts "
        "| two free cores, s | gap to the proven bound | units not fully staffed |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for pay in payloads:
        load = f"{pay['load_before'][0]:.1f} / {pay['load_after'][0]:.1f}"
        p = pay["partitioned"]
        budget = p.get("budget_per_district")
        how = (
            f"a budget of {budget['iterations']} steps and {budget['neighbourhoods']} "
            f"neighbourhoods each (cap {p['time_cap_per_district_s']:g} s"
            + (", hit: the answer depends on the load)" if p.get("time_capped") else ", not hit)")
            if budget
            else f"{p['time_limit_per_district_s']:g} s each (wall time)"
        )
        cpu = p.get("district_cpu_s")
        cpu_text = f"{sum(cpu):,.1f} ({min(cpu):.1f}-{max(cpu):.1f} each)" if cpu else ""
        free = f"{p['two_free_cores_s']:,.1f}" if "two_free_cores_s" in p else ""
        lines.append(
            f"| {p['districts']} districts in parallel on 2 Dask workers, {how} "
            f"| {pay['when']} | {load} "
            f"| {p['seconds']:,.1f} | {cpu_text} | {free} | {p['gap']:.2%} "
            f"| {p['unstaffed']:,} |"
        )
        if "single" in pay:
            q = pay["single"]
            lines.append(
                f"| one process, {q['time_limit_s']:g} s limit | {pay['when']} | {load} "
                f"| {q['seconds']:,.1f} |  |  | {q['gap']:.2%} | {q['unstaffed']:,} |"
            )
    return [*lines, ""]


def write_report(path: Path | None = None) -> Path:
    """Write ``BENCHMARKS.md`` (or ``path``) from the committed results."""
    path = path or ROOT / "BENCHMARKS.md"
    results = HERE / "results"
    lines = [
        "# gridkit benchmarks",
        "",
        "Generated by `python -m benchmarks --report` from `benchmarks/results/` "
        "(do not edit by hand). Each case runs gridkit and a peer on the same seeded "
        "input, in turns, and checks that they agree; `peer/gridkit` above 1 means "
        "gridkit is faster. Peak MB is the Python heap under tracemalloc (GEOS memory "
        "is not seen) unless said otherwise.",
        "",
        "## Cases",
        "",
    ]
    for f in sorted(results.glob("bench_*.json")):
        lines += module_section(json.loads(f.read_text(encoding="utf-8")))
    scaling = results / "scaling.json"
    if scaling.exists():
        lines += scaling_section(json.loads(scaling.read_text(encoding="utf-8")))
    staffing = sorted(results.glob("staffing_province*.json"))
    if staffing:
        lines += staffing_section([json.loads(f.read_text(encoding="utf-8")) for f in staffing])
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
