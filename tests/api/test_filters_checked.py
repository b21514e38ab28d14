"""A filter value no rule or case knows is a 400 naming the values that are known,
not an empty page (a misspelt ``status=handlng`` looked like "no cases"); a bbox
outside WGS84 degrees is a 400 too."""

from __future__ import annotations

import pytest

from tests.api.conftest import auth


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("status=bogus", "status=bogus: not a known stage; give one or more of"),
        ("status=handling,handlng", "status=handlng: not a known stage"),
        ("category=垃圾", "category=垃圾: not a known category"),
        ("bbox=200,100,300,200", "not in WGS84 degrees"),
        ("bbox=113,27.7,113.1,95", "not in WGS84 degrees"),
    ],
)
def test_unknown_filter_values_are_400_naming_what_is_known(client, keys, query, said) -> None:
    r = client.get(f"/collections/reports/items?{query}", headers=auth(keys["admin"]))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert said in r.json()["detail"], r.json()["detail"]
    if "stage" in said:
        assert "dispatched" in r.json()["detail"]


def test_known_values_and_the_antimeridian_still_answer(client, keys) -> None:
    h = auth(keys["admin"])
    for query in (
        "status=reported,dispatched",
        "category=floating_garbage",
        "bbox=170,-10,-170,10",  # across the antimeridian
        "bbox=-180,-90,180,90",
    ):
        r = client.get(f"/collections/reports/items?{query}", headers=h)
        assert r.status_code == 200, (query, r.text)


def test_the_contracts_integers_are_served_as_integers(tmp_path) -> None:
    """``households`` is an integer column of the contract; with a gap in it (river
    units have none) the store holds floats, which were served as 218.0."""
    from fastapi.testclient import TestClient

    from api import create_app
    from gridkit.io import read_layer, write_layer
    from gridkit.store import issue_key, open_store
    from tests.api.conftest import make_workspace

    ws = make_workspace(tmp_path / "ws.gpkg", n=4)
    units = read_layer(ws, "units", check=False)
    units["households"] = [218, None, 35, 0]
    write_layer(units, ws, "units")
    secret, _ = issue_key(open_store(ws), "admin", role="admin")
    r = TestClient(create_app(workspace=ws)).get("/collections/units/items", headers=auth(secret))
    got = {f["id"]: f["properties"]["households"] for f in r.json()["features"]}
    assert sorted(got.values(), key=str) == [0, 218, 35, None], got
    assert all(type(v) is int for v in got.values() if v is not None), got
