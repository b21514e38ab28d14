"""Evidence photos (issue 19, items 8 and 11): only decoded images count, uploads are
idempotent and listed, photos are served scoped as their report, and the case
history is a collection."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import create_app
from gridkit.store import open_store
from tests.api.test_writes import field_workspace, h, report

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402


def jpeg(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def png(color: tuple[int, int, int] = (20, 120, 220)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buf, "PNG")
    return buf.getvalue()


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A small PNG declaring 900 M pixels (all zeros, compressed to a few hundred kB)."""
    head = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey
    raw = zlib.compress(b"\x00" * ((width // 8 + 1) * 64), 9)  # only the first rows

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


@pytest.fixture
def setup(tmp_path: Path):
    ws, keys = field_workspace(tmp_path / "ws.gpkg")
    return ws, TestClient(create_app(workspace=ws)), keys


def upload(client, rid, key, data, kind="after", name="p.jpg", mime="image/jpeg", **extra):
    headers = h(key, **extra.pop("headers", {}))
    return client.post(
        f"/reports/{rid}/evidence",
        files={"photo": (name, data, mime)},
        data={"kind": kind, **extra},
        headers=headers,
    )


def new_case(client, keys, **kw) -> str:
    r = client.post("/reports", json=report(**kw), headers=h(keys["w1"]))
    assert r.status_code == 201, r.text
    return r.json()["id"]


# ------------------------------------------------------------------ item 8: decoded images


def test_photos_that_do_not_decode_are_422(setup) -> None:
    _, client, keys = setup
    rid = new_case(client, keys)
    good = jpeg()
    forged = {
        "jpeg header then garbage": good[:200] + b"\x00garbage" * 300,
        "truncated jpeg": good[: len(good) // 2],
        "jpeg then zip (polyglot)": good + b"PK\x03\x04" + b"\x00" * 26 + b"payload.html",
        "jpeg then html (polyglot)": good + b"<html><script>alert(1)</script></html>",
        "png bomb": png_bomb(),
    }
    for what, data in forged.items():
        r = upload(client, rid, keys["w1"], data)
        assert r.status_code == 422, (what, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    # script in the metadata of a photo that decodes is refused too
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "JPEG", comment=b"<script>alert(1)</script>")
    assert upload(client, rid, keys["w1"], buf.getvalue()).status_code == 422
    # something that is no image at all stays a 415; real photos pass
    assert upload(client, rid, keys["w1"], b"MZ" + b"\x00" * 100).status_code == 415
    assert upload(client, rid, keys["w1"], good).status_code == 201
    ok = upload(client, rid, keys["w1"], png(), name="p.png", mime="image/png")
    assert ok.status_code == 201 and ok.json()["name"].endswith(".png")
    assert ok.json()["media_type"] == "image/png" and ok.json()["width"] == 32


def test_the_format_is_read_from_the_image_not_the_name(setup) -> None:
    _, client, keys = setup
    rid = new_case(client, keys)
    r = upload(client, rid, keys["w1"], png(), name="x.jpg", mime="image/jpeg")
    assert r.status_code == 201 and r.json()["name"].endswith(".png")


# ------------------------------------------------------------------ item 11: real evidence


def test_typed_evidence_never_uploaded_resolves_nothing(setup) -> None:
    _, client, keys = setup
    rid = new_case(client, keys, category="road_damage")  # needs before and after photos
    act = f"/reports/{rid}/actions"
    # road damage waits for the centre: opened and dispatched to D1 by the dispatcher
    for step in ("open", "dispatch"):
        r = client.post(act, json={"action": step}, headers=h(keys["disp"]))
        assert r.status_code == 200, r.text
    assert client.post(act, json={"action": "accept"}, headers=h(keys["d1"])).status_code == 200
    typed = {"action": "report_back", "evidence": "before:x.jpg;after:y.jpg"}
    r = client.post(act, json=typed, headers=h(keys["d1"]))
    assert r.status_code == 409 and "never uploaded" in r.json()["detail"], r.text
    # one photo received is not both
    assert upload(client, rid, keys["d1"], jpeg(), kind="before").status_code == 201
    r = client.post(act, json={"action": "report_back"}, headers=h(keys["d1"]))
    assert r.status_code == 409 and "lacks after evidence" in r.json()["detail"], r.text
    # the kind comes from the form field: an 'after' photo completes it
    after = upload(client, rid, keys["d1"], jpeg((0, 200, 0)), kind="after")
    assert after.status_code == 201 and after.json()["evidence"].startswith("after:")
    r = client.post(act, json={"action": "report_back"}, headers=h(keys["d1"]))
    assert r.status_code == 200, r.text
    p = r.json()["properties"]
    assert p["status"] == "reported_back"
    # the evidence is what was received, each photo once
    assert sorted(p["evidence"].split(";")) == sorted(
        ["before:" + _names(client, rid, keys)[0], after.json()["evidence"]]
    )


def _names(client, rid, keys) -> list[str]:
    listed = client.get(f"/reports/{rid}/evidence", headers=h(keys["sup"])).json()["evidence"]
    return [e["name"] for e in listed]


def test_the_kind_form_field_is_kept(setup) -> None:
    ws, client, keys = setup
    rid = new_case(client, keys)
    r = upload(
        client,
        rid,
        keys["w1"],
        jpeg(),
        kind="before",
        taken_at="2026-05-01T08:00:00+08:00",
        lon="113.004",
        lat="27.704",
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["kind"] == "before" and body["evidence"] == f"before:{body['name']}"
    assert body["lon"] == pytest.approx(113.004) and body["taken_at"].startswith("2026-05-01T")
    stored = open_store(ws).read("report_evidence")
    assert stored[["report_id", "kind"]].values.tolist() == [[rid, "before"]]
    # kind in the URL (older clients) still works; a contradiction is a 400
    old = client.post(
        f"/reports/{rid}/evidence?kind=before",
        files={"photo": ("p.jpg", jpeg((1, 2, 3)), "image/jpeg")},
        headers=h(keys["w1"]),
    )
    assert old.status_code == 201 and old.json()["kind"] == "before"
    both = client.post(
        f"/reports/{rid}/evidence?kind=before",
        files={"photo": ("p.jpg", jpeg((4, 5, 6)), "image/jpeg")},
        data={"kind": "after"},
        headers=h(keys["w1"]),
    )
    assert both.status_code == 400
    bad = upload(client, rid, keys["w1"], jpeg(), kind="during")
    assert bad.status_code == 400


def test_uploads_are_idempotent(setup) -> None:
    ws, client, keys = setup
    rid = new_case(client, keys)
    key = {"Idempotency-Key": "cam-7"}
    a = upload(client, rid, keys["w1"], jpeg(), headers=key)
    b = upload(client, rid, keys["w1"], jpeg(), headers=key)
    assert a.status_code == b.status_code == 201
    assert a.json()["name"] == b.json()["name"] and b.headers.get("idempotent-replay") == "true"
    # the same photo sent again without a key is not stored twice either
    c = upload(client, rid, keys["w1"], jpeg())
    assert c.headers.get("idempotent-replay") == "true"
    # the key reused for another photo is refused
    d = upload(client, rid, keys["w1"], jpeg((0, 0, 255)), headers=key)
    assert d.status_code == 422 and "another photo" in d.json()["detail"]
    assert len(open_store(ws).read("report_evidence")) == 1


def test_supervisors_view_evidence_scoped_as_the_report(setup) -> None:
    _, client, keys = setup
    rid = new_case(client, keys)
    photo = jpeg()
    name = upload(client, rid, keys["w1"], photo, kind="before").json()["name"]
    listing = client.get(f"/reports/{rid}/evidence", headers=h(keys["sup"]))
    assert listing.status_code == 200, listing.text
    items = listing.json()["evidence"]
    assert [(i["name"], i["kind"], i["uploaded_by"]) for i in items] == [(name, "before", "W1")]
    assert "idempotency_key" not in items[0]
    got = client.get(items[0]["href"], headers=h(keys["sup"]))
    assert got.status_code == 200 and got.content == photo
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["x-content-type-options"] == "nosniff"
    # out of scope: not visible; viewers do not see photos; unknown names are 404
    assert client.get(f"/reports/{rid}/evidence", headers=h(keys["far"])).status_code == 404
    assert client.get(items[0]["href"], headers=h(keys["far"])).status_code == 404
    assert client.get(items[0]["href"], headers=h(keys["viewer"])).status_code == 403
    for bad in ("..%2F..%2Fws.gpkg", "..", "0" * 32 + ".jpg", "x.jpg"):
        got = client.get(f"/reports/{rid}/evidence/{bad}", headers=h(keys["sup"]))
        assert got.status_code in (404, 405) and not got.content.startswith(b"SQLite"), bad


def test_case_history_is_a_scoped_collection(setup) -> None:
    _, client, keys = setup
    rid = new_case(client, keys)
    url = "/collections/report_events/items"
    r = client.get(url, params={"limit": 1000}, headers=h(keys["sup"]))
    assert r.status_code == 200, r.text
    mine = [f["properties"] for f in r.json()["features"] if f["properties"]["report_id"] == rid]
    assert [e["to_status"] for e in mine] == ["collected", "opened", "dispatched"]
    assert [e["action"] for e in mine] == ["collect", "open", "dispatch"]
    # a supervisor of another district sees none of this district's history
    far = client.get(url, params={"limit": 1000}, headers=h(keys["far"]))
    assert far.status_code == 200 and far.json()["numberMatched"] == 0
    listed = client.get("/collections", headers=h(keys["sup"])).json()["collections"]
    assert "report_events" in [c["id"] for c in listed]
