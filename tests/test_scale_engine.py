"""The engine's workers hold no finished task's result while the others run: a
worker's memory is its task's, not the sum of its tasks' (benchmarks/scaling.py saw a
worker grow with every city it had split when results waited for the last task)."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("distributed")

from gridkit.scale import Engine


def held_then_a_result(i: int) -> tuple[int, np.ndarray]:
    from distributed import get_worker

    time.sleep(0.1)  # the driver fetches and releases the results of the tasks before
    return len(get_worker().data), np.full(125_000, i, dtype=np.float64)  # 1 MB


def test_results_leave_the_workers_as_tasks_end() -> None:
    with Engine.local(1) as engine:
        out = engine.map(held_then_a_result, list(range(24)), label="held")
        profiling = engine.client.run(
            lambda: __import__("dask").config.get("distributed.worker.profile.enabled")
        )
        mmap = engine.client.run(lambda: __import__("os").environ.get("MALLOC_MMAP_THRESHOLD_"))
    assert [int(r[1][0]) for r in out] == list(range(24))  # in order, every one
    held = [r[0] for r in out]
    assert max(held) <= 4, held  # gathered at the end, the 24th task saw 23 held
    assert not any(profiling.values())  # Dask's profiler off: ~1 MB a task otherwise
    # glibc's mmap threshold raised beside Dask's trim threshold (NumPy temporaries
    # are not each a fresh mapping)
    assert set(mmap.values()) == {"33554432"}, mmap


def slow_square(x: int) -> int:
    time.sleep(0.05)
    return x * x


def test_progress_is_dasks_own_bar_and_every_result_comes_back(capfd) -> None:
    """``progress=True`` (a terminal, from the CLI): Dask's TextProgressBar, fed by
    the scheduler, draws while the results are fetched and released one by one."""
    with Engine.local(1, progress=True) as engine:
        out = engine.map(slow_square, list(range(30)), label="squares")
    assert out == [x * x for x in range(30)]
    drawn = capfd.readouterr().out
    assert "% Completed" in drawn and "100% Completed" in drawn, drawn[-300:]
