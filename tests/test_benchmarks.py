"""Every benchmark module runs in quick mode and its side-by-side check agrees."""

from __future__ import annotations

import importlib

import pytest

from benchmarks._runner import discover, run_case


@pytest.mark.parametrize("module", discover())
def test_benchmark_quick(module: str) -> None:
    cases = importlib.import_module(f"benchmarks.{module}").cases(True)
    assert cases, f"{module} defines no case"
    for case in cases:
        record = run_case(case, quick=True)
        assert record["ours_s"] > 0
        assert record.get("check", "ok") == "ok", (case.name, record["check"])
