"""OGC API - Features: landing, conformance, collections, items, paging, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from api.geojson import serialise
from gridkit import codes
from gridkit.store import issue_key, open_store
from tests.api.conftest import auth


def test_healthz(client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_landing_links(client) -> None:
    body = client.get("/").json()
    rels = {link["rel"]: link for link in body["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= set(rels)
    assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"


def test_conformance(client) -> None:
    classes = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in classes


def test_collections_need_a_key(client) -> None:
    r = client.get("/collections")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert "X-API-Key" in r.json()["detail"]
    assert client.get("/collections", headers=auth("gk_nonsense")).status_code == 401


def test_collections_list(client, keys) -> None:
    body = client.get("/collections", headers=auth(keys["viewer"])).json()
    ids = [c["id"] for c in body["collections"]]
    assert ids == ["units", "reports", "workers"]
    units = body["collections"][0]
    assert units["itemType"] == "feature"
    bbox = units["extent"]["spatial"]["bbox"][0]
    assert bbox[0] == pytest.approx(113.0) and bbox[1] == pytest.approx(27.7)


def test_items_paging_with_next_links(client, keys) -> None:
    url = "/collections/units/items?limit=100"
    seen = []
    while url:
        r = client.get(url, headers=auth(keys["viewer"]))
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/geo+json"
        page = r.json()
        assert page["numberMatched"] == 250
        seen += [f["id"] for f in page["features"]]
        nxt = [link["href"] for link in page["links"] if link["rel"] == "next"]
        url = nxt[0] if nxt else None
    assert len(seen) == 250 == len(set(seen))


def test_next_links_keep_the_query_intact(client, keys) -> None:
    """A time zone's '+' survives the next link (it would read as a space unencoded)."""
    query = {"datetime": "2026-04-01T00:00:00+08:00/..", "limit": "1"}
    r = client.get("/collections/reports/items", params=query, headers=auth(keys["admin"]))
    assert r.status_code == 200 and r.json()["numberMatched"] >= 2
    nxt = next(link["href"] for link in r.json()["links"] if link["rel"] == "next")
    assert "%2B08%3A00" in nxt
    again = client.get(nxt, headers=auth(keys["admin"]))
    assert again.status_code == 200, again.text
    assert again.json()["numberMatched"] == r.json()["numberMatched"]


def test_items_geojson_rfc7946(client, keys) -> None:
    f = client.get("/collections/units/items?limit=1", headers=auth(keys["viewer"])).json()[
        "features"
    ][0]
    ring = f["geometry"]["coordinates"][0]
    area2 = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring))
    assert area2 > 0  # counter-clockwise exterior
    assert 112 < ring[0][0] < 114 and 27 < ring[0][1] < 28  # lon, lat
    assert f["properties"]["name"] == "网格<0>"


def test_bbox_filter(client, keys) -> None:
    r = client.get(
        "/collections/units/items?bbox=113.0,27.7,113.015,27.705&limit=1000",
        headers=auth(keys["viewer"]),
    )
    ids = {f["id"] for f in r.json()["features"]}
    assert ids == {"430202001001-000", "430203001001-001"}


def test_datetime_filter(client, keys) -> None:
    h = auth(keys["admin"])
    r = client.get("/collections/reports/items?datetime=2026-05-05T00:00:00Z/..", headers=h)
    assert [f["id"] for f in r.json()["features"]] == ["R2", "R3"]
    r = client.get("/collections/reports/items?datetime=../2026-05-05T00:00:00Z", headers=h)
    assert [f["id"] for f in r.json()["features"]] == ["R1"]


def test_a_bbox_crossing_the_antimeridian_is_two_boxes(client, keys) -> None:
    def ids(bbox: str) -> set[str]:
        r = client.get(f"/collections/units/items?bbox={bbox}&limit=1000", headers=h)
        assert r.status_code == 200, r.text
        return {f["id"] for f in r.json()["features"]}

    h = auth(keys["admin"])
    east, west = ids("113.1,27.6,180,27.9"), ids("-180,27.6,113.0,27.9")
    assert east and west and ids("113.1,27.6,113.0,27.9") == east | west
    assert ids("170,-10,-170,10") == set()  # the Pacific: nothing of ours


@pytest.mark.parametrize(
    ("when", "ids"),
    [
        # past what nanoseconds hold (1677-2262): numpy overflowed and answered wrong
        ("9999-01-01T00:00:00Z/..", []),
        ("../9999-12-31T23:59:59Z", ["R1", "R2", "R3"]),
        ("2000-01-01T00:00:00Z/2262-04-12T00:00:00Z", ["R1", "R2", "R3"]),
        ("0001-01-01T00:00:00Z/1000-01-01T00:00:00Z", []),
        ("0001-01-01T00:00:00Z/..", ["R1", "R2", "R3"]),
        # a date alone is its whole day (UTC); a date as an end ends with its day
        ("2026-05-11", ["R2"]),
        ("2026-05-01/2026-05-11", ["R1", "R2"]),
        ("2026-05-12", []),
    ],
)
def test_datetime_far_instants_and_dates(client, keys, when, ids) -> None:
    r = client.get(f"/collections/reports/items?datetime={when}", headers=auth(keys["admin"]))
    assert r.status_code == 200, r.text
    assert [f["id"] for f in r.json()["features"]] == ids


@pytest.mark.parametrize(
    "query",
    [
        "foo=1",
        "limit=0",
        "limit=abc",
        "offset=-1",
        "bbox=1,2,3",
        "bbox=a,b,c,d",
        "datetime=yesterday",
        "datetime=now",
        "datetime=2026-06-01T00:00:00Z/2026-05-01T00:00:00Z",
        "limit=5&limit=6",
    ],
)
def test_bad_parameters_are_400_problems(client, keys, query: str) -> None:
    r = client.get(f"/collections/units/items?{query}", headers=auth(keys["viewer"]))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 400


def test_a_single_valued_parameter_given_twice_is_a_400(client, keys) -> None:
    """Not the last value silently (schemathesis found /stats/hotspots answering for
    the second of two categories)."""
    r = client.get("/stats/hotspots?category=a&category=b", headers=auth(keys["supervisor"]))
    assert r.status_code == 400, r.text
    assert "'category'" in r.json()["detail"] and "more than once" in r.json()["detail"]


def test_unknown_collection_and_item_404(client, keys) -> None:
    h = auth(keys["viewer"])
    r = client.get("/collections/nope/items", headers=h)
    assert r.status_code == 404
    assert "units" in r.json()["detail"]
    assert client.get("/collections/units/items/none", headers=h).status_code == 404


def test_single_item(client, keys) -> None:
    r = client.get("/collections/units/items/430202001001-000", headers=auth(keys["viewer"]))
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == "430202001001-000"
    assert {link["rel"] for link in body["links"]} == {"self", "collection"}


def test_private_fields_only_for_supervisors(client, keys) -> None:
    viewer = client.get("/collections/workers/items", headers=auth(keys["viewer"])).json()
    assert all("phone" not in f["properties"] for f in viewer["features"])
    assert all(f["geometry"] is None for f in viewer["features"])  # worker bases private
    reports = client.get("/collections/reports/items", headers=auth(keys["viewer"])).json()
    assert all("reporter_contact" not in f["properties"] for f in reports["features"])
    sup = client.get("/collections/workers/items", headers=auth(keys["supervisor"])).json()
    assert {f["properties"]["phone"] for f in sup["features"]} == {"13800000001", "13800000002"}
    assert all(f["geometry"] is not None for f in sup["features"])
    # and the viewer still gets the public version afterwards (cache per role)
    again = client.get("/collections/workers/items", headers=auth(keys["viewer"])).json()
    assert all("phone" not in f["properties"] for f in again["features"])


def test_private_geometry_cannot_be_found_by_bbox_or_extent(client, keys) -> None:
    """A hidden geometry leaves no trace: a bbox around a worker's base (113.01, 27.71)
    finds nothing for a viewer, and the collection's extent does not outline the bases."""
    around = "/collections/workers/items?bbox=113.0099,27.7099,113.0101,27.7101"
    assert client.get(around, headers=auth(keys["viewer"])).json()["numberMatched"] == 0
    assert client.get(around, headers=auth(keys["supervisor"])).json()["numberMatched"] == 1

    def extent(key: str, name: str) -> list[float]:
        body = client.get(f"/collections/{name}", headers=auth(key)).json()
        return body["extent"]["spatial"]["bbox"][0]

    assert extent(keys["supervisor"], "workers") == pytest.approx([113.01, 27.71, 113.02, 27.72])
    assert extent(keys["viewer"], "workers") == [-180.0, -90.0, 180.0, 90.0]
    listed = client.get("/collections", headers=auth(keys["viewer"])).json()["collections"]
    workers = next(c for c in listed if c["id"] == "workers")
    assert workers["extent"]["spatial"]["bbox"][0] == [-180.0, -90.0, 180.0, 90.0]


def test_scope_limits_what_a_district_supervisor_sees(client, keys) -> None:
    r = client.get(
        "/collections/units/items?limit=1000", headers=auth(keys["district_supervisor"])
    ).json()
    assert r["numberMatched"] == 125
    assert all(f["properties"]["admin_code"].startswith("430203") for f in r["features"])
    out_of_scope = client.get(
        "/collections/units/items/430202001001-000", headers=auth(keys["district_supervisor"])
    )
    assert out_of_scope.status_code == 404


def test_a_city_scope_holds_its_districts(workspace, client) -> None:
    """A scope is an area (gridkit.codes.in_scope), not a text prefix: a key for the
    city 430200 sees both districts' units and items; one for another city none."""
    city, _ = issue_key(open_store(workspace), "city", role="supervisor", scope="430200")
    other, _ = issue_key(open_store(workspace), "other", role="supervisor", scope="430300")
    r = client.get("/collections/units/items?limit=1000", headers=auth(city)).json()
    assert r["numberMatched"] == 250
    unit = "/collections/units/items/430202001001-000"
    assert client.get(unit, headers=auth(city)).status_code == 200
    assert client.get(unit, headers=auth(other)).status_code == 404
    r = client.get("/collections/units/items", headers=auth(other)).json()
    assert r["numberMatched"] == 0


def test_serialised_scope_is_gridkit_codes_in_scope() -> None:
    """The per-request mask over codes normalised once answers as codes.in_scope does,
    padded, short and missing codes included."""
    admin = ["430202001001", "430202000000", "430203001000", "430281", None, "4302", ""]
    ser = serialise(
        pd.DataFrame({"admin_code": admin}),
        id_col=None,
        hidden=[],
        hide_geometry=False,
        time_col=None,
    )
    for scope in ("", "43", "430000", "430200", "4302", "430202", "430202000000", "430203001"):
        expected = codes.in_scope(pd.Series(admin, dtype=object), scope).to_numpy()
        assert np.array_equal(ser.in_scope(scope), expected), scope


def test_openapi_declares_offset(client) -> None:
    spec = client.get("/openapi.json").json()
    params = {
        p["name"] for p in spec["paths"]["/collections/{collection_id}/items"]["get"]["parameters"]
    }
    assert {"bbox", "datetime", "limit", "offset"} <= params


def test_openapi_document_is_the_3_0_the_landing_page_declares(client) -> None:
    from openapi_spec_validator import validate

    spec = client.get("/openapi.json").json()
    assert spec["openapi"] == "3.0.3"
    validate(spec)  # a valid OpenAPI 3.0 document (raises otherwise)
    text = str(spec)
    assert "'type': 'null'" not in text and "'const'" not in text  # no 3.1-only forms
    fix = spec["components"]["schemas"]["Fix"]["properties"]["accuracy_m"]
    assert fix["type"] == "number" and fix["nullable"] is True and fix["maximum"] == 10_000


def test_openapi_30_conversion_rules() -> None:
    from api.openapi30 import to_openapi_30

    doc = {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "x",
        "components": {
            "schemas": {
                "A": {
                    "properties": {
                        "r": {"anyOf": [{"$ref": "#/components/schemas/B"}, {"type": "null"}]},
                        "t": {"type": ["string", "null"], "examples": ["a", "b"]},
                        "k": {"const": "Feature"},
                        "n": {"type": "number", "exclusiveMinimum": 0},
                        "f": {"type": "string", "contentMediaType": "application/octet-stream"},
                        "u": {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]},
                    }
                }
            }
        },
    }
    props = to_openapi_30(doc)["components"]["schemas"]["A"]["properties"]
    assert props["r"] == {"allOf": [{"$ref": "#/components/schemas/B"}], "nullable": True}
    assert props["t"] == {"type": "string", "nullable": True, "example": "a"}
    assert props["k"] == {"enum": ["Feature"]}
    assert props["n"] == {"type": "number", "minimum": 0, "exclusiveMinimum": True}
    assert props["f"] == {"type": "string", "format": "binary"}
    assert props["u"] == {"anyOf": [{"type": "integer"}, {"type": "string"}], "nullable": True}
    assert "jsonSchemaDialect" not in to_openapi_30(doc)


def test_huge_chunked_body_refused_while_read(client, keys) -> None:
    """A body without Content-Length (chunked) is counted as it arrives."""

    def chunks(head: bytes, tail: bytes):
        yield head
        for _ in range(90):
            yield b"x" * 100_000
        yield tail

    json_body = (b'{"category": "', b'"}', "application/json")
    photo = (
        b'--b\r\nContent-Disposition: form-data; name="photo"; filename="p.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff",
        b"\r\n--b--\r\n",
        "multipart/form-data; boundary=b",
    )
    for path, (head, tail, kind) in (("/reports", json_body), ("/reports/R1/evidence", photo)):
        r = client.post(
            path,
            content=chunks(head, tail),
            headers={**auth(keys["admin"]), "content-type": kind},
        )
        assert r.status_code == 413, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert "8000000 bytes" in r.json()["detail"]


def test_huge_body_refused(client, keys) -> None:
    r = client.post(
        "/collections",
        content=b"x" * 9_000_000,
        headers={**auth(keys["admin"]), "content-type": "application/json"},
    )
    assert r.status_code == 413


def test_unknown_routes_and_methods_are_problems_with_allow(client, keys) -> None:
    missing = client.get("/nope", headers=auth(keys["viewer"]))
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    for path, allowed in (("/versions", "GET, POST"), ("/reports", "POST")):
        r = client.delete(path, headers=auth(keys["admin"]))
        assert r.status_code == 405 and r.headers["content-type"] == "application/problem+json"
        assert r.headers["allow"] == allowed
