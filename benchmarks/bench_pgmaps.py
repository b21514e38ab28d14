"""Maps from the database (issue 25, item 7): the map pages' viewport, areas and search
in SQL over PostGIS (:class:`gridkit.store.ViewQueries`) against the in-memory index
the service builds over a GeoPackage (:class:`gridkit.maps.ViewIndex`), on the same
units (synthetic grid near Zhuzhou, a worker on ~90 % of them), side by side.

- first view after a data change: what the SQL side keeps per version (count, extent,
  the areas' aggregates) plus one viewport, against building the index plus the same
  viewport (the index is built from frames already in memory: the read from the store
  is not counted against it);
- a viewport once warm (a 1280x800 screen at zoom 15: ~450 units): one SQL query
  against the index's answer;
- a search once warm: SQL against the index's text match.

The database is a throwaway cluster (tests/postgis_cluster.py). Quick mode: 2,000
units; normal: 100,000.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from benchmarks._runner import Case

_state: dict = {}


def _setup(n: int):
    def setup() -> dict:
        if _state.get("n") == n:
            return _state
        import geopandas as gpd
        import shapely

        from gridkit.io import write_layer
        from gridkit.store import open_store
        from gridkit.store.transfer import load
        from gridkit.synth import maps as synth
        from tests import postgis_cluster

        u = synth.units(n, seed=1)
        a = synth.assignments(u, n_workers=max(5, n // 12), seed=1)
        ws = Path(tempfile.mkdtemp(prefix="gridkit-bench-pgmaps-")) / "ws.gpkg"
        write_layer(u, ws, "units")
        write_layer(a, ws, "assignments")
        url = postgis_cluster.new_database()
        load(ws, url)
        store = open_store(url)
        # the same with the villages' outlines (admin_areas), as a real workspace has
        box = u.geometry.bounds.groupby(u["admin_code"]).agg(
            {"minx": "min", "miny": "min", "maxx": "max", "maxy": "max"}
        )
        admin = gpd.GeoDataFrame(
            {"admin_code": box.index.to_numpy(), "name": [f"第{i + 1}村" for i in range(len(box))],
             "level": "village"},
            geometry=shapely.box(*box[["minx", "miny", "maxx", "maxy"]].to_numpy().T), crs=4326,
        )  # fmt: skip
        write_layer(admin, ws, "admin_areas")
        url2 = postgis_cluster.new_database()
        load(ws, url2)
        b = u.total_bounds
        w, s = b[0] + 0.3 * (b[2] - b[0]), b[1] + 0.3 * (b[3] - b[1])
        px = 360.0 / (256 * 2**15)  # degrees per pixel at zoom 15
        _state.clear()
        _state.update(n=n, url=url, store=store, units=u, assignments=a, admin=admin,
                      store_admin=open_store(url2),
                      view=(w, s, w + 1280 * px, s + 800 * px),
                      whole=tuple(float(v) for v in b))  # fmt: skip
        return _state

    return setup


def _sql_first(d: dict) -> bytes:
    from gridkit.store import ViewQueries

    return ViewQueries.build(d["store"], "").units(d["view"], 15)


def _index_first(d: dict) -> bytes:
    from gridkit.maps import ViewIndex

    ix = ViewIndex.build(d["units"], assignments=d["assignments"])
    return ix.units(d["view"], 15)


def _sql_first_areas(d: dict) -> bytes:
    from gridkit.store import ViewQueries

    return ViewQueries.build(d["store"], "").areas(d["whole"], 9)


def _index_first_areas(d: dict) -> bytes:
    from gridkit.maps import ViewIndex

    ix = ViewIndex.build(d["units"], assignments=d["assignments"])
    return ix.areas(d["whole"], 9)


def _sql_first_named(d: dict) -> bytes:
    from gridkit.store import ViewQueries

    return ViewQueries.build(d["store_admin"], "").areas(d["whole"], 9)


def _index_first_named(d: dict) -> bytes:
    from gridkit.maps import Context, ViewIndex

    ix = ViewIndex.build(d["units"], assignments=d["assignments"], context=Context(d["admin"]))
    return ix.areas(d["whole"], 9)


def _same_areas(ours: bytes, peer: bytes) -> dict | None:
    a, b = json.loads(ours), json.loads(peer)
    if [f["properties"] for f in a["features"]] != [f["properties"] for f in b["features"]]:
        return {"error": "different areas"}
    return None


def _warm(d: dict) -> dict:
    from gridkit.maps import ViewIndex
    from gridkit.store import ViewQueries

    if "sql" not in d:
        d["sql"] = ViewQueries.build(d["store"], "")
        d["index"] = ViewIndex.build(d["units"], assignments=d["assignments"])
    return d


def _same_units(ours: bytes, peer: bytes) -> dict | None:
    a, b = json.loads(ours), json.loads(peer)
    pa = [f["properties"] for f in a["features"]]
    pb = [f["properties"] for f in b["features"]]
    if pa != pb or a.get("too_many") != b.get("too_many"):
        return {"error": f"different units: {len(pa)} from SQL, {len(pb)} from the index"}
    return None


def _same(ours, peer) -> dict | None:
    return None if ours == peer else {"error": "different answers"}


def cases(quick: bool) -> list[Case]:
    n = 2_000 if quick else 100_000
    setup = _setup(n)

    def warm() -> dict:
        return _warm(setup())

    size = {"units": n}
    return [
        Case(
            f"first view after a change, {n:,} units: SQL (count, extent + viewport) "
            "vs building the in-memory index + viewport",
            setup,
            _sql_first,
            _index_first,
            peer_name="gridkit.maps.ViewIndex.build + units()",
            size=size,
            check=_same_units,
            repeat=3,
        ),
        Case(
            f"first areas view (zoom 9, all) after a change, {n:,} units: SQL (aggregates "
            "+ outlines: unions of the units, no admin_areas here) vs the in-memory index",
            setup,
            _sql_first_areas,
            _index_first_areas,
            peer_name="gridkit.maps.ViewIndex.build + areas()",
            size=size,
            check=_same_areas,
            repeat=3,
        ),
        Case(
            f"first areas view (zoom 9, all) after a change, {n:,} units with their villages' "
            "outlines (admin_areas): SQL vs the in-memory index",
            setup,
            _sql_first_named,
            _index_first_named,
            peer_name="gridkit.maps.ViewIndex.build + areas()",
            size=size,
            check=_same_areas,
            repeat=3,
        ),
        Case(
            f"viewport at zoom 15 (1280x800 px), {n:,} units, warm: SQL vs in-memory index",
            warm,
            lambda d: d["sql"].units(d["view"], 15),
            lambda d: d["index"].units(d["view"], 15),
            peer_name="gridkit.maps.ViewIndex.units (built)",
            size=size,
            check=_same_units,
            repeat=5,
            extra=lambda d, out: {"features": len(json.loads(out)["features"])},
        ),
        Case(
            f"search 'W00' (first 20), {n:,} units, warm: SQL vs in-memory index",
            warm,
            lambda d: d["sql"].search("W00"),
            lambda d: d["index"].search("W00"),
            peer_name="gridkit.maps.ViewIndex.search (built)",
            size=size,
            check=_same,
            repeat=5,
        ),
    ]
