"""Quiet notebooks: report objects show a one-line summary, and a call shows each kind
of warning once (not once per community), without tqdm's notebook warning."""

from __future__ import annotations

import subprocess
import sys
import warnings

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from gridkit.errors import GridkitWarning, once_per_call
from tests.test_communities import CRS, X0, Y0, make_city


def short(obj: object, *must: str) -> str:
    text = repr(obj)
    assert "\n" not in text and len(text) <= 300, text
    assert "dtype" not in text and "Name:" not in text, text
    for part in must:
        assert part in text, text
    return text


def test_community_split_report_repr() -> None:
    from gridkit.communities import split_communities

    communities, buildings = make_city(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GridkitWarning)
        units = split_communities(communities, buildings, max_households=30)
    r = units.attrs["report"]
    assert len(r.building_units) == len(buildings)  # the 480-row Series is still there
    short(r, "CommunitySplitReport", f"{r.n_units} units", "over the cap")


def test_validation_report_and_river_split_repr() -> None:
    from gridkit.rivers import split_rivers
    from gridkit.validate import ValidationReport

    report = ValidationReport(figures={"units": 2.0})
    for i in range(40):
        report.add("overlap", f"units U{i}/U{i + 1} overlap.", rows=[f"U{i}"])
    report.add("too_short", "reach R1 is short.", rows=["R1"], severity="warning")
    short(report, "40 errors", "overlap 40", "1 warning", "too_short")
    short(ValidationReport(), "valid")

    line = shapely.LineString([(X0 + 500, Y0 + 500), (X0 + 1500, Y0 + 500)])
    rivers = gpd.GeoDataFrame({"river_id": ["A"], "name": ["湘江"]}, geometry=[line], crs=CRS)
    admin = gpd.GeoDataFrame({"admin_code": ["430202", "430203"], "name": ["荷塘区", "芦淞区"],
        "level": "county", "parent_code": "430200"},
        geometry=[shapely.box(X0, Y0, X0 + 1000, Y0 + 1000),
                  shapely.box(X0 + 1000, Y0, X0 + 2000, Y0 + 1000)], crs=CRS)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GridkitWarning)
        result = split_rivers(rivers, admin, max_length_m=300)
    short(result, "RiverSplit", f"{len(result.reaches)} reaches", "1 river")


def test_simulation_assessment_and_assignment_repr() -> None:
    from gridkit.ops import assess, simulate
    from gridkit.staffing import assign_workers
    from gridkit.synth.ops import grid_units, grid_workers

    units = grid_units(4, 4)
    workers, assignments = grid_workers(units)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GridkitWarning)
        sim = simulate(units, workers, assignments, start="2026-04-01", end="2026-04-15", seed=2)
    short(sim, "Simulation", f"{len(sim.patrols)} patrols", f"{len(sim.reports)} reports")
    compliance = pd.DataFrame({"worker_id": ["W1", "W2", "W3"], "compliant": [True, False, True]})
    short(assess(compliance=compliance), "Assessment", "3 workers")
    result = assign_workers(units, workers)
    short(result, "AssignmentResult", result.status, f"{len(result.assignments)} assignments")


def test_a_call_warns_once_per_kind() -> None:
    """split_communities warned once per community for over-cap clusters."""
    from gridkit.communities import split_communities

    communities, buildings = make_city(3)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        once_per_call(split_communities)(communities, buildings, max_households=30)
    ours = [str(w.message) for w in seen if issubclass(w.category, GridkitWarning)]
    assert len(ours) == len(set(ours)) == 1, ours
    assert "(and 3 more warnings like it)" in ours[0]
    assert seen[0].filename == __file__  # at the caller's line


@pytest.mark.parametrize(("how", "expected"), [("import esda", 1), ("quiet", 0)])
def test_tqdm_notebook_warning_silenced(how: str, expected: int) -> None:
    """In a Jupyter kernel without ipywidgets, importing esda (hotspots) printed tqdm's
    'IProgress not found' warning."""
    code = (
        "import sys, types, warnings\n"
        "import IPython\n"
        "sys.modules['ipykernel.zmqshell'] = types.ModuleType('ipykernel.zmqshell')\n"
        "from gridkit.errors import import_quietly\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        + ("    import esda\n" if how == "import esda" else "    import_quietly('esda')\n")
        + "print(sum('IProgress' in str(w.message) for w in seen))\n"
    )
    pytest.importorskip("IPython")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split()[-1]) == expected
