"""Bounded work per request (issue 19): what one caller may make the service compute or
remember is bounded by the settings, never by the calendar or the server's memory."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import api.auth
import api.patrols
from api import create_app
from tests.api.test_writes import INSIDE, field_workspace, h, report


@pytest.fixture
def field(tmp_path: Path):
    ws, keys = field_workspace(tmp_path / "ws.gpkg")
    return ws, keys


def _fixes(n: int, *, lon: float = INSIDE[0], lat: float = INSIDE[1], day: int = 1) -> list:
    """``n`` fixes a second apart walking east inside the first unit (about 0.1 m each)."""
    t0 = pd.Timestamp(f"2026-05-{day:02d}T01:00:00Z")
    return [
        {
            "lon": round(lon + k * 1e-6 % 0.004, 7),
            "lat": lat,
            "t": (t0 + pd.Timedelta(seconds=k)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        for k in range(n)
    ]


# ------------------------------------------------------------------ 1. periods


@pytest.mark.parametrize(
    "query",
    [
        "end=9669-01-09",  # took 34 s and 16 GB
        "start=2026-01-01&end=9998-01-01",
        "start=1900-01-01&end=1900-02-01",
        "start=2024-01-01&end=2026-06-01",  # 882 days: above the 731 of the settings
    ],
)
@pytest.mark.parametrize("figure", ["assessment", "compliance"])
def test_periods_are_bounded(field, figure, query) -> None:
    ws, keys = field
    client = TestClient(create_app(workspace=ws))
    r = client.get(f"/stats/{figure}?{query}", headers=h(keys["sup"]))
    assert r.status_code == 400, r.text
    assert "days" in r.json()["detail"] or "outside the dates served" in r.json()["detail"]


def test_a_period_within_the_bounds_is_served(field) -> None:
    ws, keys = field
    client = TestClient(create_app(workspace=ws, max_period_days=400))
    r = client.get("/stats/assessment?start=2026-01-01&end=2026-12-31", headers=h(keys["sup"]))
    assert r.status_code == 200, r.text
    r = client.get("/stats/assessment?start=2026-01-01&end=2027-03-01", headers=h(keys["sup"]))
    assert r.status_code == 400 and "at most 400 days" in r.json()["detail"]


# ------------------------------------------------------------------ 2. patrols


def test_oversized_patrol_uploads_are_413(field) -> None:
    ws, keys = field
    client = TestClient(create_app(workspace=ws))
    # 5 x 20,000 fixes: 201 after 196 s while every report waited on the lock
    body = orjson.dumps({"patrols": [{"points": _fixes(20_000, day=d + 1)} for d in range(5)]})
    r = client.post(
        "/patrols", content=body, headers=h(keys["w1"], **{"Content-Type": "application/json"})
    )
    assert r.status_code == 413, r.text
    assert "100000 fixes" in r.json()["detail"] and "50000" in r.json()["detail"]
    small = TestClient(create_app(workspace=ws, max_patrol_fixes=300, max_request_fixes=500))
    one = {"points": _fixes(301)}
    r = small.post("/patrols", json=one, headers=h(keys["w1"]))
    assert r.status_code == 413 and "per patrol" in r.json()["detail"]
    batch = {"patrols": [{"points": _fixes(200, day=d + 1)} for d in range(3)]}
    r = small.post("/patrols", json=batch, headers=h(keys["w1"]))
    assert r.status_code == 413 and "per request" in r.json()["detail"]
    batch = {"patrols": [{"points": _fixes(250, day=d + 1)} for d in range(2)]}
    r = small.post("/patrols", json=batch, headers=h(keys["w1"]))
    assert r.status_code == 201, r.text


def test_patrols_are_built_outside_the_writers_lock(field, monkeypatch) -> None:
    ws, keys = field
    app = create_app(workspace=ws)
    lock = app.state.service.write_lock
    held = []
    for name in ("patrols_from_points", "flag_patrols"):
        real = getattr(api.patrols, name)

        def spy(*args, _real=real, **kw):
            held.append(lock.locked())
            return _real(*args, **kw)

        monkeypatch.setattr(api.patrols, name, spy)
    client = TestClient(app)
    r = client.post("/patrols", json={"points": _fixes(2_000)}, headers=h(keys["w1"]))
    assert r.status_code == 201, r.text
    assert held == [False, False]
    # the same patrol again is recognised, whoever stored it first
    r = client.post("/patrols", json={"points": _fixes(2_000)}, headers=h(keys["w1"]))
    assert r.status_code == 200 and len(r.json()["existing"]) == 1


def test_a_report_is_answered_while_a_patrol_is_built(field, monkeypatch) -> None:
    ws, keys = field
    app = create_app(workspace=ws)
    building, release = threading.Event(), threading.Event()
    real = api.patrols.flag_patrols

    def slow(*args, **kw):  # a patrol that takes as long as the test wants
        building.set()
        release.wait(20)  # at most: the test's own deadline
        return real(*args, **kw)

    monkeypatch.setattr(api.patrols, "flag_patrols", slow)
    client = TestClient(app)
    out = {}
    upload = threading.Thread(
        target=lambda: out.setdefault(
            "patrol", client.post("/patrols", json={"points": _fixes(500)}, headers=h(keys["w1"]))
        )
    )
    upload.start()
    try:
        assert building.wait(30)
        r = client.post("/reports", json=report(), headers=h(keys["w1"]))
        assert r.status_code == 201, r.text
        assert "patrol" not in out  # committed and answered while the patrol is built
    finally:
        release.set()
        upload.join(60)
    assert out["patrol"].status_code == 201


# ------------------------------------------------------------------ 3. keys


def test_bogus_keys_cost_no_memory(field, monkeypatch) -> None:
    ws, keys = field
    app = create_app(workspace=ws, key_cache_size=3)
    client = TestClient(app)
    looked_up = []
    real = api.auth.find_key
    monkeypatch.setattr(api.auth, "find_key", lambda s, k: looked_up.append(k) or real(s, k))
    for i in range(300):  # 60 KB keys: 290 MB of RSS for 5,000 of them
        r = client.get("/collections", headers=h(f"{i:05d}" + "x" * 60_000))
        assert r.status_code == 401
    assert looked_up == [] and len(app.state.service.keys_cache) == 0
    for i in range(300):  # short bogus keys are looked up, and not remembered
        assert client.get("/collections", headers=h(f"bogus-{i}")).status_code == 401
    assert len(looked_up) == 300 and len(app.state.service.keys_cache) == 0
    for name in ("w1", "w2", "sup", "sup2", "viewer"):
        assert client.get("/collections", headers=h(keys[name])).status_code == 200
    assert len(app.state.service.keys_cache) == 3  # the three used last


# ------------------------------------------------------------------ 4. caches


def test_pages_and_figures_keep_one_version(field) -> None:
    pytest.importorskip("folium")
    ws, keys = field
    app = create_app(workspace=ws)
    service = app.state.service
    client = TestClient(app)
    for _ in range(4):  # every write followed by a map page grew RSS by 2.5 MB
        assert client.post("/reports", json=report(), headers=h(keys["w1"])).status_code == 201
        assert client.get("/maps/coverage", headers=h(keys["sup"])).status_code == 200
        assert client.get("/stats/hotspots", headers=h(keys["sup"])).status_code == 200
        assert len(service.page_cache) == 1 and len(service.stats_cache) == 1


def test_figures_for_many_periods_are_bounded(field) -> None:
    ws, keys = field
    app = create_app(workspace=ws, figure_cache_size=5)
    client = TestClient(app)
    for day in range(1, 21):
        r = client.get(
            f"/stats/assessment?start=2026-01-{day:02d}&end=2026-02-01", headers=h(keys["sup"])
        )
        assert r.status_code == 200, r.text
    assert len(app.state.service.stats_cache) == 5


# ------------------------------------------------------------------ 6. validation errors


def test_validation_errors_are_capped(field) -> None:
    ws, keys = field
    client = TestClient(create_app(workspace=ws))
    body = report(**{f"unknown_{i}": i for i in range(100_000)})  # ~2.5 MB
    r = client.post("/reports", json=body, headers=h(keys["w1"]))
    assert r.status_code == 400
    assert len(r.content) < 4_000, len(r.content)  # was 41 MB for 400,000 keys
    problem = r.json()
    assert problem["detail"].count("unknown_") == 20
    # each unknown key is an error of both body forms (flat JSON and Feature)
    assert problem["errors"] >= 100_000
    assert f"{problem['errors'] - 20} more error(s)" in problem["detail"]


# ------------------------------------------------------------------ 8. headers


def test_every_response_says_nosniff_and_no_framing(field) -> None:
    ws, keys = field
    client = TestClient(create_app(workspace=ws))
    for path, key in [
        ("/healthz", None),
        ("/collections", keys["viewer"]),
        ("/collections/nope", keys["viewer"]),
        ("/collections", None),  # 401
        ("/openapi.json", None),
        ("/docs", None),
    ]:
        r = client.get(path, headers=h(key) if key else {})
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY", path
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp, path
        if r.headers["content-type"].startswith("text/html"):
            assert "script-src 'self' 'unsafe-inline'" in csp and "connect-src 'self'" in csp
        else:
            assert csp.startswith("default-src 'none'"), path


def test_the_writers_lock_is_the_workspaces(field, tmp_path) -> None:
    """Services over one workspace take turns on one lock (however its path is
    spelt); a service over another workspace never waits on it."""
    ws, _ = field
    a = create_app(workspace=ws).state.service
    b = create_app(workspace=Path(ws).parent / ".." / Path(ws).parent.name / Path(ws).name)
    other_ws, _ = field_workspace(tmp_path / "other.gpkg")
    c = create_app(workspace=other_ws).state.service
    assert a.write_lock is b.state.service.write_lock
    assert c.write_lock is not a.write_lock
    with a.write_lock:  # a write under way on the first workspace
        assert c.write_lock.acquire(timeout=1)  # the other's writer goes ahead
        c.write_lock.release()
