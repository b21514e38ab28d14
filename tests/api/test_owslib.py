"""A real OGC API - Features client (OWSLib) reads every collection with paging."""

from __future__ import annotations

import pytest

from tests.api.live import live_server

owslib_features = pytest.importorskip("owslib.ogcapi.features")


def test_owslib_reads_every_collection_with_paging(workspace, keys) -> None:
    headers = {"X-API-Key": keys["admin"]}
    with live_server(workspace) as url:
        api = owslib_features.Features(url, headers=headers)
        assert (
            "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
            in (api.conformance()["conformsTo"])
        )
        ids = [c["id"] for c in api.collections()["collections"]]
        assert ids == ["units", "reports", "workers"]
        for cid in ids:
            meta = api.collection(cid)
            assert meta["itemType"] == "feature"
            size = 2 if cid != "units" else 40
            first = api.collection_items(cid, limit=size)
            total = first["numberMatched"]
            seen = [f["id"] for f in first["features"]]
            offset = size
            while offset < total:  # page through with the declared offset parameter
                page = api.collection_items(cid, limit=size, offset=offset)
                seen += [f["id"] for f in page["features"]]
                offset += size
            assert len(seen) == total == len(set(seen))
        one = api.collection_item("units", "430202001001-000")
        assert one["properties"]["name"] == "网格<0>"


def test_owslib_reads_reaches_and_patrols_too(tmp_path) -> None:
    """The two layers the first workspace lacks: river reaches (split from the sample
    Xiang River) and patrol tracks (a simulated month), paged by OWSLib."""
    import geodata
    from gridkit.io import write_layer
    from gridkit.ops.simulate import simulate
    from gridkit.rivers import split_rivers
    from gridkit.store import issue_key, open_store
    from gridkit.synth.ops import grid_units, grid_workers

    ws = tmp_path / "ws.gpkg"
    reaches, _ = split_rivers(
        geodata.xiang_river(), geodata.zhuzhou_admin(), max_length_m=4000, min_length_m=300
    )
    units = grid_units(4, 4, admin_code="430202001001")
    workers, assignments = grid_workers(units)
    sim = simulate(units, workers, assignments, start="2026-03-01", end="2026-03-08", seed=1)
    for name, df in (
        ("units", units),
        ("reaches", reaches),
        ("workers", workers),
        ("patrols", sim.patrols),
    ):
        write_layer(df, ws, name)
    key = issue_key(open_store(ws), "owslib", role="admin")[0]
    with live_server(ws) as url:
        api = owslib_features.Features(url, headers={"X-API-Key": key})
        ids = [c["id"] for c in api.collections()["collections"]]
        assert {"reaches", "patrols"} <= set(ids)
        for cid, expected in (("reaches", len(reaches)), ("patrols", len(sim.patrols))):
            seen: list[str] = []
            offset = 0
            while True:
                page = api.collection_items(cid, limit=7, offset=offset)
                seen += [f["id"] for f in page["features"]]
                offset += 7
                if offset >= page["numberMatched"]:
                    break
            assert len(seen) == expected == len(set(seen)), cid
            assert page["features"][0]["geometry"]["type"] in ("LineString", "MultiLineString")
