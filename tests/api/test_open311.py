"""Open311 GeoReport v2 (issue 22 items 1 and 2): every endpoint in JSON and XML, checked
with a real client library from PyPI (``georeport``) where it covers the call, and with
request/response pairs recorded from the GeoReport v2 specification for the rest
(POST requests and tokens, which the client does not implement)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import pandas as pd
import pytest
import shapely

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from api import create_app
from api.open311 import Limits, Window
from gridkit.store import create_store, issue_key, open_store
from tests.api.live import live_server

PHONE = "13912345678"
EMAIL = "zhang@example.cn"

# --- recorded from the GeoReport v2 specification (wiki.open311.org/GeoReport_v2) ---
# GET services: one service object of the spec's example answer
SPEC_SERVICE = {
    "service_code": "001",
    "service_name": "Cans left out 24x7",
    "description": "Garbage or recycling cans that have been left out for more than 24 "
    "hours after collection. Violators will be cited.",
    "metadata": True,
    "type": "realtime",
    "keywords": "lorem, ipsum, dolor",
    "group": "sanitation",
}
# POST requests: the spec's example request (form fields) and its answer
SPEC_POST_FIELDS = {
    "api_key": None,  # the spec's "xyz": here anonymous unless a test sets a key
    "jurisdiction_id": "city.gov",
    "service_code": "001",
    "lat": "37.76524078",
    "long": "-122.4212043",
    "address_string": "1234 5th street",
    "email": "smit222@sfgov.edu",
    "device_id": "tt222111",
    "account_id": "123456",
    "first_name": "john",
    "last_name": "smith",
    "phone": "111111111",
    "description": "A large sinkhole is destroying the street",
    "media_url": "http://farm3.static.flickr.com/2002/2212426634_5ed477a060.jpg",
}
SPEC_POST_ANSWER_KEYS = {"service_request_id", "service_notice", "account_id"}
SPEC_POST_ANSWER_XML = (
    '<?xml version="1.0" encoding="utf-8"?><service_requests><request>'
    "<service_request_id>293944</service_request_id><service_notice>The City will inspect "
    "and require the responsible party to correct within 24 hours and/or issue a Correction "
    "Notice or Notice of Violation of the Public Works Code</service_notice><account_id/>"
    "</request></service_requests>"
)
# GET requests: the keys of a service request in the spec's example answer
SPEC_REQUEST_KEYS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}
# GET tokens: the spec's answer
SPEC_TOKEN_ANSWER = [{"service_request_id": 12, "token": "12345"}]
# errors: the spec's error answer
SPEC_ERROR = [{"code": 403, "description": "Invalid api_key"}]


def make_workspace(path: Path) -> Path:
    """Two communities side by side (西塘社区 west, 北坪社区 east), a 10 x 10 grid."""
    xs, ys = np.meshgrid(np.arange(10), np.arange(10))
    xs, ys = xs.ravel(), ys.ravel()
    x0, y0 = 113.10 + xs * 0.002, 27.80 + ys * 0.002
    west = xs < 5
    village = np.where(west, "430202001001", "430203001001")
    units = gpd.GeoDataFrame(
        {
            "unit_id": [f"{v}-C01-{i:03d}" for i, v in enumerate(village)],
            "kind": "community_grid",
            "parent_id": np.where(west, "C-W", "C-E"),
            "admin_code": village,
            "households": 120,
        },
        geometry=shapely.box(x0, y0, x0 + 0.002, y0 + 0.002),
        crs=4326,
    )
    w_box, e_box = (
        shapely.box(113.10, 27.80, 113.11, 27.82),
        shapely.box(113.11, 27.80, 113.12, 27.82),
    )
    admin = gpd.GeoDataFrame(
        {
            "admin_code": [
                "430202",
                "430202001",
                "430202001001",
                "430203",
                "430203001",
                "430203001001",
            ],
            "name": ["荷塘区", "桂花街道", "西塘社区", "芦淞区", "建设街道", "北坪社区"],
            "level": ["county", "township", "village", "county", "township", "village"],
            "parent_code": ["430200", "430202", "430202001", "430200", "430203", "430203001"],
        },
        geometry=[w_box, w_box, w_box, e_box, e_box, e_box],
        crs=4326,
    )
    departments = pd.DataFrame(
        {
            "department_id": ["D1"],
            "name": ["荷塘区城管局"],
            "admin_code": ["430202"],
            "categories": ["street_light;road_damage;sewage"],
        }
    )
    create_store(path, {"units": units, "admin_areas": admin, "departments": departments})
    return path


@pytest.fixture
def ws(tmp_path) -> Path:
    return make_workspace(tmp_path / "ws.gpkg")


@pytest.fixture
def app(ws):
    return create_app(workspace=ws)


@pytest.fixture
def client(app) -> TestClient:
    return TestClient(app)


def post(client, fmt="json", headers=None, **fields):
    data = {
        "service_code": "street_light",
        "lat": "27.805",
        "long": "113.105",
        "description": "西塘社区3栋门口路灯不亮",
        "phone": PHONE,
        "email": EMAIL,
        "first_name": "三",
        "last_name": "张",
    }
    data.update({k: v for k, v in fields.items()})
    data = {k: v for k, v in data.items() if v is not None}
    return client.post(f"/open311/v2/requests.{fmt}", data=data, headers=headers)


@pytest.fixture
def georeport_client(client, monkeypatch):
    """The ``georeport`` client (PyPI) talking to the app in-process: its ``requests``
    calls are answered by the ASGI app through a transport adapter."""
    georeport = pytest.importorskip("georeport")
    requests = pytest.importorskip("requests")

    class ASGIAdapter(requests.adapters.BaseAdapter):
        def send(self, request, **kwargs):
            r = client.request(
                request.method, request.url, headers=dict(request.headers), content=request.body
            )
            resp = requests.Response()
            resp.status_code = r.status_code
            resp._content = r.content
            resp.headers = requests.structures.CaseInsensitiveDict(r.headers)
            resp.url = request.url
            resp.request = request
            resp.encoding = "utf-8"
            return resp

        def close(self):
            pass

    adapter = ASGIAdapter()
    monkeypatch.setattr(requests.Session, "get_adapter", lambda self, url: adapter)
    return lambda fmt="json": georeport.GeoReport(
        "http://testserver/open311/v2", jurisdiction="zhuzhou.gov.cn", output_format=fmt
    )


# ---------------------------------------------------------------------- services


def test_services_json_and_xml_through_the_client(georeport_client):
    got = georeport_client("json").get_service_list()
    codes = [s["service_code"] for s in got]
    assert "street_light" in codes and "floating_garbage" in codes
    light = next(s for s in got if s["service_code"] == "street_light")
    assert set(light) == set(SPEC_SERVICE)
    assert light["service_name"] == "路灯损坏" and light["type"] == "realtime"
    assert light["metadata"] is False and light["group"] == "community"
    xml = georeport_client("xml").get_service_list()
    assert [s["service_code"] for s in xml] == codes
    assert next(s for s in xml if s["service_code"] == "street_light")["metadata"] == "false"


def test_service_definition_and_unknown_code(client, georeport_client):
    d = georeport_client("json").get_service_definition("street_light")
    assert d == {"service_code": "street_light", "attributes": []}
    x = georeport_client("xml").get_service_definition("street_light")
    assert x["service_code"] == "street_light"
    r = client.get("/open311/v2/services/ufo.json")
    assert r.status_code == 404
    assert set(r.json()[0]) == set(SPEC_ERROR[0]) and r.json()[0]["code"] == 404
    r = client.get("/open311/v2/services/ufo.xml")
    root = ET.fromstring(r.content)
    assert root.tag == "errors" and root.find("error/code").text == "404"
    assert client.get("/open311/v2/services.csv").status_code == 404


# ---------------------------------------------------------------------- POST and reads


def test_anonymous_post_answers_like_the_spec_and_waits_for_moderation(client, ws):
    r = post(client)
    assert r.status_code == 201, r.text
    body = r.json()
    assert isinstance(body, list) and len(body) == 1
    assert SPEC_POST_ANSWER_KEYS <= set(body[0]) and body[0]["token"]
    assert PHONE not in r.text and EMAIL not in r.text and "张" not in r.text
    reports = open_store(ws).read("reports")
    row = reports.iloc[-1]
    assert row["report_id"] == body[0]["service_request_id"]
    # the first stage: awaiting 立案 (collected; "reported" before the stage change)
    assert row["status"] in ("collected", "reported")
    assert pd.isna(row["lead_department_id"])  # not handed over before 立案
    assert PHONE in row["reporter_contact"] and row["source"] == "resident"
    assert row["unit_id"].startswith("430202001001") and row["channel"] == "open311"


def test_post_xml_answer_has_the_spec_shape(client):
    r = post(client, fmt="xml")
    assert r.status_code == 201
    assert r.headers["content-type"].startswith("text/xml")
    ours, spec = ET.fromstring(r.content), ET.fromstring(SPEC_POST_ANSWER_XML)
    assert ours.tag == spec.tag == "service_requests"
    assert {c.tag for c in spec.find("request")} <= {c.tag for c in ours.find("request")}


def test_awaiting_request_by_id_and_token_never_shows_the_contact(client, georeport_client):
    body = post(client).json()[0]
    rid, token = body["service_request_id"], body["token"]
    one = georeport_client("json").get_service_request(rid)
    assert set(one) == SPEC_REQUEST_KEYS
    assert one["status"] == "open" and "等待中心立案" in one["status_notes"]
    assert one["description"] is None  # unmoderated text is not published by id
    xml = georeport_client("xml").get_service_request(rid)
    assert xml["status"] == "open" and xml["service_request_id"] == rid
    own = client.get(f"/open311/v2/requests/{rid}.json", params={"token": token}).json()[0]
    assert own["description"] == "西塘社区3栋门口路灯不亮"
    t = client.get(f"/open311/v2/tokens/{token}.json")
    assert t.status_code == 200
    assert set(SPEC_TOKEN_ANSWER[0]) <= set(t.json()[0])
    assert t.json()[0]["service_request_id"] == rid and t.json()[0]["status"] == "open"
    tx = ET.fromstring(client.get(f"/open311/v2/tokens/{token}.xml").content)
    assert tx.find("request/service_request_id").text == rid
    assert client.get("/open311/v2/tokens/not-a-token.json").status_code == 404
    listed = georeport_client("json").get_service_requests()
    assert rid not in [x["service_request_id"] for x in listed]  # not before 立案
    texts = [
        client.get(f"/open311/v2/requests/{rid}.json").text,
        client.get(f"/open311/v2/requests/{rid}.xml").text,
        client.get(f"/open311/v2/requests/{rid}.json", params={"token": token}).text,
        t.text,
    ]
    assert not any(PHONE in x or EMAIL in x for x in texts)


def test_moderated_request_is_listed_with_agency_and_deadline(client, ws, georeport_client):
    rid = post(client).json()[0]["service_request_id"]
    store = open_store(ws)
    store.update(
        "reports",
        "report_id",
        rid,
        {
            "status": "handling",
            "lead_department_id": "D1",
            "due_at": pd.Timestamp("2031-05-04T09:00Z"),
        },
    )
    listed = georeport_client("json").get_service_requests(status="open")
    mine = next(x for x in listed if x["service_request_id"] == rid)
    assert mine["agency_responsible"] == "荷塘区城管局"
    assert mine["expected_datetime"] == "2031-05-04T17:00:00+08:00"
    assert mine["description"] == "西塘社区3栋门口路灯不亮"
    assert abs(mine["lat"] - 27.805) < 1e-6 and abs(mine["long"] - 113.105) < 1e-6
    assert georeport_client("json").get_service_requests(status="closed") == []
    xml = georeport_client("xml").get_service_requests(service_request_id=rid)
    assert xml["agency_responsible"] == "荷塘区城管局"
    r = client.get("/open311/v2/requests.json", params={"status": "pending"})
    assert r.status_code == 400 and "open or closed" in r.json()[0]["description"]
    r = client.get(
        "/open311/v2/requests.json",
        params={"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
    )
    assert r.status_code == 400 and "at most 90" in r.json()[0]["description"]


def test_spec_example_post_with_our_place(client, ws):
    """The spec's example request, with a category and a place of this workspace: every
    field taken (contacts private), answered in the spec's shape."""
    fields = dict(SPEC_POST_FIELDS, service_code="road_damage", lat="27.815", long="113.115")
    r = client.post("/open311/v2/requests.json", data={k: v for k, v in fields.items() if v})
    assert r.status_code == 201, r.text
    assert "smit222" not in r.text and "111111111" not in r.text
    row = open_store(ws).read("reports").iloc[-1]
    assert row["media_url"] == SPEC_POST_FIELDS["media_url"]
    assert row["address"] == "1234 5th street"
    assert "smit222@sfgov.edu" in row["reporter_contact"]
    assert row["admin_code"] == "430203001001"


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"service_code": None}, 400, "service_code is required"),
        ({"service_code": "ufo"}, 404, "ufo"),
        ({"long": None}, 400, "both lat and long"),
        ({"lat": "north"}, 400, "must be a number"),
        ({"lat": "30.0", "long": "120.0"}, 400, "outside"),
        ({"media_url": "javascript:alert(1)"}, 400, "http(s)"),
        ({"attribute[pole]": "A12"}, 400, "no attribute 'pole'"),
        ({"lat": None, "long": None}, 400, "address_string"),
    ],
)
def test_bad_requests_answer_in_georeport_errors(client, fields, status, words):
    r = post(client, **fields)
    assert r.status_code == status, r.text
    err = r.json()[0]
    assert set(err) == set(SPEC_ERROR[0]) and err["code"] == status
    assert words in err["description"]


def test_address_only_request_is_placed_by_the_gazetteer(client, ws):
    r = post(client, lat=None, long=None, address_string="芦淞区建设街道北坪社区5栋")
    assert r.status_code == 201, r.text
    row = open_store(ws).read("reports").iloc[-1]
    assert row["admin_code"] == "430203001001" and row["place_confidence"] >= 0.7
    r = post(client, lat=None, long=None, address_string="人民路口")
    assert r.status_code == 400 and "lat and long" in r.json()[0]["description"]


# ---------------------------------------------------------------------- access and limits


def test_rate_limited_per_client(app, client):
    app.state.open311_limits = Limits(per_client=Window(3, 60.0), per_area=Window(100, 60.0))
    assert [post(client).status_code for _ in range(3)] == [201, 201, 201]
    r = post(client)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.json()[0]["code"] == 429


def test_rate_limited_per_area(app, ws):
    app.state.open311_limits = Limits(per_client=Window(100, 60.0), per_area=Window(2, 60.0))
    client = TestClient(app)
    assert [post(client).status_code for _ in range(2)] == [201, 201]
    assert post(client).status_code == 429  # a third in 桂花街道
    assert post(client, long="113.115").status_code == 201  # 建设街道 is another area
    n = len(open_store(ws).read("reports"))
    assert n == 3  # the refused one was not stored


def test_trusted_client_is_not_rate_limited(app, ws):
    app.state.open311_limits = Limits(per_client=Window(1, 60.0), per_area=Window(1, 60.0))
    key, _ = issue_key(open_store(ws), "fixmystreet-bridge", role="supervisor")
    client = TestClient(app)
    assert [post(client, api_key=key).status_code for _ in range(3)] == [201] * 3
    assert post(client, api_key="wrong").status_code == 403


def test_window_memory_is_bounded():
    w = Window(2, 60.0, max_keys=5)
    for i in range(1000):
        w.hit(f"10.0.{i // 256}.{i % 256}", now=float(i))
    assert len(w.seen) == 5 and all(len(d) <= 2 for d in w.seen.values())
    assert w.hit("a", now=0.0) is None and w.hit("a", now=1.0) is None
    assert w.hit("a", now=2.0) == pytest.approx(58.0)
    assert w.hit("a", now=61.0) is None  # the window moved on


def test_public_intake_off(ws):
    key, _ = issue_key(open_store(ws), "hotline-bridge", role="supervisor")
    client = TestClient(create_app(workspace=ws, public_intake=False))
    r = post(client)
    assert r.status_code == 403 and "api_key" in r.json()[0]["description"]
    assert client.get("/open311/v2/requests.json").status_code == 403
    assert post(client, api_key=key).status_code == 201
    assert client.get("/open311/v2/requests.json", params={"api_key": key}).status_code == 200


def test_contact_private_in_the_features_api(client, ws):
    post(client)
    store = open_store(ws)
    viewer, _ = issue_key(store, "viewer", role="viewer")
    sup, _ = issue_key(store, "sup", role="supervisor")
    seen = client.get("/collections/reports/items", headers={"X-API-Key": viewer}).text
    assert PHONE not in seen and EMAIL not in seen
    assert PHONE in client.get("/collections/reports/items", headers={"X-API-Key": sup}).text


def _live_posts(url: str, forwarded: list[str]) -> list[int]:
    """Anonymous Open311 requests to a real server, each as if a proxy on this machine
    had forwarded it for the given client address."""
    with httpx.Client(base_url=url, timeout=30) as c:
        return [
            post(c, description=f"西塘社区路灯不亮 {i}", headers={"X-Forwarded-For": ip})
            for i, ip in enumerate(forwarded)
        ]


def test_behind_a_proxy_each_resident_has_their_own_limit(ws):
    # nginx on the same machine forwards every resident from 127.0.0.1: the per-client
    # limit (10 an hour) is per X-Forwarded-For address, not one for the whole town
    residents = [f"203.0.113.{i}" for i in range(12)]
    with live_server(ws) as url:
        codes = [r.status_code for r in _live_posts(url, residents)]
        assert codes == [201] * 12
        again = _live_posts(url, ["203.0.113.99"] * 11)
    assert [r.status_code for r in again] == [201] * 10 + [429]
    assert int(again[-1].headers["Retry-After"]) >= 1


def test_forwarded_addresses_are_believed_only_from_the_trusted_proxies(ws):
    # a client that is not a trusted proxy cannot spread its requests over made-up addresses
    made_up = [f"198.51.100.{i}" for i in range(11)]
    with live_server(ws, "--forwarded-allow-ips", "10.0.0.1") as url:
        codes = [r.status_code for r in _live_posts(url, made_up)]
    assert codes == [201] * 10 + [429]
