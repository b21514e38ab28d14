"""Measured scaling of the national dataset on Dask: cost against size, memory per worker,
speed-up from 1 to 2 workers.

``python -m benchmarks.scaling [--points S ...] [--speedup-at S ...] [--build-only S ...]
[--months M] [--log FILE] [--out FILE] [--append FILE ...] [--no-plots]``

Each point builds the national dataset at scale ``S`` with cities of
``--city-buildings`` buildings (so a partition's work stays the same and only the
number of partitions grows) and an activity window of ``--months`` months of patrols
and reports, then splits rivers (one task per province) and communities (one task per
city) on a fresh ``LocalCluster`` of 2 single-threaded workers.
Peak memory is each worker process's peak RSS (``getrusage``), read from the workers
after each step; while a step runs, a sampler logs every worker's RSS, its peak so
far, the tasks done and the 1-minute load every ``--sample-s`` seconds (so a run
stopped midway still shows its per-task memory). ``--speedup-at`` repeats the
community split on 1 worker. The machine's load average is recorded before and after
every step (other jobs share the cores). Every finished step is appended to ``--log``
(JSON lines) at once. Writes ``--out`` (``benchmarks/results/scaling.json``) with the
points of this run and of the ``--append`` files, and the plots ``docs/scaling_*.png``
(with ``--append-log`` or ``--append-samples``, a worker's memory against the
community tasks done, too). The dataset lives under ``--tmp`` and is deleted after
each point.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs"
LOG: Path | None = None
TMP: Path | None = None
SAMPLE_S = 30.0
MEMORY_LIMIT = "8GiB"
PROFILE = False


def _peak_mb() -> float:
    """This process's own peak RSS: ``VmHWM`` where Linux has it. ``ru_maxrss`` is not:
    a process spawned (fork + exec) by one of 430 MB reports at least 430 MB, as Linux
    carries the parent's high-water mark over the exec, so a worker's ``ru_maxrss``
    was the driver's RSS when the cluster started whenever that was higher."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_mb() -> tuple[float, float]:
    import psutil

    return psutil.Process().memory_info().rss / 2**20, _peak_mb()


class _Finished:
    """Counts the tasks that reached memory since the plugin was added: ``Engine.map``
    releases each result as its task ends, so the scheduler's own task table only
    holds the tasks still to run (and the few results not yet fetched)."""

    name = "gridkit-scaling-finished"

    def __init__(self) -> None:
        self.finished: set = set()

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        if finish == "memory":
            self.finished.add(key)


def _count_finished(dask_scheduler=None) -> None:
    from distributed.diagnostics.plugin import SchedulerPlugin

    plugin = type("FinishedPlugin", (_Finished, SchedulerPlugin), {})()
    dask_scheduler.add_plugin(plugin, name=_Finished.name)


def _tasks_done(dask_scheduler=None) -> tuple[int, int]:
    """(tasks finished so far, tasks finished + tasks the scheduler still holds)."""
    plugin = dask_scheduler.plugins.get(_Finished.name)
    if plugin is None:  # no counter: only the results still held
        states = [ts.state for ts in dask_scheduler.tasks.values()]
        return sum(s == "memory" for s in states), len(states)
    done = plugin.finished
    # a released result may stay in the table a moment ("released", then forgotten)
    left = sum(key not in done for key in dask_scheduler.tasks)
    return len(done), len(done) + left


def _log(rec: dict) -> None:
    line = json.dumps(rec, ensure_ascii=False)
    print(line, flush=True)
    if LOG is not None:
        with LOG.open("a", encoding="utf-8") as f:
            f.write(line + "\n")


def _warm() -> None:
    # imports are not part of the timings (a fresh worker imports geopandas & co. once)
    import gridkit.national
    import gridkit.scale.communities
    import gridkit.scale.rivers  # noqa: F401

    warnings.simplefilter("ignore")


def _sampler(
    client, step: str, every_s: float, stop: threading.Event, cpu0: dict[str, float]
) -> None:
    """Log each worker's RSS and peak so far, the workers' CPU seconds since the step
    began, the tasks done and the load, every ``every_s`` seconds, until ``stop``."""
    t0 = time.perf_counter()
    while not stop.wait(every_s):
        try:
            mem = client.run(_rss_mb)
            cpu = client.run(_cpu_s)
            done, total = client.run_on_scheduler(_tasks_done)
        except Exception as exc:  # a sample may fail while workers restart
            _log({"sample": step, "error": repr(exc)})
            continue
        _log(
            {
                "sample": step,
                "t_s": round(time.perf_counter() - t0, 1),
                "tasks_done": done,
                "tasks": total,
                "tasks_counted": True,  # finished tasks counted as they end
                "cpu_s": round(sum(cpu[w] - cpu0.get(w, 0.0) for w in cpu), 1),
                "rss_mb": sorted(round(v[0]) for v in mem.values()),
                "peak_mb": sorted(round(v[1]) for v in mem.values()),
                "driver_rss_mb": round(_rss_mb()[0]),
                "load1": round(os.getloadavg()[0], 2),
            }
        )


def _run(step: str, n_workers: int, func, *args, **kwargs) -> tuple[Any, dict]:
    from gridkit.scale import Engine

    with Engine.local(n_workers, memory_limit=MEMORY_LIMIT, profile=PROFILE) as engine:
        engine.client.run(_warm)
        engine.client.run_on_scheduler(_count_finished)
        cpu0 = engine.client.run(_cpu_s)
        rec: dict[str, Any] = {"load_before": os.getloadavg()}
        stop = threading.Event()
        sampler = threading.Thread(
            target=_sampler, args=(engine.client, step, SAMPLE_S, stop, cpu0), daemon=True
        )
        sampler.start()
        t0 = time.perf_counter()
        try:
            out = func(*args, engine=engine, **kwargs)
        finally:
            stop.set()
            sampler.join()
        rec["s"] = time.perf_counter() - t0
        rec["peak_mb"] = sorted(engine.client.run(_peak_mb).values())
        cpu1 = engine.client.run(_cpu_s)
        rec["cpu_s"] = sum(cpu1[w] - cpu0.get(w, 0.0) for w in cpu1)
        rec["load_after"] = os.getloadavg()
    rec["driver_peak_mb"] = _peak_mb()
    return out, rec


def _build(ds_dir: Path, scale: float, city_buildings: int, months: int):
    from gridkit.national import build_national

    def build(*, engine):
        return build_national(
            scale, ds_dir, seed=0, mapper=engine.map, city_buildings=city_buildings, months=months
        )

    return _run(f"build {scale}", 2, build)


def _step(rec: dict, name: str, step: dict) -> None:
    rec[f"{name}_s"] = step["s"]
    rec[f"{name}_peak_mb"] = step["peak_mb"]
    rec[f"{name}_load"] = [step["load_before"][0], step["load_after"][0]]
    rec[f"{name}_cpu_s"] = step["cpu_s"]  # the workers' CPU seconds: what load does not change
    rec["driver_peak_mb"] = step["driver_peak_mb"]
    rec.setdefault("load_before", step["load_before"])
    rec["load_after"] = step["load_after"]
    _log({"step": name, **rec})


def _du_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def point(
    scale: float, city_buildings: int, *, communities: bool, speedup: bool, months: int
) -> dict:
    """Measure one scale; the dataset lives in a temporary directory under ``TMP``."""
    from gridkit.scale import split_communities_partitioned
    from gridkit.scale.rivers import split_rivers_partitioned

    if TMP is not None:
        TMP.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="gridkit-scaling-", dir=TMP))
    rec: dict[str, Any] = {
        "scale": scale,
        "city_buildings": city_buildings,
        "months": months,
        "dask_profiler": PROFILE,
    }
    try:
        ds, step = _build(tmp / "ds", scale, city_buildings, months)
        meta = json.loads((ds.path / "national.json").read_text(encoding="utf-8"))
        rec.update(
            buildings=meta["rows"]["buildings"],
            cities=meta["cities"],
            provinces=meta["provinces"],
            river_km=meta["river_km"],
            patrols=meta["rows"]["patrols"],
            reports=meta["rows"]["reports"],
            activity=meta.get("activity"),
            dataset_mb=round(_du_mb(ds.path)),
        )
        _step(rec, "build", step)
        (_, units), step = _run(
            f"rivers {scale}",
            2,
            split_rivers_partitioned,
            ds,
            max_length_m=2000.0,
            corridor_m=50.0,
        )
        rec["river_units"] = len(units)
        _step(rec, "rivers", step)
        if communities:
            units, step = _run(
                f"communities {scale}", 2, split_communities_partitioned, ds, max_households=1000
            )
            rec["community_units"] = len(units)
            del units
            _step(rec, "communities", step)
        if speedup:
            _, step = _run(
                f"communities-1w {scale}", 1, split_communities_partitioned, ds, max_households=1000
            )
            _step(rec, "communities_1w", step)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rec


def _counted(row: dict, cities: int) -> dict:
    """A community-split sample with its tasks counted from the cities (one task per
    city) when its sampler had no counter: with an ``Engine.map`` that releases each
    result, the scheduler then held only the tasks left and the results not yet
    fetched (``tasks_done``); with one that gathered at the end, all the tasks (the same
    figures come back)."""
    if not row.get("sample", "").startswith("communities") or row.get("tasks_counted"):
        return row
    left = row["tasks"] - row["tasks_done"]
    return {**row, "tasks_done": cities - left, "tasks": cities}


def from_log(path: Path) -> dict | None:
    """The point of a run stopped midway, from its ``--log``: the last finished step's
    record, the unfinished step's last sample as ``"<step>_partial"`` and the highest
    per-worker peak seen in each step's samples as ``"<step>_sampled_peak_mb"``."""
    point_rec, samples = None, {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if "step" in row:
            point_rec = row
        elif "sample" in row and "tasks" in row:
            samples.setdefault(row["sample"].split()[0], []).append(row)
    if point_rec is None:
        return None
    point_rec = dict(point_rec)
    point_rec.pop("step")
    for step, rows in samples.items():
        name = step.replace("-1w", "_1w")
        point_rec[f"{name}_sampled_peak_mb"] = max(max(r["peak_mb"]) for r in rows)
        if f"{name}_s" not in point_rec:
            point_rec[f"{name}_partial"] = _counted(rows[-1], point_rec["cities"])
    return point_rec


_STEPS = (
    ("build", "build dataset"),
    ("communities", "split communities"),
    ("rivers", "split rivers"),
)


def _cost_plot(ax, records: list[dict], np) -> None:
    for (step, label), colour in zip(_STEPS, ("C0", "C1", "C2"), strict=True):
        pts = [(r["buildings"], r[f"{step}_s"]) for r in records if f"{step}_s" in r]
        if len(pts) >= 2:
            x, y = np.array(pts, dtype=float).T
            slope = np.polyfit(np.log10(x), np.log10(y), 1)[0]
            ax.loglog(x, y, "o-", color=colour, label=f"{label}, wall (slope {slope:.2f})")
        cpu = [(r["buildings"], r[f"{step}_cpu_s"]) for r in records if f"{step}_cpu_s" in r]
        if len(cpu) >= 2:
            x, y = np.array(cpu, dtype=float).T
            slope = np.polyfit(np.log10(x), np.log10(y), 1)[0]
            ax.loglog(x, y, "s--", color=colour, ms=4, label=f"{label}, CPU s (slope {slope:.2f})")
        for r in records:  # a step stopped midway: its elapsed time is a lower bound
            part = r.get(f"{step}_partial")
            if part:
                ax.loglog([r["buildings"]], [part["t_s"]], "^", color=colour, mfc="none", ms=9)
                ax.annotate(
                    f"stopped: {part['tasks_done']}/{part['tasks']} tasks",
                    (r["buildings"], part["t_s"]),
                    textcoords="offset points",
                    xytext=(-120, -4),
                    fontsize=7,
                    color=colour,
                )
    for r in records:  # the machine's 1-minute load over the steps: other jobs share the cores
        loads = [x for k, v in r.items() if k.endswith("_load") for x in v] or r["load_before"][:1]
        ax.annotate(
            f"load {min(loads):.0f}-{max(loads):.0f}",
            (r["buildings"], r["build_s"]),
            textcoords="offset points",
            xytext=(4, -10),
            fontsize=7,
            color="grey",
        )


def _memory_plot(ax, records: list[dict], np) -> None:
    for (step, label), colour in zip(_STEPS, ("C0", "C1", "C2"), strict=True):
        for on, style, note in ((False, "o-", ""), (True, "s:", ", Dask profiler on")):
            pts = [
                (r["buildings"], max(r[f"{step}_peak_mb"]))
                for r in records
                if f"{step}_peak_mb" in r and r.get("dask_profiler", True) == on
            ]
            if pts:
                x, y = np.array(pts, dtype=float).T
                ax.semilogx(x, y, style, color=colour, label=label + note)
        part = [
            (r["buildings"], r[f"{step}_sampled_peak_mb"])
            for r in records
            if f"{step}_partial" in r and f"{step}_sampled_peak_mb" in r
        ]
        if part:
            x, y = np.array(part, dtype=float).T
            ax.semilogx(
                x, y, "^", color=colour, mfc="none", ms=9, label=f"{label} (stopped midway)"
            )


def _tasks_plot(ax, samples: dict[str, list[dict]], np) -> None:
    """Each sampled community split: a worker's peak RSS (and RSS) against tasks done."""
    for (key, rows), colour in zip(sorted(samples.items()), ("C3", "C4", "C5", "C6"), strict=False):
        rows = [r for r in rows if r.get("sample", "").startswith("communities ")]
        if not rows:
            continue
        n, extra = key.partition(" ")[::2]
        label = f"{int(n):,} buildings {extra}".strip()
        x = np.array([r["tasks_done"] for r in rows], dtype=float)
        ax.plot(
            x,
            [max(r["peak_mb"]) for r in rows],
            "-",
            color=colour,
            label=f"{label}: peak (ru_maxrss)",
        )
        ax.plot(x, [max(r["rss_mb"]) for r in rows], ":", color=colour, label=f"{label}: RSS")


def plots(records: list[dict], samples: dict[str, list[dict]] | None = None) -> list[Path]:
    """Cost against size (log-log, with the fitted slopes), peak memory per worker and,
    from the ``samples``, a worker's memory against the community tasks done."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    DOCS.mkdir(exist_ok=True)
    out = []
    for name, draw, ylabel, title in (
        (
            "scaling_cost.png",
            _cost_plot,
            "seconds (2 Dask workers, 2 shared cores)",
            "gridkit national: cost against size",
        ),
        (
            "scaling_memory.png",
            _memory_plot,
            "peak RSS of the largest worker, MB",
            "peak memory per worker as the country grows",
        ),
        (
            "scaling_memory_tasks.png",
            _tasks_plot,
            "MB per worker (the larger of the two)",
            "memory of a worker as the community split goes on",
        ),
    ):
        if name == "scaling_memory_tasks.png" and not samples:
            continue
        fig, ax = plt.subplots(figsize=(7.0, 4.6))
        draw(ax, samples if name == "scaling_memory_tasks.png" else records, np)
        ax.set_xlabel("tasks done (cities)" if name == "scaling_memory_tasks.png" else "buildings")
        ax.set_ylabel(ylabel)
        if name != "scaling_cost.png":
            ax.set_ylim(bottom=0)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        out.append(DOCS / name)
        fig.savefig(out[-1], dpi=110)
        plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    global LOG, TMP, SAMPLE_S, PROFILE
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__)
    parser.add_argument("--points", nargs="*", type=float, default=[0.0004, 0.0008, 0.0016, 0.0032])
    parser.add_argument("--build-only", nargs="*", type=float, default=[])
    parser.add_argument("--speedup-at", nargs="*", type=float, default=[0.0016])
    parser.add_argument("--city-buildings", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=12, help="activity window (1-12)")
    parser.add_argument("--log", type=Path, help="append every finished step here (JSON lines)")
    parser.add_argument("--tmp", type=Path, help="where datasets are built (deleted after)")
    parser.add_argument("--sample-s", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "scaling.json")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--plots-only", action="store_true", help="redraw from --out")
    parser.add_argument(
        "--append", nargs="*", type=Path, default=[], help="result files of earlier runs to keep"
    )
    parser.add_argument(
        "--append-log",
        nargs="*",
        type=Path,
        default=[],
        help="step logs (--log) of one-point runs stopped midway: their finished steps, "
        "and the last sample of the step that was running",
    )
    parser.add_argument(
        "--append-samples",
        nargs="*",
        type=Path,
        default=[],
        help="result files whose samples (not points) to keep: memory against tasks done",
    )
    parser.add_argument(
        "--dask-profile", action="store_true", help="keep Dask's profiler on (off by default)"
    )
    args = parser.parse_args(argv)
    LOG, TMP, SAMPLE_S, PROFILE = args.log, args.tmp, args.sample_s, args.dask_profile
    import dask
    import distributed  # noqa: F401 - its defaults first, then ours

    # Dask's statistical profiler keeps a call tree per second of work for an hour
    # (~1 MB a task here): a worker's memory would grow with the run's length
    dask.config.set({"distributed.worker.profile.enabled": PROFILE})
    if args.plots_only:
        done = json.loads(args.out.read_text(encoding="utf-8"))
        plots(done["points"], done.get("samples", {}))
        return 0
    t0 = time.perf_counter()
    records = [
        point(
            s,
            args.city_buildings,
            communities=True,
            speedup=s in args.speedup_at,
            months=args.months,
        )
        for s in args.points
    ]
    records += [
        point(s, args.city_buildings, communities=False, speedup=False, months=args.months)
        for s in args.build_only
    ]
    runs = [{"command": "python -m benchmarks.scaling " + " ".join(argv or [])}]
    samples = {}
    for log in args.append_log:
        point_rec = from_log(log)
        if point_rec:
            records.append(point_rec)
            rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
            samples[f"{point_rec['buildings']}"] = [
                _counted(r, point_rec["cities"]) for r in rows if "sample" in r
            ]
            runs.append(
                {"log": log.name, "stopped_midway": any("_partial" in k for k in point_rec)}
            )
    for extra in args.append:
        earlier = json.loads(extra.read_text(encoding="utf-8"))
        records += earlier.get("points", earlier.get("partial", []))
        runs += earlier.get("runs", [{"command": earlier.get("command")}])
        samples.update(earlier.get("samples", {}))
    for extra in args.append_samples:
        samples.update(json.loads(extra.read_text(encoding="utf-8")).get("samples", {}))
    payload = {
        "module": "scaling",
        "command": runs[0]["command"],
        "runs": runs,
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
    if samples:  # the memory and progress samples of the runs given by --append-log
        payload["samples"] = samples
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    if not args.no_plots:
        for p in plots(payload["points"], payload.get("samples", {})):
            print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
