"""/stats/chiefs and /stats/summons: river chiefs' compliance and summons over HTTP."""

from __future__ import annotations

import io

import pandas as pd
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from api import create_app
from gridkit.io import write_layer
from gridkit.ops.summons import summons_record
from gridkit.store import issue_key, open_store
from gridkit.synth.people import chief_demo


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    path = tmp_path_factory.mktemp("chiefs") / "ws.gpkg"
    units, chiefs, patrols = chief_demo("car")
    write_layer(units, path, "units")
    write_layer(chiefs, path, "river_chiefs")
    write_layer(patrols, path, "patrols")
    write_layer(
        summons_record(
            "W-V", period="2026-Q2", held_on="2026-07-02", held_by="区河长办", outcome="限期整改"
        ),
        path,
        "summons",
    )
    store = open_store(path)
    keys = {
        "viewer": issue_key(store, "v", role="viewer")[0],
        "other": issue_key(store, "s", role="supervisor", scope="430203")[0],
    }
    return TestClient(create_app(workspace=path)), keys


def test_chiefs_compliance_json(served):
    client, keys = served
    r = client.get("/stats/chiefs?period=2026-Q2", headers={"X-API-Key": keys["viewer"]})
    assert r.status_code == 200, r.text
    rows = {c["chief_id"]: c for c in r.json()["chiefs"]}
    assert rows["RC-CAR"]["rule"] == "1/quarter" and rows["RC-CAR"]["compliant"] is True
    assert rows["RC-V"]["unverified"] == 1 and rows["RC-V"]["done"] == 0
    r = client.get(
        "/stats/chiefs?period=2026-Q2&level=county", headers={"X-API-Key": keys["viewer"]}
    )
    assert [c["chief_id"] for c in r.json()["chiefs"]] == ["RC-CAR"]


def test_chiefs_xlsx_and_scope(served):
    client, keys = served
    r = client.get(
        "/stats/chiefs?period=2026-Q2&format=xlsx", headers={"X-API-Key": keys["viewer"]}
    )
    assert r.status_code == 200
    sheet = pd.read_excel(io.BytesIO(r.content), sheet_name="chiefs")
    assert set(sheet["chief_id"]) == {"RC-CAR", "RC-V"}
    # a supervisor of another district sees no chief of 430202
    r = client.get("/stats/chiefs?period=2026-Q2", headers={"X-API-Key": keys["other"]})
    assert r.status_code == 404


@pytest.mark.parametrize("bad", ["2026-Q5", "2026-13", "26", "2026-W54"])
def test_bad_period_is_400(served, bad):
    client, keys = served
    r = client.get(f"/stats/chiefs?period={bad}", headers={"X-API-Key": keys["viewer"]})
    assert r.status_code == 400


def test_summons_list_with_records(served):
    client, keys = served
    r = client.get("/stats/summons?period=2026-Q2", headers={"X-API-Key": keys["viewer"]})
    assert r.status_code == 200, r.text
    (row,) = r.json()["summons"]
    assert row["worker_id"] == "W-V" and "1/week" in row["reason"]
    assert row["held_by"] == "区河长办" and row["outcome"] == "限期整改"
