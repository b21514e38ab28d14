"""``python -m benchmarks --report``: BENCHMARKS.md from the committed results."""

from __future__ import annotations

import json

from benchmarks.__main__ import main
from benchmarks.report import HERE, write_report


def test_report_lists_every_case_with_its_peer(tmp_path):
    out = write_report(tmp_path / "BENCHMARKS.md")
    text = out.read_text(encoding="utf-8")
    for f in sorted((HERE / "results").glob("bench_*.json")):
        payload = json.loads(f.read_text(encoding="utf-8"))
        for case in payload["cases"]:
            row = next(line for line in text.splitlines() if line.startswith(f"| {case['name']} |"))
            if "ratio" in case:
                assert f"{case['ratio']:.2f}x" in row and case["peer"] in row
    if (HERE / "results" / "scaling.json").exists():
        assert "## Scaling on Dask" in text and "docs/scaling_cost.png" in text


def test_report_flag_writes_the_file(monkeypatch, tmp_path, capsys):
    import benchmarks.report

    monkeypatch.setattr(benchmarks.report, "ROOT", tmp_path)
    assert main(["--report"]) == 0
    assert (tmp_path / "BENCHMARKS.md").exists()
    assert "wrote" in capsys.readouterr().out
