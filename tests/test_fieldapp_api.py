"""The field app's server side (issue 23): evidence naming its report by the client's
Idempotency-Key, the app shell and its data routes, TLS options and key QR codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import create_app
from tests.api.test_evidence import jpeg, upload
from tests.api.test_writes import field_workspace, h, report


@pytest.fixture
def setup(tmp_path: Path):
    ws, keys = field_workspace(tmp_path / "ws.gpkg")
    return ws, TestClient(create_app(workspace=ws)), keys


def test_evidence_names_its_report_by_the_clients_key(setup) -> None:
    """A phone queues a report and its photo offline: the photo names the report by
    the report's Idempotency-Key (the server id is not known yet), exactly once."""
    _, client, keys = setup
    r = client.post("/reports", json=report(), headers=h(keys["w1"], **{"Idempotency-Key": "r-1"}))
    assert r.status_code == 201
    rid = r.json()["id"]
    photo = jpeg()
    first = upload(
        client, "key:r-1", keys["w1"], photo, kind="before", headers={"Idempotency-Key": "e-1"}
    )
    assert first.status_code == 201, first.text
    assert first.json()["report_id"] == rid
    again = upload(
        client, "key:r-1", keys["w1"], photo, kind="before", headers={"Idempotency-Key": "e-1"}
    )
    assert again.status_code == 201 and again.headers["Idempotent-Replay"] == "true"
    listed = client.get(f"/reports/{rid}/evidence", headers=h(keys["w1"])).json()["evidence"]
    assert len(listed) == 1 and listed[0]["kind"] == "before"


def test_evidence_by_key_is_the_callers_own_and_must_exist(setup) -> None:
    _, client, keys = setup
    client.post("/reports", json=report(), headers=h(keys["w1"], **{"Idempotency-Key": "r-2"}))
    # another worker's phone using the same client key names no report of his
    other = upload(client, "key:r-2", keys["w2"], jpeg(), headers={"Idempotency-Key": "e-2"})
    assert other.status_code == 404
    assert "r-2" in other.json()["detail"] and "send the report first" in other.json()["detail"]
    unknown = upload(client, "key:nope", keys["w1"], jpeg())
    assert unknown.status_code == 404
