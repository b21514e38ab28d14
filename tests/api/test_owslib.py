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
