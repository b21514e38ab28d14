"""Measured scaling of the national dataset on Dask: cost against size, memory per worker,
speed-up from 1 to 2 workers.

``python -m benchmarks.scaling [--points S ...] [--speedup-at S] [--build-only S ...]``

Each point builds the national dataset at scale ``S`` with cities of
``--city-buildings`` buildings (so a partition's work stays the same and only the
number of partitions grows), then splits communities (one task per city) and rivers
(one task per province) on a fresh ``LocalCluster`` of 2 single-threaded workers.
Peak memory is each worker process's peak RSS (``getrusage``), read from the workers
after the run. ``--speedup-at`` repeats the community split on 1 worker. The machine's
load average is recorded before and after every run (other jobs share the cores).
Writes ``benchmarks/results/scaling.json`` and the plots ``docs/scaling_*.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _warm() -> None:
    # imports are not part of the timings (a fresh worker imports geopandas & co. once)
    import gridkit.national
    import gridkit.scale.communities
    import gridkit.scale.rivers  # noqa: F401

    warnings.simplefilter("ignore")


def _run(n_workers: int, func, *args, **kwargs) -> tuple[Any, float, list[float]]:
    from gridkit.scale import Engine

    with Engine.local(n_workers, memory_limit="6GiB") as engine:
        engine.client.run(_warm)
        t0 = time.perf_counter()
        out = func(*args, engine=engine, **kwargs)
        seconds = time.perf_counter() - t0
        peaks = sorted(engine.client.run(_peak_mb).values())
    return out, seconds, peaks


def _build(ds_dir: Path, scale: float, city_buildings: int, n_workers: int):
    from gridkit.national import build_national

    def build(*, engine):
        return build_national(
            scale, ds_dir, seed=0, mapper=engine.map, city_buildings=city_buildings
        )

    return _run(n_workers, build)


def point(scale: float, city_buildings: int, *, communities: bool, speedup: bool) -> dict:
    """Measure one scale; the dataset lives in a temporary directory."""
    from gridkit.scale import split_communities_partitioned
    from gridkit.scale.rivers import split_rivers_partitioned

    tmp = Path(tempfile.mkdtemp(prefix="gridkit-scaling-"))
    rec: dict[str, Any] = {"scale": scale, "city_buildings": city_buildings}
    try:
        rec["load_before"] = os.getloadavg()
        ds, rec["build_s"], rec["build_peak_mb"] = _build(tmp / "ds", scale, city_buildings, 2)
        meta = json.loads((ds.path / "national.json").read_text(encoding="utf-8"))
        rec.update(
            buildings=meta["rows"]["buildings"],
            cities=meta["cities"],
            provinces=meta["provinces"],
            river_km=meta["river_km"],
            patrols=meta["rows"]["patrols"],
        )
        (_, units), rec["rivers_s"], rec["rivers_peak_mb"] = _run(
            2, split_rivers_partitioned, ds, max_length_m=2000.0, corridor_m=50.0
        )
        rec["river_units"] = len(units)
        if communities:
            units, rec["communities_s"], rec["communities_peak_mb"] = _run(
                2, split_communities_partitioned, ds, max_households=1000
            )
            rec["community_units"] = len(units)
        if speedup:
            _, rec["communities_1w_s"], rec["communities_1w_peak_mb"] = _run(
                1, split_communities_partitioned, ds, max_households=1000
            )
        rec["load_after"] = os.getloadavg()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(rec), flush=True)
    return rec


def plots(records: list[dict]) -> list[Path]:
    """Cost against size (log-log, with the fitted slope) and peak memory per worker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    DOCS.mkdir(exist_ok=True)
    out = []
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for key, label in (
        ("build_s", "build dataset"),
        ("communities_s", "split communities"),
        ("rivers_s", "split rivers"),
    ):
        pts = [(r["buildings"], r[key]) for r in records if key in r]
        if len(pts) < 2:
            continue
        x, y = np.array(pts, dtype=float).T
        slope = np.polyfit(np.log10(x), np.log10(y), 1)[0]
        ax.loglog(x, y, "o-", label=f"{label} (slope {slope:.2f})")
    for r in records:  # the machine's load: other jobs share the 2 cores
        ax.annotate(
            f"load {r['load_before'][0]:.0f}",
            (r["buildings"], r.get("communities_s", r["build_s"])),
            textcoords="offset points",
            xytext=(4, 6),
            fontsize=7,
            color="grey",
        )
    ax.set_xlabel("buildings")
    ax.set_ylabel("seconds (2 Dask workers, 2 shared cores)")
    ax.set_title("gridkit national: cost against size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.append(DOCS / "scaling_cost.png")
    fig.savefig(out[-1], dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for key, label in (
        ("build_peak_mb", "build"),
        ("communities_peak_mb", "split communities"),
        ("rivers_peak_mb", "split rivers"),
    ):
        pts = [(r["buildings"], max(r[key])) for r in records if key in r]
        if pts:
            x, y = np.array(pts, dtype=float).T
            ax.semilogx(x, y, "o-", label=label)
    ax.set_xlabel("buildings")
    ax.set_ylabel("peak RSS of the largest worker, MB")
    ax.set_ylim(bottom=0)
    ax.set_title("peak memory per worker as the country grows")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.append(DOCS / "scaling_memory.png")
    fig.savefig(out[-1], dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__)
    parser.add_argument("--points", nargs="*", type=float, default=[0.0004, 0.0008, 0.0016, 0.0032])
    parser.add_argument("--build-only", nargs="*", type=float, default=[])
    parser.add_argument("--speedup-at", type=float, default=0.0016)
    parser.add_argument("--city-buildings", type=int, default=10_000)
    parser.add_argument("--plots-only", action="store_true", help="redraw from scaling.json")
    parser.add_argument(
        "--append", type=Path, help="a JSON file of earlier points (one run's log) to keep"
    )
    args = parser.parse_args(argv)
    path = HERE / "results" / "scaling.json"
    if args.plots_only:
        plots(json.loads(path.read_text(encoding="utf-8"))["points"])
        return 0
    t0 = time.perf_counter()
    records = [
        point(s, args.city_buildings, communities=True, speedup=s == args.speedup_at)
        for s in args.points
    ]
    records += [
        point(s, args.city_buildings, communities=False, speedup=False) for s in args.build_only
    ]
    if args.append:
        records += json.loads(args.append.read_text(encoding="utf-8"))["partial"]
    payload = {
        "module": "scaling",
        "command": "python -m benchmarks.scaling " + " ".join(argv or []),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        },
        "seconds": round(time.perf_counter() - t0, 1),
        "points": sorted(records, key=lambda r: r["buildings"]),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    for p in plots(payload["points"]):
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
