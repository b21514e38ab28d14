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
- a search once warm: SQL against the index's text match;
- the compliance and cases views (``/maps/view?view=...``), first view after a data
  change: SQL (the library's compliance rule on the scope's rows fetched by indexed
  queries, per-unit results stored in the database; open and overdue cases counted in
  SQL) plus the areas at zoom 9 and a zoom-15 viewport, against building the index,
  reading the layers it needs from memory, the theme, and the same two answers. The
  patrols are coverage rows (two weeks of March for every assignment), the reports
  one per 20 units.

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

        from api import mapdata  # noqa: F401  (imported here, not in the first timed run)
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
        patrols, reports = _patrols_and_reports(u, a)
        write_layer(patrols, ws, "patrols")
        write_layer(reports, ws, "reports")
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
                      patrols=patrols, reports=open_store(ws).read("reports"),
                      store_admin=open_store(url2),
                      view=(w, s, w + 1280 * px, s + 800 * px),
                      whole=tuple(float(v) for v in b))  # fmt: skip
        return _state

    return setup


def _patrols_and_reports(u, a):
    """Coverage rows (each assignment patrolled in two weeks of March 2026, one in
    three units only once) and a report per 20 units (statuses old and new, deadlines
    around now, a few paused)."""
    import numpy as np
    import pandas as pd

    from gridkit.synth import maps as synth

    weeks = pd.to_datetime(["2026-03-03T02:00Z", "2026-03-17T02:00Z"])
    once = np.arange(len(a)) % 3 == 0
    rows = pd.concat([a.assign(started_at=weeks[0]), a[~once].assign(started_at=weeks[1])])
    rows = rows.reset_index(drop=True)
    rows.insert(0, "patrol_id", [f"P{i}" for i in range(len(rows))])
    r = synth.reports(u, max(10, len(u) // 20), seed=1)
    rng = np.random.default_rng(1)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    r["status"] = rng.choice(["reported", "assigned", "dispatched", "handling", "closed"], len(r))
    r["due_at"] = now + pd.to_timedelta(rng.integers(-72, 72, len(r)), unit="h")
    r["paused_at"] = pd.Series(now, index=r.index).where(rng.random(len(r)) < 0.1)
    return rows, r


class _Frames:
    """The layers in memory, as the in-memory side reads them (no store read timed)."""

    def __init__(self, d: dict) -> None:
        self.d = d

    def layers(self) -> list[str]:
        return ["units", "assignments", "patrols", "reports"]

    def read(self, name: str):
        return self.d[name]


def _sql_view(d: dict, view: str) -> tuple[bytes, bytes]:
    from types import SimpleNamespace

    from api import mapdata
    from gridkit.store import ViewQueries

    store = d["store_admin"]  # with the villages' outlines: the views' own cost, not the areas'
    with store._connection() as con:  # a change: the stored results are of old versions
        con.execute("DELETE FROM gridkit_view_results")
        con.execute("DELETE FROM gridkit_view_stamps")
    views = ViewQueries.build(store, "")
    if view == "compliance":
        values = mapdata._sql_compliance(
            SimpleNamespace(store=store), SimpleNamespace(scope=""), views, "2026-03"
        )
    else:
        values = mapdata._sql_cases(store, views)
    return views.areas(d["whole"], 9, values=values), views.units(d["view"], 15, values=values)


def _index_view(d: dict, view: str) -> tuple[bytes, bytes]:
    from api import mapdata
    from gridkit.maps import Context, ViewIndex

    ix = ViewIndex.build(d["units"], assignments=d["assignments"], context=Context(d["admin"]))
    if view == "compliance":
        theme = ix.compliance(mapdata._compliance_rows(_Frames(d), ix, "2026-03"))
    else:
        theme = mapdata._cases_theme(_Frames(d), ix)
    return ix.areas(d["whole"], 9, theme=theme), ix.units(d["view"], 15, theme=theme)


def _warm_views(d: dict) -> dict:
    """Both sides built once (the views included): what a viewport costs afterwards."""
    from api import mapdata
    from gridkit.maps import Context, ViewIndex
    from gridkit.store import ViewQueries

    if "sql_views" not in d:
        from types import SimpleNamespace

        store = d["store_admin"]
        views = ViewQueries.build(store, "")
        sql = {"compliance": mapdata._sql_compliance(SimpleNamespace(store=store),
                                                     SimpleNamespace(scope=""), views, "2026-03"),
               "cases": mapdata._sql_cases(store, views)}  # fmt: skip
        ix = ViewIndex.build(d["units"], assignments=d["assignments"], context=Context(d["admin"]))
        themes = {"compliance": ix.compliance(mapdata._compliance_rows(_Frames(d), ix, "2026-03")),
                  "cases": mapdata._cases_theme(_Frames(d), ix)}  # fmt: skip
        d.update(sql_views=(views, sql), index_views=(ix, themes))
    return d


def _same_view(ours: tuple, peer: tuple) -> dict | None:
    (a1, u1), (a2, u2) = ours, peer
    if _same_areas(a1, a2) is not None:
        return {"error": "different areas"}
    return _same_units(u1, u2)


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
        *[
            Case(
                f"first {view} view after a change, {n:,} units with their villages' outlines: "
                "SQL (areas at zoom 9 + a zoom-15 viewport) vs building the in-memory index + "
                "theme + the same",
                setup,
                lambda d, view=view: _sql_view(d, view),
                lambda d, view=view: _index_view(d, view),
                peer_name=f"gridkit.maps.ViewIndex.build + {view} theme",
                size=size,
                check=_same_view,
                repeat=3,
            )
            for view in ("compliance", "cases")
        ],
        *[
            Case(
                f"{view} viewport at zoom 15 (1280x800 px), {n:,} units, warm: SQL (the "
                "view's numbers joined in) vs in-memory index",
                lambda: _warm_views(setup()),
                lambda d, view=view: d["sql_views"][0].units(
                    d["view"], 15, values=d["sql_views"][1][view]
                ),
                lambda d, view=view: d["index_views"][0].units(
                    d["view"], 15, theme=d["index_views"][1][view]
                ),
                peer_name="gridkit.maps.ViewIndex.units (built)",
                size=size,
                check=_same_units,
                repeat=5,
            )
            for view in ("compliance", "cases")
        ],
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
