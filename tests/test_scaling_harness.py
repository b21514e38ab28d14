"""The scaling benchmark counts the tasks a step has finished, although ``Engine.map``
releases each result as its task ends (the scheduler's task table then holds only the
tasks left), and reads a stopped run's progress from its log either way."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from benchmarks.scaling import _count_finished, _counted, _tasks_done, from_log
from gridkit.scale import Engine


def _square(i: int) -> int:
    return i * i


def test_finished_tasks_are_counted_after_their_results_are_released() -> None:
    with Engine.local(2) as engine:
        engine.client.run_on_scheduler(_count_finished)
        out = engine.map(_square, list(range(7)), label="square")
        done, total = engine.client.run_on_scheduler(_tasks_done)
        for _ in range(50):  # released results leave the table within moments
            held = engine.client.run_on_scheduler(_table)
            if not held:
                break
            time.sleep(0.1)
        after = engine.client.run_on_scheduler(_tasks_done)
    assert out == [i * i for i in range(7)]
    assert (done, total) == (7, 7)
    assert held == 0  # the task table alone would say nothing was done
    assert after == (7, 7)


def _table(dask_scheduler=None) -> int:
    return len(dask_scheduler.tasks)


def _sample(tasks: int, done: int, **extra) -> dict:
    row = {"sample": "communities 0.2", "t_s": 30.0, "tasks": tasks, "tasks_done": done}
    return {**row, "rss_mb": [350, 360], "peak_mb": [400, 431], **extra}


@pytest.mark.parametrize(
    ("tasks", "done", "expected"),
    [
        (700, 0, 308),  # results released as tasks end: 700 of 1008 left
        (698, 2, 312),  # two results not yet fetched: still in the table, done
        (1008, 370, 370),  # results gathered at the end: every task in the table
    ],
)
def test_an_uncounted_sample_counts_the_cities(tasks: int, done: int, expected: int) -> None:
    row = _counted(_sample(tasks, done), 1008)
    assert (row["tasks_done"], row["tasks"]) == (expected, 1008)
    counted = _sample(5, 3, tasks_counted=True)
    assert _counted(counted, 1008) == counted  # a counted sample is left alone
    build = {**_sample(700, 0), "sample": "build 0.2"}
    assert _counted(build, 1008) == build  # the build's tasks are not one per city


def test_a_stopped_run_reads_its_progress_and_peak_from_the_log(tmp_path: Path) -> None:
    step = {"step": "rivers", "buildings": 10_739_176, "cities": 1008, "rivers_s": 296.3}
    rows = [
        {"sample": "rivers 0.2", "t_s": 30.0, "tasks": 10, "tasks_done": 0, "peak_mb": [380, 395]},
        step,
        _sample(1006, 0),
        _sample(707, 0, peak_mb=[431, 431]),
    ]
    log = tmp_path / "scale.log"
    log.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    rec = from_log(log)
    assert rec["rivers_s"] == 296.3 and "step" not in rec
    assert rec["communities_partial"]["tasks_done"] == 1008 - 707
    assert rec["communities_sampled_peak_mb"] == 431
    assert rec["rivers_sampled_peak_mb"] == 395
    assert "rivers_partial" not in rec  # the rivers step finished


def _own_peak(q) -> None:
    from benchmarks.scaling import _peak_mb

    q.put(_peak_mb())


def test_a_spawned_worker_reports_its_own_peak_not_its_parents() -> None:
    import multiprocessing as mp

    import psutil

    blob = bytearray(1024 * 2**20)  # the parent 1 GB larger when it spawns
    blob[::4096] = b"x" * len(blob[::4096])  # touched: resident
    parent = psutil.Process().memory_info().rss / 2**20
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_own_peak, args=(q,))
    p.start()
    peak = q.get(timeout=120)
    p.join()
    del blob
    # the child imports this module (geopandas & co., ~250 MB); ru_maxrss would say
    # the parent's 1.3 GB or more (Linux keeps the high-water mark over the exec)
    assert peak < parent - 600, (peak, parent)
