"""Field writes: reports (create, de-duplicate, lifecycle, evidence) and patrols."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient

from api import create_app
from gridkit.crs import wgs84_to_gcj02
from gridkit.io import write_layer
from gridkit.store import issue_key, open_store
from tests.api.conftest import make_workspace

# unit 430202001001-000 is the cell 113.000..113.009 E, 27.700..27.709 N
INSIDE = (113.004, 27.704)


def field_workspace(path: Path) -> tuple[Path, dict[str, str]]:
    """A workspace with units, assignments, departments, a city outline, and keys."""
    ws = make_workspace(path, n=50)
    write_layer(
        pd.DataFrame(
            {
                "unit_id": ["430202001001-000", "430203001001-001"],
                "worker_id": ["W1", "W2"],
                "role": "grid_worker",
            }
        ),
        ws,
        "assignments",
    )
    write_layer(
        pd.DataFrame(
            {
                "department_id": ["D1", "D2"],
                "name": ["荷塘区城管局", "水利局"],
                "admin_code": ["430202", "430200"],
                "categories": ["street_light;road_damage", "floating_garbage,encroachment"],
            }
        ),
        ws,
        "departments",
    )
    admin = gpd.GeoDataFrame(
        {
            "admin_code": ["430200"],
            "name": ["株洲市"],
            "level": ["city"],
            "parent_code": ["430000"],
        },
        geometry=[shapely.box(112.99, 27.69, 113.26, 27.8)],
        crs=4326,
    )
    write_layer(admin, ws, "admin_areas")
    store = open_store(ws)
    keys = {
        "w1": issue_key(store, "张三", role="worker", worker_id="W1")[0],
        "w2": issue_key(store, "李四", role="worker", worker_id="W2")[0],
        "sup": issue_key(store, "王主任", role="supervisor", worker_id="S1")[0],
        "sup2": issue_key(store, "赵主任", role="supervisor", worker_id="S2")[0],
        "viewer": issue_key(store, "看", role="viewer")[0],
        "far": issue_key(store, "外区", role="supervisor", scope="430281")[0],
        # the centre's dispatcher of the district, and the staff of its departments
        "disp": issue_key(store, "调度员", role="dispatcher", scope="430202")[0],
        "d1": issue_key(store, "城管局", role="department", department_id="D1")[0],
        "d2": issue_key(store, "水利局", role="department", department_id="D2")[0],
    }
    return ws, keys


@pytest.fixture
def setup(tmp_path: Path):
    ws, keys = field_workspace(tmp_path / "ws.gpkg")
    return ws, TestClient(create_app(workspace=ws)), keys


@pytest.fixture(params=["pyarrow", "python"])
def any_strings(request):
    """Both string storages of pandas: its default (Arrow) and the Python objects
    ``gridkit serve`` runs with."""
    with pd.option_context("mode.string_storage", request.param):
        yield request.param


def jpeg_photo(color: tuple[int, int, int] = (90, 90, 90)) -> bytes:
    """A real JPEG (evidence is decoded, not only sniffed)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buf, "JPEG")
    return buf.getvalue()


def h(key: str, **extra: str) -> dict[str, str]:
    return {"X-API-Key": key, **extra}


def report(**kw) -> dict:
    body = {
        "category": "street_light",
        "description": "路灯不亮 <b>",
        "source": "patrol",
        "lon": INSIDE[0],
        "lat": INSIDE[1],
    }
    body.update(kw)
    return body


def test_post_report_is_located_handed_over_and_due(any_strings, setup) -> None:
    ws, client, keys = setup
    r = client.post("/reports", json=report(), headers=h(keys["w1"]))
    assert r.status_code == 201, r.text
    f = r.json()
    p = f["properties"]
    assert p["unit_id"] == "430202001001-000"
    # street lights are opened and dispatched at once (auto_open in the rules)
    assert p["status"] == "dispatched"
    assert p["lead_department_id"] == "D1"
    assert p["assignee_id"] == "W1"  # the unit's grid worker, who verifies
    assert p["due_at"] is not None
    assert p["description"] == "路灯不亮 <b>"  # stored as given; escaped where rendered
    assert r.headers["location"] == f"/collections/reports/items/{f['id']}"
    events = open_store(ws).read("report_events")
    mine = events[events["report_id"] == f["id"]]
    assert list(mine["to_status"]) == ["collected", "opened", "dispatched"]
    # the worker collected it; the rules' automatic steps are the system's
    assert list(mine["actor_id"]) == ["W1", "system", "system"]


def test_report_no_department_handles_is_logged_not_warned(setup, caplog) -> None:
    _, client, keys = setup
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Python warning per batch would fail here
        # sewage is opened at once (auto_open), but no department handles it here
        r = client.post("/reports", json=report(category="sewage"), headers=h(keys["w1"]))
    assert r.status_code == 201, r.text
    p = r.json()["properties"]
    assert p["status"] == "opened" and p["lead_department_id"] is None
    logged = [rec for rec in caplog.records if rec.name == "gridkit.api"]
    assert len(logged) == 1 and r.json()["id"] in logged[0].getMessage()
    # a handled report logs nothing, nor one waiting for the centre to open it (cctv)
    caplog.clear()
    assert client.post("/reports", json=report(), headers=h(keys["w1"])).status_code == 201
    cctv = client.post("/reports", json=report(category="cctv"), headers=h(keys["w1"]))
    assert cctv.json()["properties"]["status"] == "collected"
    assert not [rec for rec in caplog.records if rec.name == "gridkit.api"]


def test_geojson_feature_body_and_gcj02_datum(setup) -> None:
    _, client, keys = setup
    glon, glat = wgs84_to_gcj02(*INSIDE)
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [float(glon), float(glat)]},
        "properties": {"category": "street_light", "source": "patrol", "crs": "gcj02"},
    }
    r = client.post("/reports", json=feature, headers=h(keys["w1"]))
    assert r.status_code == 201, r.text
    lon, lat = r.json()["geometry"]["coordinates"]
    assert abs(lon - INSIDE[0]) < 1e-5 and abs(lat - INSIDE[1]) < 1e-5


def test_duplicate_is_linked_not_handed_over_twice(setup) -> None:
    _, client, keys = setup
    first = client.post("/reports", json=report(), headers=h(keys["w1"])).json()
    second = client.post(
        "/reports", json=report(lon=INSIDE[0] + 0.0001), headers=h(keys["w1"])
    ).json()
    assert second["properties"]["duplicate_of"] == first["id"]
    assert first["properties"]["status"] == "dispatched"
    assert second["properties"]["status"] == "collected"  # linked, not handed over
    assert second["properties"]["lead_department_id"] is None


def test_idempotency_key_creates_nothing_twice(setup) -> None:
    ws, client, keys = setup
    hdr = h(keys["w1"], **{"Idempotency-Key": "phone-42-001"})
    a = client.post("/reports", json=report(), headers=hdr)
    b = client.post("/reports", json=report(), headers=hdr)
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] == b.json()["id"]
    assert b.headers.get("idempotent-replay") == "true"
    reports = open_store(ws).read("reports")
    assert (reports["idempotency_key"] == "worker:W1/phone-42-001").sum() == 1


def test_idempotency_keys_belong_to_their_caller(setup) -> None:
    """Two phones may pick the same key: each gets its own report, never the other's
    (with its private fields); the same key for a different report is a 422."""
    ws, client, keys = setup
    mine = client.post("/reports", json=report(), headers=h(keys["w1"], **{"Idempotency-Key": "1"}))
    other = report(description="另一件事", lon=INSIDE[0] + 0.003, reporter_contact="139")
    theirs = client.post("/reports", json=other, headers=h(keys["sup"], **{"Idempotency-Key": "1"}))
    assert mine.status_code == theirs.status_code == 201, theirs.text
    assert mine.json()["id"] != theirs.json()["id"]
    assert "idempotent-replay" not in theirs.headers
    # reusing one's own key for something else is refused, and creates nothing
    again = client.post("/reports", json=other, headers=h(keys["w1"], **{"Idempotency-Key": "1"}))
    assert again.status_code == 422 and "different report" in again.json()["detail"]
    assert len(open_store(ws).read("reports")) == 3 + 2  # the workspace's 3, and 2 new
    # a true retry still replays
    retry = client.post(
        "/reports", json=report(), headers=h(keys["w1"], **{"Idempotency-Key": "1"})
    )
    assert retry.status_code == 201 and retry.json()["id"] == mine.json()["id"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (report(category="ufo"), 400, "Unknown report category"),
        (report(lon=120.0, lat=30.0), 422, "outside the service area"),
        (report(lon=None, lat=None), 400, "admin_code or unit_id"),
        (report(lat=None), 400, "both lon and lat"),
        (report(description="x" * 2001), 400, "description"),
        (report(lon=500), 400, "lon"),
        ({**report(), "extra": 1}, 400, "extra"),
        (report(reported_at="0001-01-01T00:00:00Z"), 400, "not a plausible time"),
        (report(reported_at="9999-01-01T00:00:00+08:00"), 400, "device clock"),
    ],
)
def test_bad_reports_are_clear_400s(setup, body, status, words) -> None:
    _, client, keys = setup
    r = client.post("/reports", json=body, headers=h(keys["sup"]))
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert words in r.json()["detail"]


def test_hotline_report_with_admin_code_only(setup) -> None:
    _, client, keys = setup
    r = client.post(
        "/reports",
        json=report(lon=None, lat=None, source="hotline", admin_code="430202001001"),
        headers=h(keys["sup"]),
    )
    assert r.status_code == 201, r.text
    assert r.json()["geometry"] is None
    assert r.json()["properties"]["admin_code"] == "430202001001"
    # a district code (above the units' communities) and a unit of the grid are fine
    places = (
        {"admin_code": "430202"},
        {"admin_code": "430202000000"},
        {"unit_id": "430203001001-001"},
    )
    for place in places:
        ok = client.post(
            "/reports",
            json=report(lon=None, lat=None, source="hotline", **place),
            headers=h(keys["sup"]),
        )
        assert ok.status_code == 201, (place, ok.text)
    # places that do not exist are refused, not stored unplaceable
    for place, words in (
        ({"admin_code": "999999"}, "No admin area"),
        ({"unit_id": "nope"}, "No unit"),
    ):
        bad = client.post(
            "/reports",
            json=report(lon=None, lat=None, source="hotline", **place),
            headers=h(keys["sup"]),
        )
        assert bad.status_code == 422 and words in bad.json()["detail"], bad.text


def test_roles_and_scope_on_reports(setup) -> None:
    _, client, keys = setup
    assert client.post("/reports", json=report(), headers=h(keys["viewer"])).status_code == 403
    # a worker reports anywhere in his scope (W2's key has none), not only on his units
    assert client.post("/reports", json=report(), headers=h(keys["w2"])).status_code == 201
    r = client.post("/reports", json=report(), headers=h(keys["far"]))
    assert r.status_code == 403 and "outside your scope" in r.json()["detail"]


def test_city_scope_holds_its_districts(setup) -> None:
    # a scope of 430200 is the whole city (gridkit.codes.in_scope), not only the codes
    # starting with "430200": its supervisor files reports in district 430202 and acts
    # on them; a district's scope (430281) still holds nothing of 430202
    ws, client, keys = setup
    city = issue_key(open_store(ws), "市主任", role="supervisor", scope="430200")[0]
    r = client.post("/reports", json=report(), headers=h(city))
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["admin_code"].startswith("430202")
    rid = r.json()["id"]
    photo = {"photo": ("p.jpg", jpeg_photo(), "image/jpeg")}
    assert client.post(f"/reports/{rid}/evidence", files=photo, headers=h(city)).status_code == 201
    assert (
        client.post(f"/reports/{rid}/evidence", files=photo, headers=h(keys["far"])).status_code
        == 404
    )


def test_lifecycle_over_http(any_strings, setup) -> None:
    # PATCH by status (the first wave's names too): each status reached by the action
    # that leads there, taken by whom the rules say
    ws, client, keys = setup
    rid = client.post("/reports", json=report(), headers=h(keys["w1"])).json()["id"]
    url = f"/reports/{rid}"
    # the worker does not handle the case; the department does
    assert (
        client.patch(url, json={"status": "in_progress"}, headers=h(keys["w1"])).status_code == 403
    )
    r = client.patch(url, json={"status": "in_progress"}, headers=h(keys["d1"]))
    assert r.status_code == 200 and r.json()["properties"]["status"] == "handling", r.text
    # another worker cannot touch it, nor another department
    assert client.patch(url, json={"status": "resolved"}, headers=h(keys["w2"])).status_code == 403
    assert client.patch(url, json={"status": "resolved"}, headers=h(keys["d2"])).status_code == 404
    # reporting back needs an after photo (street lights: see rules/reports.toml)
    r = client.patch(url, json={"status": "resolved"}, headers=h(keys["d1"]))
    assert r.status_code == 409 and "lacks after evidence" in r.json()["detail"], r.text
    ev = client.post(
        f"{url}/evidence?kind=after",
        files={"photo": ("p.jpg", jpeg_photo(), "image/jpeg")},
        headers=h(keys["d1"]),
    ).json()["evidence"]
    r = client.patch(url, json={"status": "resolved", "evidence": ev}, headers=h(keys["d1"]))
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["status"] == "reported_back"
    # a step the stage does not allow is a clear 409, not a 500
    bad = client.patch(url, json={"status": "closed"}, headers=h(keys["sup"]))
    assert bad.status_code == 409 and "reported_back" in bad.json()["detail"]
    # the unit's worker verifies on site; the worker cannot close, the centre does
    ok = client.patch(url, json={"status": "verified"}, headers=h(keys["w1"]))
    assert ok.status_code == 200, ok.text
    assert client.patch(url, json={"status": "closed"}, headers=h(keys["w1"])).status_code == 403
    ok = client.patch(url, json={"status": "closed"}, headers=h(keys["disp"]))
    assert ok.status_code == 200 and ok.json()["properties"]["status"] == "closed", ok.text
    events = open_store(ws).read("report_events")
    mine = events[events["report_id"] == rid]
    assert list(mine["to_status"]) == [
        "collected",
        "opened",
        "dispatched",
        "handling",
        "reported_back",
        "verified",
        "closed",
    ]
    # who took each step: the key's worker, else the key's holder
    assert list(mine["actor_id"])[3:] == ["城管局", "城管局", "W1", "调度员"]


def test_evidence_limits(setup) -> None:
    _, client, keys = setup
    rid = client.post("/reports", json=report(), headers=h(keys["w1"])).json()["id"]
    r = client.post(
        f"/reports/{rid}/evidence",
        files={"photo": ("x.exe", b"MZ....", "image/jpeg")},
        headers=h(keys["w1"]),
    )
    assert r.status_code == 415
    big = b"\xff\xd8\xff" + b"0" * 6_000_000
    r = client.post(
        f"/reports/{rid}/evidence",
        files={"photo": ("b.jpg", big, "image/jpeg")},
        headers=h(keys["w1"]),
    )
    assert r.status_code == 413
    # photos go only to reports the caller may act on
    photo = {"photo": ("p.jpg", jpeg_photo(), "image/jpeg")}
    url = f"/reports/{rid}/evidence"
    assert client.post(url, files=photo, headers=h(keys["w2"])).status_code == 403  # not theirs
    assert client.post(url, files=photo, headers=h(keys["far"])).status_code == 404  # out of scope
    assert client.post(url, files=photo, headers=h(keys["w1"])).status_code == 201


def fixes(n: int = 40, lon0: float = 113.001, step: float = 0.0002) -> list[dict]:
    t0 = pd.Timestamp("2026-05-01T01:00:00Z")
    return [
        {
            "lon": lon0 + i * step,
            "lat": 27.704,
            "t": (t0 + pd.Timedelta(minutes=i)).isoformat(),
            "accuracy_m": 5.0,
        }
        for i in range(n)
    ]


def test_post_patrol_and_offline_batch_retry(setup) -> None:
    ws, client, keys = setup
    r = client.post(
        "/patrols", json={"patrol_id": "W1-20260501-1", "points": fixes()}, headers=h(keys["w1"])
    )
    assert r.status_code == 201, r.text
    assert r.json()["created"][0]["patrol_id"] == "W1-20260501-1"
    batch = {
        "patrols": [
            {"patrol_id": "W1-20260501-1", "points": fixes()},
            {"patrol_id": "W1-20260502-1", "points": fixes(lon0=113.002)},
        ]
    }
    r = client.post("/patrols", json=batch, headers=h(keys["w1"]))
    assert r.json()["existing"] == ["W1-20260501-1"]
    assert [p["patrol_id"] for p in r.json()["created"]] == ["W1-20260502-1"]
    patrols = open_store(ws).read("patrols")
    assert sorted(patrols["patrol_id"]) == ["W1-20260501-1", "W1-20260502-1"]
    assert (patrols["worker_id"] == "W1").all()
    points = open_store(ws).read("patrol_points")
    assert len(points) == 80


def test_patrol_ids_and_keys_belong_to_their_worker(setup) -> None:
    ws, client, keys = setup
    first = client.post(
        "/patrols", json={"patrol_id": "P1", "points": fixes()}, headers=h(keys["w1"])
    )
    assert first.status_code == 201
    # another worker's id is a conflict, not a silently dropped "retry"
    clash = client.post(
        "/patrols", json={"patrol_id": "P1", "points": fixes(lon0=113.002)}, headers=h(keys["w2"])
    )
    assert clash.status_code == 409 and "another worker" in clash.json()["detail"]
    # the same Idempotency-Key from two workers: two patrols
    for who in ("w1", "w2"):
        r = client.post(
            "/patrols",
            json={"points": fixes(lon0=113.004)},
            headers=h(keys[who], **{"Idempotency-Key": "k"}),
        )
        assert r.status_code == 201 and r.json()["created"], (who, r.text)
    patrols = open_store(ws).read("patrols")
    assert sorted(patrols["worker_id"]) == ["W1", "W1", "W2"]
    # supervisors upload for known workers in their scope only
    unknown = client.post(
        "/patrols", json={"worker_id": "W9", "points": fixes()}, headers=h(keys["sup"])
    )
    assert unknown.status_code == 422 and "W9" in unknown.json()["detail"]
    out = client.post(
        "/patrols", json={"worker_id": "W2", "points": fixes()}, headers=h(keys["far"])
    )
    assert out.status_code == 403 and "scope" in out.json()["detail"]


def test_patrol_fixes_need_plausible_times(setup) -> None:
    ws, client, keys = setup
    points = fixes()
    points[3]["t"] = "0001-01-01T00:00:00Z"
    r = client.post("/patrols", json={"points": points}, headers=h(keys["w1"]))
    assert r.status_code == 400 and "plausible time" in r.json()["detail"], r.text
    assert "patrols" not in open_store(ws).layers()


def test_patrol_roles_and_fake_flag(setup) -> None:
    _, client, keys = setup
    r = client.post("/patrols", json={"worker_id": "W2", "points": fixes()}, headers=h(keys["w1"]))
    assert r.status_code == 403
    car = client.post("/patrols", json={"points": fixes(step=0.006)}, headers=h(keys["w1"]))
    assert car.status_code == 201
    assert car.json()["created"][0]["valid"] is False  # 35 km/h is no patrol on foot
    null_island = client.post("/patrols", json={"points": fixes(lon0=0.0)}, headers=h(keys["w1"]))
    assert null_island.status_code == 422
    assert "outside the service area" in null_island.json()["detail"]


def test_reports_without_description_or_assignee_are_no_500s(setup) -> None:
    """Missing text and missing assignees are pd.NA in the layer: the hotspot map
    draws them, and a worker's PATCH of an unassigned report is a 403, not a crash."""
    _, client, keys = setup
    body = report()
    del body["description"]
    first = client.post("/reports", json=body, headers=h(keys["sup"]))
    dup = client.post("/reports", json=body, headers=h(keys["sup"]))
    assert first.status_code == dup.status_code == 201
    assert dup.json()["properties"]["assignee_id"] is None  # a duplicate: not handed over
    page = client.get("/maps/hotspots", headers=h(keys["sup"]))
    assert page.status_code == 200, page.text
    url = f"/reports/{dup.json()['id']}"
    # a step the worker may not take: 403; one the stage does not allow: 409
    r = client.post(f"{url}/actions", json={"action": "open"}, headers=h(keys["w1"]))
    assert r.status_code == 403 and "open (立案) is for: dispatcher" in r.json()["detail"]
    r = client.patch(url, json={"status": "in_progress"}, headers=h(keys["w1"]))
    assert r.status_code == 409 and "'collected'" in r.json()["detail"], r.text


def test_an_unexpected_error_is_a_problem_without_internals(setup, monkeypatch) -> None:
    ws, _, keys = setup
    app = create_app(workspace=ws)

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.state.service.store, "read", broken)
    r = TestClient(app, raise_server_exceptions=False).get(
        "/collections/units/items", headers=h(keys["sup"])
    )
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert "secret" not in r.text and "logged" in r.json()["detail"]


def test_server_log_tells_of_reports_no_department_handles(tmp_path: Path) -> None:
    """`gridkit serve` logs the service's own messages in uvicorn's format."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    from tests.api.live import free_port

    ws, keys = field_workspace(tmp_path / "ws.gpkg")
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gridkit.cli", "serve", str(ws), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=os.environ.copy(),
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    httpx.get(f"{base}/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            r = httpx.post(
                f"{base}/reports", json=report(category="sewage"), headers=h(keys["sup"])
            )
            assert r.status_code == 201, r.text
        finally:
            proc.terminate()
            proc.wait(10)
    text = log.read_text(encoding="utf-8")
    line = next(ln for ln in text.splitlines() if "no department handles" in ln)
    assert line.startswith("WARNING:") and r.json()["id"] in line


def test_report_ids_stay_unique_when_another_process_writes(setup) -> None:
    """Another process appends a report the service has not seen yet: the service's
    next batch notices inside its transaction, starts again from the layer as it is,
    and gives the new report an id of its own."""
    import subprocess
    import sys

    ws, client, keys = setup
    first = client.post("/reports", json=report(), headers=h(keys["w1"]))
    assert first.status_code == 201
    client.app.state.service.store._next_sync = float(
        "inf"
    )  # no periodic look: the write must see it
    script = (
        "import sys, geopandas as gpd, shapely; from gridkit.store import open_store; "
        "open_store(sys.argv[1]).append('reports', gpd.GeoDataFrame({'report_id': ['R0000005'], "
        "'category': ['cctv'], 'source': ['hotline'], 'status': ['reported']}, "
        "geometry=[shapely.Point(113.004, 27.704)], crs=4326))"
    )
    subprocess.run([sys.executable, "-c", script, str(ws)], check=True)
    second = client.post("/reports", json=report(lon=INSIDE[0] + 0.003), headers=h(keys["w1"]))
    assert second.status_code == 201, second.text
    ids = open_store(ws).read("reports")["report_id"].tolist()
    assert len(ids) == len(set(ids)) and "R0000005" in ids
    assert second.json()["id"] not in (first.json()["id"], "R0000005")
    assert "idempotency_key" not in second.json()["properties"]  # bookkeeping, not served
