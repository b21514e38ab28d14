"""GeoPackage writes ``if_unchanged``: refused when another process changed the layer
since this store last read it, however long after the read the write comes and
whatever the store looked at in between (its periodic look at the file, ``_sync``,
notices the change but must not pass it off as read)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

import gridkit.store.gpkg as gpkg
from gridkit.io import read_layer, write_layer
from gridkit.store import ConcurrentWriteError, RowUpdate, WriteBatch, open_store
from gridkit.store.base import conditional_update


def _reports(ids: list[str]) -> gpd.GeoDataFrame:
    n = len(ids)
    return gpd.GeoDataFrame(
        {
            "report_id": ids,
            "category": ["河面漂浮物"] * n,
            "status": ["reported"] * n,
            "escalation_level": [0] * n,
        },
        geometry=shapely.points([(113.1 + 0.01 * i, 27.8) for i in range(n)]),
        crs=4326,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws.gpkg"
    write_layer(_reports(["R1", "R2"]), path, "reports")
    events = pd.DataFrame({"report_id": ["R1"], "to_status": ["reported"], "note": ["首报"]})
    write_layer(events, path, "report_events")
    return path


def _event(rid: str, note: str) -> pd.DataFrame:
    return pd.DataFrame({"report_id": [rid], "to_status": ["reported"], "note": [note]})


def _escalate(rid: str) -> WriteBatch:
    change = RowUpdate("reports", "report_id", rid, {"escalation_level": 1})
    return WriteBatch({"report_events": _event(rid, "督办")}, change, if_unchanged=True)


@pytest.mark.parametrize("look", ["generation", "read_other_layer"])
def test_write_after_a_look_at_the_file_still_sees_the_other_write(
    workspace: Path, monkeypatch, look: str
) -> None:
    """Store ``a`` reads, ``b`` (another process's store on the same file) writes,
    ``a`` looks at the file (any later request does: here every call, SYNC_S 0), then
    ``a`` writes what it decided from its read: refused, nothing written."""
    monkeypatch.setattr(gpkg, "SYNC_S", 0.0)
    a, b = open_store(workspace), open_store(workspace)
    held = a.read("reports")
    assert held["escalation_level"].tolist() == [0, 0]
    b.update("reports", "report_id", "R1", {"status": "closed"})
    if look == "generation":
        a.generation("reports")
    else:
        a.read("report_events")
    with pytest.raises(ConcurrentWriteError, match="reports"):
        a.write(_escalate("R1"))
    on_disk = read_layer(workspace, "reports", check=False).set_index("report_id")
    assert on_disk.loc["R1", "status"] == "closed" and on_disk.loc["R1", "escalation_level"] == 0
    assert len(read_layer(workspace, "report_events", check=False)) == 1  # no event either
    # read again: the other write is seen, and the write goes through
    assert a.read("reports").set_index("report_id").loc["R1", "status"] == "closed"
    a.write(_escalate("R1"))
    on_disk = read_layer(workspace, "reports", check=False).set_index("report_id")
    assert on_disk.loc["R1", "escalation_level"] == 1 and on_disk.loc["R1", "status"] == "closed"


def test_other_process_write_over_a_second_before_is_refused(workspace: Path) -> None:
    """The review's case, in real time and with a real second process: read, another
    process appends, more than SYNC_S later the store serves another read, then writes."""
    a = open_store(workspace)
    assert a.read("reports")["report_id"].tolist() == ["R1", "R2"]
    script = (
        "import sys, geopandas as gpd, shapely; from gridkit.store import open_store; "
        "open_store(sys.argv[1]).append('reports', gpd.GeoDataFrame({'report_id': ['EXT'], "
        "'category': ['x'], 'status': ['reported'], 'escalation_level': [0]}, "
        "geometry=[shapely.Point(113.3, 27.7)], crs=4326))"
    )
    subprocess.run([sys.executable, "-c", script, str(workspace)], check=True)
    time.sleep(gpkg.SYNC_S + 0.1)  # (sleeping: no CPU)
    a.read("report_events")  # another request: the store looks at the file
    write = conditional_update(a, "reports", "report_id", "report_events")
    assert write("R2", {"escalation_level": 1}, _event("R2", "督办")) is False
    assert read_layer(workspace, "reports", check=False)["escalation_level"].tolist() == [0, 0, 0]
    assert a.read("reports")["report_id"].tolist() == ["R1", "R2", "EXT"]  # read again
    assert write("R2", {"escalation_level": 1}, _event("R2", "督办")) is True


def test_no_false_refusal_after_own_writes_and_reads(workspace: Path, monkeypatch) -> None:
    """Without another writer, reads (held or from the file) and this store's own
    writes never make a conditional write fail."""
    monkeypatch.setattr(gpkg, "SYNC_S", 0.0)
    a = open_store(workspace)
    a.read("reports")
    a.append("reports", _reports(["R3"]))
    a.write(_escalate("R3"))
    a.generation("reports")
    a.read("report_events")
    a.save_layer("notes", pd.DataFrame({"note": ["备注"]}))
    a.write(_escalate("R1"))
    levels = read_layer(workspace, "reports", check=False).set_index("report_id")
    assert levels["escalation_level"].to_dict() == {"R1": 1, "R2": 0, "R3": 1}
