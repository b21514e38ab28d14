"""Opening the workspace file when SQLite cannot, for a moment or for good.

SQLite fails to open a WAL database while its ``-wal`` file cannot be opened (here a
directory stands in its place, a real SQLite failure: "unable to open database file")
and answers "disk I/O error" while another connection's checkpoint removes the WAL
under it. A failure that goes away within the retries is not seen by the caller; one
that stays is a :class:`DatabaseUnavailableError` naming the file, which the API turns
into a 503 with Retry-After, and nothing is written.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pandas as pd
import pytest

from gridkit.store import DatabaseUnavailableError, open_store
from gridkit.store.gpkg import OPEN_RETRY_S
from tests.api.conftest import make_workspace


def _block_wal(ws: Path) -> Path:
    wal = Path(f"{ws}-wal")
    wal.unlink(missing_ok=True)
    wal.mkdir()
    return wal


def _event(report_id: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": [f"E-{report_id}"],
            "report_id": [report_id],
            "status": ["reported"],
            "at": [pd.Timestamp("2026-05-02T08:00:00Z")],
        }
    )


def test_a_failure_that_passes_within_the_retries_is_not_seen(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws.gpkg")
    store = open_store(ws)
    before = len(store.read("report_events")) if "report_events" in store.layers() else 0
    wal = _block_wal(ws)
    # gone again before the second try (the first waits OPEN_RETRY_S[0])
    threading.Timer(OPEN_RETRY_S[0] / 2, shutil.rmtree, (wal,)).start()
    store.append_many({"report_events": _event("R1")})
    after = open_store(ws).read("report_events")
    assert len(after) == before + 1 and "E-R1" in set(after["event_id"])


def test_a_failure_that_stays_is_unavailable_naming_the_file_and_writes_nothing(
    tmp_path: Path,
) -> None:
    ws = make_workspace(tmp_path / "ws.gpkg")
    store = open_store(ws)
    before = len(store.read("reports"))
    wal = _block_wal(ws)
    with pytest.raises(DatabaseUnavailableError) as err:
        store.append_many({"report_events": _event("R9")})
    assert str(ws) in err.value.message and "nothing was written" in err.value.message
    assert "disk" in err.value.hint
    shutil.rmtree(wal)
    assert len(open_store(ws).read("reports")) == before
    events = open_store(ws).layers()
    assert "report_events" not in events or "E-R9" not in set(
        open_store(ws).read("report_events")["event_id"]
    )


def test_the_api_answers_503_with_retry_after_then_recovers(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from api import create_app
    from gridkit.store import issue_key

    ws = make_workspace(tmp_path / "ws.gpkg")
    secret, _ = issue_key(open_store(ws), "admin", role="admin")
    client = TestClient(create_app(workspace=ws), raise_server_exceptions=False)
    auth = {"X-API-Key": secret}
    report = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [113.0153, 27.7051]},
        "properties": {"category": "floating_garbage", "description": "桥下垃圾"},
    }
    assert client.get("/collections/units/items?limit=1", headers=auth).status_code == 200
    assert client.get("/readyz").json() == {"status": "ready"}
    wal = _block_wal(ws)
    ready = client.get("/readyz")
    assert ready.status_code == 503 and int(ready.headers["Retry-After"]) > 0
    r = client.post("/reports", json=report, headers={**auth, "Idempotency-Key": "a"})
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["Retry-After"]) > 0
    assert "Traceback" not in r.text and "nothing was written" in r.json()["detail"]
    shutil.rmtree(wal)
    assert client.get("/readyz").status_code == 200
    again = client.post("/reports", json=report, headers={**auth, "Idempotency-Key": "a"})
    assert again.status_code == 201, again.text
    got = client.get(f"/collections/reports/items/{again.json()['id']}", headers=auth)
    assert got.json()["properties"]["description"] == "桥下垃圾"


@pytest.mark.parametrize("layer", ["units", "new_layer"])
def test_writing_a_layer_never_replaces_a_file_gdal_cannot_open(tmp_path: Path, layer) -> None:
    """pyogrio deletes a file it cannot open for update and starts a new one; a
    workspace must come out of a failed layer write whole (replacing ``units`` or
    adding a layer), and a clear error say what happened."""
    import geopandas as gpd
    import shapely

    from gridkit.errors import InputFileError
    from gridkit.io import list_layers, read_layer, write_layer

    ws = make_workspace(tmp_path / "ws.gpkg")
    units = read_layer(ws, "units", check=False)
    wal = _block_wal(ws)
    one = gpd.GeoDataFrame({"unit_id": ["X"]}, geometry=[shapely.Point(113, 27)], crs=4326)
    with pytest.raises(InputFileError, match="ws.gpkg") as err:
        write_layer(one, ws, layer)
    assert "nothing was written" in err.value.message or "as it was" in err.value.message
    shutil.rmtree(wal)
    assert sorted(list_layers(ws)) == ["reports", "units", "workers"], err.value
    back = read_layer(ws, "units", check=False)
    assert back["unit_id"].tolist() == units["unit_id"].tolist()
    assert not list(tmp_path.glob(".*.keep"))  # the guard's link is gone
    write_layer(one, ws, layer)  # and once the file opens, the write goes through
    assert read_layer(ws, layer, check=False)["unit_id"].tolist() == ["X"]
    assert "workers" in list_layers(ws)
