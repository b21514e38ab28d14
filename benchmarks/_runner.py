"""Benchmark runner: every benchmark side by side with a peer, on the same seeded data.

A benchmark module is ``benchmarks/bench_<name>.py`` defining::

    def cases(quick: bool) -> list[Case]: ...

Each :class:`Case` has a ``setup`` building the (seeded) input once, ``ours`` and
optionally ``peer`` callables taking that input, and a ``check`` comparing their
outputs (so a fast wrong answer is caught). The runner repeats the two sides in
turns (so a machine changing speed during a case weighs on both), records medians,
the ratio peer/ours (above 1 means gridkit is faster), the input size, and peak
memory (Python heap via tracemalloc, which numpy reports into; GEOS-internal memory
is not seen), and writes ``benchmarks/results/<module>.json`` (``results/quick/``
for ``--quick``, which skips the memory run).
"""

from __future__ import annotations

import gc
import importlib
import json
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@dataclass
class Case:
    """One benchmark: the same input for gridkit and for its peer."""

    name: str
    setup: Callable[[], Any]
    ours: Callable[[Any], Any]
    peer: Callable[[Any], Any] | None = None
    peer_name: str = ""
    size: dict[str, Any] = field(default_factory=dict)
    check: Callable[[Any, Any], dict[str, Any] | None] | None = None
    repeat: int = 3
    extra: Callable[[Any, Any], dict[str, Any]] | None = None  # quality figures
    trace_peer: bool = True  # False: no traced run of a slow peer (no peak MB for it)


def _timed(func: Callable[[Any], Any], data: Any) -> tuple[Any, float]:
    gc.collect()
    t0 = time.perf_counter()
    result = func(data)
    return result, time.perf_counter() - t0


def _peak(func: Callable[[Any], Any], data: Any) -> int:
    """Peak Python heap of one more run, under tracemalloc (tracing slows Python-heavy
    code, so it never touches the timings)."""
    gc.collect()
    tracemalloc.start()
    func(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def run_case(case: Case, *, quick: bool) -> dict[str, Any]:
    """Time both sides ``repeat`` times, taking turns (ours, peer, ours, peer, ...) so
    that a machine slowing down or speeding up during the case weighs on both alike;
    medians; then the peak memory of each side."""
    repeat = 1 if quick else case.repeat
    data = case.setup()
    ours_t: list[float] = []
    peer_t: list[float] = []
    ours_result = peer_result = None
    for _ in range(repeat):
        ours_result, t = _timed(case.ours, data)
        ours_t.append(t)
        if case.peer is not None:
            peer_result, t = _timed(case.peer, data)
            peer_t.append(t)
    ours_mem = None if quick else _peak(case.ours, data)
    rec: dict[str, Any] = {
        "name": case.name,
        "size": case.size,
        "repeat": repeat,
        "ours_s": statistics.median(ours_t),
        "ours_peak_mb": None if ours_mem is None else round(ours_mem / 2**20, 1),
    }
    if case.peer is not None:
        peer_mem = _peak(case.peer, data) if case.trace_peer and not quick else None
        rec.update(
            peer=case.peer_name,
            peer_s=statistics.median(peer_t),
            peer_peak_mb=None if peer_mem is None else round(peer_mem / 2**20, 1),
            ratio=statistics.median(peer_t) / max(statistics.median(ours_t), 1e-12),
        )
        if case.check is not None:
            rec["check"] = case.check(ours_result, peer_result) or "ok"
    if case.extra is not None:
        rec["figures"] = case.extra(data, ours_result)
    return rec


def discover(only: list[str] | None = None) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if only:
        names = [n for n in names if any(o in n for o in only)]
    return names


def run(*, quick: bool = False, only: list[str] | None = None) -> list[dict[str, Any]]:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    out_dir = HERE / "results" / ("quick" if quick else "")
    out_dir.mkdir(parents=True, exist_ok=True)
    all_records = []
    for mod_name in discover(only):
        module = importlib.import_module(f"benchmarks.{mod_name}")
        records = []
        for case in module.cases(quick):
            console.print(f"[bold]{mod_name}[/] {case.name} ...")
            rec = run_case(case, quick=quick)
            records.append(rec)
        payload = {
            "module": mod_name,
            "quick": quick,
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": {"python": platform.python_version(), "platform": platform.platform()},
            "cases": records,
        }
        (out_dir / f"{mod_name}.json").write_text(
            json.dumps(payload, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
        )
        table = Table(title=mod_name)
        for col in ("case", "gridkit s", "peer", "peer s", "ratio", "peak MB", "check"):
            table.add_column(col)
        for r in records:
            table.add_row(
                r["name"],
                f"{r['ours_s']:.4g}",
                r.get("peer", ""),
                f"{r['peer_s']:.4g}" if "peer_s" in r else "",
                f"{r['ratio']:.2f}x" if "ratio" in r else "",
                str(r["ours_peak_mb"]),
                str(r.get("check", "")),
            )
        console.print(table)
        all_records += records
    return all_records
