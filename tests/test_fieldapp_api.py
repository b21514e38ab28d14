"""The field app's server side (issue 23): evidence naming its report by the client's
Idempotency-Key, the app shell and its data routes, TLS options and key QR codes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api import create_app
from gridkit.cli import main
from gridkit.io import write_layer
from gridkit.store import issue_key
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


def test_shell_is_served_with_its_manifest_and_service_worker(setup) -> None:
    _, client, _ = setup
    page = client.get("/app/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="/app/app.js"' in page.text and 'rel="manifest"' in page.text
    assert "<style>" in page.text and 'href="/app/app.css"' not in page.text  # one trip less
    assert page.headers["content-encoding"] == "gzip"  # compressed as served, no proxy needed
    plain = client.get("/app/app.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and "function sync()" in plain.text
    assert client.get("/app", follow_redirects=False).headers["location"] == "/app/"
    manifest = client.get("/app/manifest.webmanifest").json()
    assert manifest["start_url"] == "/app/" and manifest["display"] == "standalone"
    sw = client.get("/app/sw.js")
    # the worker's own policy: it may fetch from this app (not the data answers' sandbox)
    assert sw.headers["content-security-policy"].startswith("default-src 'self'")
    assert "sandbox" not in sw.headers["content-security-policy"]
    assert client.get("/app/../api/app.py").status_code == 404
    assert client.get("/app/secret.py").status_code == 404


def test_me_tells_the_app_who_signed_in_and_the_categories(setup) -> None:
    _, client, keys = setup
    assert client.get("/app/api/me").status_code == 401
    me = client.get("/app/api/me", headers=h(keys["w1"])).json()
    assert (me["name"], me["role"], me["worker_id"]) == ("张三", "worker", "W1")
    labels = {c["key"]: c["label_zh"] for c in me["categories"]}
    assert labels["street_light"] == "路灯损坏" and labels["sand_mining"] == "非法采砂"
    assert client.get("/app/api/me", headers=h(keys["viewer"])).status_code == 403


def test_the_checklist_is_a_chiefs(setup) -> None:
    """A river chief (sections in river_chiefs) gets the 看/查/交 checklist of the patrol
    rules; a grid worker does not."""
    ws, client, keys = setup
    chief = {"chief_id": ["RC2"], "worker_id": ["W2"], "level": ["village"]}
    write_layer(
        pd.DataFrame({**chief, "river_id": ["R1"], "admin_code": ["430203001001"]}),
        ws,
        "river_chiefs",
    )
    items = TestClient(create_app(workspace=ws)).get(
        "/app/api/me", headers=h(keys["w2"])
    )  # a fresh service: the layer was written beside the first
    checklist = items.json()["checklist"]
    assert [i["step"] for i in checklist].count("look") == 4 and len(checklist) == 15
    assert {"key", "zh", "en", "category"} <= set(checklist[0])
    assert client.get("/app/api/me", headers=h(keys["w1"])).json()["checklist"] == []


def test_area_holds_the_workers_units_first_and_their_neighbours(setup) -> None:
    _, client, keys = setup
    fc = client.get("/app/api/area", headers=h(keys["w1"])).json()
    ids = [f["id"] for f in fc["features"]]
    assert ids[0] == "430202001001-000" and fc["features"][0]["properties"]["mine"] is True
    assert not any(f["properties"]["mine"] for f in fc["features"][1:])
    # only units of the worker's own admin areas
    assert {f["properties"]["admin_code"] for f in fc["features"]} == {
        fc["features"][0]["properties"]["admin_code"]
    }
    far = client.get("/app/api/area", headers=h(keys["far"])).json()
    assert all(f["properties"]["admin_code"].startswith("430281") for f in far["features"])


def _staff(ws: Path, client: TestClient) -> str:
    """A person on the staff of department D1 (the staff layer), and their key."""
    write_layer(
        pd.DataFrame(
            {"worker_id": ["W7"], "post": ["department"], "admin_code": ["430202"],
             "department_id": ["D1"]}
        ),
        ws,
        "staff",
    )  # fmt: skip
    return issue_key(client.app.state.service.store, "刘工", role="worker", worker_id="W7")[0]


def test_my_cases_are_mine_overdue_first(setup) -> None:
    _, client, keys = setup
    # W1's unit: W1 verifies it, whoever reported; routed to D1
    first = client.post("/reports", json=report(), headers=h(keys["w1"])).json()["id"]
    second = client.post(
        "/reports", json=report(category="road_damage"), headers=h(keys["w2"])
    ).json()["id"]
    store = client.app.state.service.store  # the app sees its own writes at once
    reports = store.read("reports")
    now = pd.Timestamp.now(tz="UTC").floor("s")
    hours = (reports["report_id"] == second).map({True: -5, False: 5})
    reports["due_at"] = now + pd.to_timedelta(hours, unit="h")
    store.save_layer("reports", reports)
    listed = client.get("/app/api/cases", headers=h(keys["w1"])).json()
    assert [c["report_id"] for c in listed["cases"]] == [second, first]
    assert [c["overdue"] for c in listed["cases"]] == [True, False]
    case = listed["cases"][1]
    assert case["category"] == "street_light" and "reporter_contact" not in case
    assert {"overdue", "actions", "lon", "lat", "due_at"} <= set(case)
    # W2 reported the second one: his to follow (no step of his), the first is not his
    theirs = client.get("/app/api/cases", headers=h(keys["w2"])).json()
    assert [(c["report_id"], c["actions"]) for c in theirs["cases"]] == [(second, [])]
    assert client.get("/app/api/cases?limit=0", headers=h(keys["w1"])).status_code == 400
    assert client.get("/app/api/cases", headers=h(keys["viewer"])).status_code == 403


def _steps(client: TestClient, key: str, rid: str) -> list[str]:
    cases = client.get("/app/api/cases", headers=h(key)).json()["cases"]
    return [a["action"] for c in cases if c["report_id"] == rid for a in c["actions"]]


def test_my_cases_offer_the_steps_each_person_may_take_now(setup) -> None:
    """The department's staff accept and report back, the unit's grid worker verifies,
    the centre closes: each sees the case with their own steps at each stage, and a
    step offered is a step the server takes."""
    ws, client, keys = setup
    staff = _staff(ws, client)
    rid = client.post("/reports", json=report(), headers=h(keys["w1"])).json()["id"]
    assert "accept" in _steps(client, staff, rid) and "verify" not in _steps(client, staff, rid)
    assert _steps(client, keys["w1"], rid) == []  # dispatched: nothing for the grid worker
    for who, step in (("staff", "accept"), ("staff", "report_back"), ("w1", "verify")):
        key = staff if who == "staff" else keys[who]
        assert step in _steps(client, key, rid), (who, step)
        if step == "report_back":
            assert upload(client, rid, key, jpeg(), kind="after").status_code == 201
        r = client.post(f"/reports/{rid}/actions", json={"action": step}, headers=h(key))
        assert r.status_code == 200, r.text
    assert _steps(client, keys["w1"], rid) == [] and _steps(client, keys["sup"], rid) == ["close"]


def _qr_matrix(path: Path, scale: int = 8, border: int = 4) -> list[list[bool]]:
    from PIL import Image

    img = Image.open(path).convert("L")
    n = img.width // scale - 2 * border
    return [
        [
            img.getpixel(((border + x) * scale + scale // 2, (border + y) * scale + scale // 2))
            < 128
            for x in range(n)
        ]
        for y in range(n)
    ]


def test_keys_add_qr_saves_the_key_or_an_app_link(tmp_path: Path, capsys) -> None:
    segno = pytest.importorskip("segno")
    ws, _ = field_workspace(tmp_path / "ws.gpkg")
    png = tmp_path / "w1.png"
    args = ["keys", "add", "张三", "--role", "worker", "--worker-id", "W1", "-w", str(ws)]
    link = "https://grid.example.cn/app/"
    assert main([*args, "--qr", "--qr-file", str(png), "--app-url", link]) == 0
    out, err = capsys.readouterr()
    secret = out.strip().splitlines()[-1]  # standard output: the key alone
    assert secret.startswith("gk_") and "QR code saved" in err
    assert "▀" in err or "█" in err  # drawn in the terminal, on standard error
    expected = segno.make(f"{link}#key={secret}", error="m")
    assert _qr_matrix(png) == [[bool(v) for v in row] for row in expected.matrix]
    assert main([*args, "--qr-file", str(tmp_path / "w1.gif")]) == 1
    assert ".png or .svg" in capsys.readouterr().err


def test_serve_refuses_half_a_tls_setup(tmp_path: Path, capsys) -> None:
    ws, _ = field_workspace(tmp_path / "ws.gpkg")
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate")
    assert main(["serve", str(ws), "--ssl-certfile", str(cert)]) == 1
    assert "--ssl-keyfile" in capsys.readouterr().err
    assert main(["serve", str(ws), "--ssl-certfile", str(cert), "--ssl-keyfile", str(cert)]) == 1
    assert "not a certificate and its private key" in capsys.readouterr().err
