"""Map views from the database: the map pages' viewport, areas and search in SQL.

A page of any size asks, as the user moves, for the units meeting its viewport, for
villages or townships at low zoom, and searches. Over a GeoPackage the service builds
an in-memory index per scope and data version (:class:`gridkit.maps.ViewIndex`: at
10^6 units ~35 s and ~3 GB). Over PostGIS, :class:`ViewQueries` answers the same
questions with the same response shapes from the tables:

- :meth:`ViewQueries.units`: one indexed query per viewport (``&&`` on the GiST index,
  then ``ST_Intersects``), at most ``limit`` units, simplified for the zoom with
  ``ST_SimplifyPreserveTopology`` at half a pixel, GeoJSON encoded in SQL; more than
  ``limit`` units answers ``{"too_many": n}`` without encoding any (``n`` estimated from the
  extent, as the in-memory index does, or counted up to 16x the limit);
- :meth:`ViewQueries.build`: what every view needs and changes only with the data,
  once per scope and version: the count, extent and typical unit width. On the first
  request that needs them, the areas' aggregates (units and units staffed per admin
  code, ``GROUP BY`` in SQL, summed per village or township through
  :mod:`gridkit.codes`: a row per admin code, whatever the number of units) and
  their outlines (``admin_areas``, else the union of the area's units);
- :meth:`ViewQueries.search`: unit ids, names and workers' names in SQL (``ORDER BY
  fid LIMIT``; a trigram index from revision 5 when pg_trgm is there), place names
  from the areas;
- the other views of ``/maps/view`` (:class:`UnitValues`, joined into the same
  viewport query): :meth:`ViewQueries.cases` counts open and overdue cases per unit
  and per admin code in SQL (which statuses are open or fall overdue is the case
  rules' word, given in); :meth:`ViewQueries.compliance` stores per-unit results of
  the library's compliance rule, run by the caller on the rows
  :meth:`ViewQueries.compliance_inputs` fetches for the scope, once for every server
  process (``gridkit_view_results``), and sums them per admin code in SQL.

Scope is an admin code prefix, as for items. The rules (half a pixel, 6 decimals from
zoom 15, 400 villages, 80 % staffed) are those of :mod:`gridkit.maps.viewport`,
restated here (the store does not import the maps room);
``tests/test_postgis_maps.py`` holds both backends to the same answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit import codes
from gridkit.crs import WGS84
from gridkit.geojson import dumps, to_geojson
from gridkit.store.postgis import PostGISStore, _ident, _read_table
from gridkit.webmap import (
    MAX_VILLAGES,
    SEPARATOR,
    area_outlines,
    check_bbox,
    half_pixel,
    places_of,
    staffed_class,
    zoom_for_width,
)

__all__ = ["UnitValues", "ViewQueries"]

#: what the per-unit lookups need: workers per unit, a viewport's open cases per unit
_INDEXES = (("assignments", "unit_id"), ("reports", "unit_id"))
#: advisory lock space of the stored per-unit results (one key per view and version)
_RESULTS_LOCK = 0x6776
#: stored results of a view's older versions are dropped after this (other processes
#: may still be on them for a moment, until their NOTIFY arrives)
KEEP_OLD_S = 300


@dataclass(frozen=True)
class _Sql:
    """The SQL fragments of one scope over the tables present."""

    scope: str  # WHERE clause on units ``u``
    params: dict
    who: str  # LEFT JOIN LATERAL giving ``who.w`` (workers' names) or ''
    assigned: str  # the unit ids with a current assignment (DISTINCT ``unit_id``)
    named: str  # condition on ``u``: a current worker's name is LIKE ``%(like)s``


@dataclass(frozen=True)
class UnitValues:
    """A view other than coverage, as the viewport query asks it: ``join`` (SQL joined
    to the units ``u``), ``status`` (SQL: the unit's class), ``props`` (SQL: the JSON
    text of the view's numbers after ``w``, e.g. ``,"q":4,"d":1``) with ``params``;
    ``area_values`` (the areas' numbers and class ``c``, aligned to
    :attr:`ViewQueries.area_frame`); ``until``: when the view is stale.

    Examples
    --------
    >>> v = UnitValues("x", "", "'a'", "''", {}, None)
    >>> v.stale(pd.Timestamp.now(tz="UTC"))
    False
    """

    name: str
    join: str
    status: str
    props: str
    params: dict
    area_values: pd.DataFrame | None
    until: pd.Timestamp | None = None

    def stale(self, now: pd.Timestamp) -> bool:
        """Whether ``now`` is past :attr:`until` (build the view again).

        Examples
        --------
        >>> t = pd.Timestamp("2026-05-01", tz="UTC")
        >>> UnitValues("x", "", "''", "''", {}, None, until=t).stale(t)
        True
        """
        return self.until is not None and now >= self.until


def _columns(con: Any, table: str) -> set[str]:
    rows = con.execute(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) "
        "AND a.attnum > 0 AND NOT a.attisdropped",
        (_ident(table),),
    ).fetchall()
    return {str(r[0]) for r in rows}


def _sql(con: Any, scope: str) -> _Sql:
    units = _columns(con, "units")
    params: dict = {}
    where = "u.geometry IS NOT NULL AND NOT ST_IsEmpty(u.geometry)"
    if scope and "admin_code" in units:  # as the in-memory path: no codes, no cut
        p = codes.prefix(str(scope))
        params.update(scope_len=len(p), scope=p)
        where += " AND left(btrim(u.admin_code::text), %(scope_len)s) = %(scope)s"
    assignments = _columns(con, "assignments")
    if not {"unit_id", "worker_id"} <= assignments:
        none = "FALSE"
        return _Sql(where, params, "LEFT JOIN LATERAL (SELECT NULL::text AS w) who ON TRUE",
                    "SELECT NULL::text AS unit_id WHERE FALSE", none)  # fmt: skip
    current = " AND a.valid_to IS NULL" if "valid_to" in assignments else ""
    named, join = "a.worker_id::text", ""
    if {"worker_id", "name"} <= _columns(con, "workers"):
        named = "coalesce(k.name::text, a.worker_id::text)"
        join = " LEFT JOIN workers k ON k.worker_id::text = a.worker_id::text"
    who = (
        'LEFT JOIN LATERAL (SELECT string_agg(x.w, %(sep)s ORDER BY x.w COLLATE "C") AS w '
        f"FROM (SELECT DISTINCT {named} AS w FROM assignments a{join} "
        f"WHERE a.unit_id = u.unit_id{current}) x) who ON TRUE"
    )
    params["sep"] = SEPARATOR
    assigned = f"SELECT DISTINCT a.unit_id FROM assignments a WHERE a.unit_id IS NOT NULL{current}"
    matching = (  # a condition on ``u``, EXISTS: a semi-join, never a rescanned subplan
        f"EXISTS (SELECT 1 FROM assignments a{join} WHERE a.unit_id = u.unit_id{current} "
        f"AND lower({named}) LIKE %(like)s)"
    )
    return _Sql(where, params, who, assigned, matching)


def _ensure_indexes(store: PostGISStore, con: Any) -> None:
    """A btree on ``assignments.unit_id`` (the contract gives it no id column), made
    once by the first process that needs it; without the right to, queries go on
    without (slower)."""
    for table, column in _INDEXES:
        if column not in _columns(con, table):
            continue
        have = con.execute(  # any index led by the column (checked first: CREATE INDEX
            # IF NOT EXISTS would wait for the table's writers even when there is one)
            "SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = i.indkey[0] WHERE i.indrelid = to_regclass(%s) AND a.attname = %s",
            (_ident(table), column),
        ).fetchone()
        if have:
            continue
        try:
            con.execute(
                f"CREATE INDEX IF NOT EXISTS {_ident(f'gridkit_{table}_{column}')} "
                f"ON {_ident(table)} ({_ident(column)})"
            )
        except store._psycopg.Error:  # no right to, or made by another process meanwhile
            pass
    try:  # the search's trigram index (revision 5), when pg_trgm is there and it is not
        if con.execute("SELECT to_regclass('gridkit_units_search') IS NULL").fetchone()[0]:
            con.execute("SELECT gridkit_search_index()")
    except store._psycopg.Error:  # no right to: search scans
        pass


def _area_counts(con: Any, sql: _Sql) -> tuple[str | None, pd.DataFrame | None]:
    """The level of the areas (villages, or townships above 400 villages) and the units
    and units staffed per admin code (``code``) with its area (``admin_code``):
    ``GROUP BY`` in SQL, a row per code whatever the number of units."""
    if "admin_code" not in _columns(con, "units"):
        return None, None
    rows = con.execute(  # a join, not ``IN (subquery)``: hashed only within work_mem
        f"SELECT u.admin_code::text, count(*), count(s.unit_id) FROM units u LEFT JOIN "
        f"({sql.assigned}) s ON s.unit_id = u.unit_id WHERE {sql.scope} GROUP BY 1",
        sql.params,
    ).fetchall()
    if not rows:
        return None, None
    per = pd.DataFrame(rows, columns=["code", "n_units", "staffed"]).astype({"code": object})
    villages = codes.ancestor(per["code"], "village")
    if villages.notna().all() and villages.nunique() <= MAX_VILLAGES:
        level = "village"
    elif codes.ancestor(per["code"], "township").notna().any():
        level = "township"
    else:
        return None, None
    per["admin_code"] = codes.ancestor(per["code"], level)
    return level, per[per["admin_code"].notna()]


def _admin_places(con: Any, unit_codes: pd.Series | None) -> pd.DataFrame:
    """The ``admin_areas`` rows holding units of ``unit_codes`` (any level; named, with
    an outline): ``admin_code``, ``name`` and bounds ``b``, in table order, one per
    code. Asked by code (the codes' ancestors), not by reading the table."""
    admin = _columns(con, "admin_areas")
    if unit_codes is None or not {"admin_code", "level", "name", "geometry"} <= admin:
        return pd.DataFrame({"admin_code": [], "name": [], "b": []})
    wanted = sorted({c for lv in codes.LEVELS for c in codes.ancestor(unit_codes, lv).dropna()})
    rows = con.execute(
        "SELECT a.admin_code::text, a.level::text, a.name::text, ST_XMin(a.geometry), "
        "ST_YMin(a.geometry), ST_XMax(a.geometry), ST_YMax(a.geometry) FROM admin_areas a "
        "WHERE a.admin_code::text = ANY(%s) AND a.name IS NOT NULL AND a.geometry IS NOT NULL "
        "AND NOT ST_IsEmpty(a.geometry) ORDER BY a.fid",
        (wanted,),
    ).fetchall()
    frame = pd.DataFrame(rows, columns=["admin_code", "level", "name", "x0", "y0", "x1", "y1"])
    frame = frame.iloc[places_of(frame, unit_codes)].drop_duplicates("admin_code")
    return frame.assign(b=list(frame[["x0", "y0", "x1", "y1"]].to_numpy(dtype=float)))[
        ["admin_code", "name", "b"]
    ]


def _area_frame(con: Any, sql: _Sql, level: str, per: pd.DataFrame) -> gpd.GeoDataFrame:
    """The areas: ``admin_code``, ``name``, ``n_units``, ``staffed``, class ``c``,
    outline (WGS84)."""
    sums = per.groupby("admin_code", sort=True)[["n_units", "staffed"]].sum().reset_index()
    shapes = _outlines(con, sql, level, per)
    sums["name"] = [shapes.get(c, (c, None))[0] for c in sums["admin_code"]]
    geoms = [shapes.get(c, (c, None))[1] for c in sums["admin_code"]]
    share = sums["staffed"] / sums["n_units"]
    sums["c"] = staffed_class(share)
    frame = sums[["admin_code", "name", "n_units", "staffed", "c"]]
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=WGS84)


def _outlines(con: Any, sql: _Sql, level: str, per: pd.DataFrame) -> dict:
    """Area code -> (name, outline): the ``admin_areas`` row of that level, else the
    union of the area's units (see :func:`gridkit.webmap.area_outlines`)."""
    wanted = sorted(set(per["admin_code"]))
    out: dict = {}
    admin = _columns(con, "admin_areas")
    if {"admin_code", "level", "geometry"} <= admin:
        name = "a.name::text" if "name" in admin else "NULL"
        with con.cursor(binary=True) as cur:
            found = cur.execute(
                f"SELECT DISTINCT ON (a.admin_code::text) a.admin_code::text, {name}, "
                "ST_AsBinary(a.geometry) FROM admin_areas a WHERE a.level::text = %s "
                "AND a.admin_code::text = ANY(%s) AND a.geometry IS NOT NULL "
                "AND NOT ST_IsEmpty(a.geometry) ORDER BY a.admin_code::text, a.fid",
                (level, wanted),
            ).fetchall()
        for code, label, wkb in found:
            out[code] = (code if label is None else label, shapely.from_wkb(bytes(wkb)))
    missing = per[~per["admin_code"].isin(list(out))]
    if len(missing):
        out |= {c: (c, g) for c, g in _unions(con, sql, missing).items()}
    return out


def _unions(con: Any, sql: _Sql, missing: pd.DataFrame) -> dict:
    """Area code -> the union of its units, for areas ``admin_areas`` has no outline
    of: the units' outlines read in area order, merged as a coverage on a 1 cm grid
    (PostGIS 3.3's ``ST_Union`` of a village's squares is ~10x slower than GEOS's
    coverage union; PostGIS 3.4 has ``ST_CoverageUnion``)."""
    params = {**sql.params, "codes": missing["code"].tolist(),
              "areas": missing["admin_code"].tolist()}  # fmt: skip
    with con.cursor(binary=True) as cur:
        rows = cur.execute(
            "SELECT m.area, ST_AsBinary(u.geometry) FROM units u JOIN unnest(%(codes)s::text[], "
            f"%(areas)s::text[]) AS m(code, area) ON u.admin_code::text = m.code "
            f"WHERE {sql.scope} ORDER BY m.area, u.fid",
            params,
        ).fetchall()
    code = np.array([r[0] for r in rows], dtype=object)
    geoms = shapely.from_wkb(np.array([bytes(r[1]) for r in rows], dtype=object))
    return area_outlines(code, geoms)


#: tracks of the scope's workers in the period, the earlier tracks near them (the
#: rule's replay test looks at every earlier track), and those holding the extent
_TRACKS = """fid IN (
WITH mine AS (
    SELECT p.fid, p.geometry, p.started_at FROM patrols p
    WHERE p.started_at >= %(start)s AND p.started_at < %(end)s {workers})
SELECT fid FROM mine
UNION SELECT q.fid FROM mine m JOIN patrols q ON q.geometry && ST_Expand(m.geometry, %(margin)s)
    AND q.started_at <= m.started_at
UNION (SELECT fid FROM patrols WHERE geometry IS NOT NULL ORDER BY ST_XMin(geometry) LIMIT 1)
UNION (SELECT fid FROM patrols WHERE geometry IS NOT NULL ORDER BY ST_YMin(geometry) LIMIT 1)
UNION (SELECT fid FROM patrols WHERE geometry IS NOT NULL
       ORDER BY ST_XMax(geometry) DESC LIMIT 1)
UNION (SELECT fid FROM patrols WHERE geometry IS NOT NULL
       ORDER BY ST_YMax(geometry) DESC LIMIT 1))"""
#: ... of the workers assigned in the scope (tracks naming no worker: all of them)
_WORKERS = """AND p.worker_id::text IN (SELECT a.worker_id::text FROM assignments a
    WHERE a.unit_id IN (SELECT u.unit_id FROM units u WHERE {scope}))"""
#: the scope's units with an assignment, and those holding the scope's extent
_ASSIGNED = """SELECT u.fid FROM units u WHERE {scope}
    AND u.unit_id IN (SELECT a.unit_id FROM assignments a)
UNION (SELECT u.fid FROM units u WHERE {scope} ORDER BY ST_XMin(u.geometry) LIMIT 1)
UNION (SELECT u.fid FROM units u WHERE {scope} ORDER BY ST_YMin(u.geometry) LIMIT 1)
UNION (SELECT u.fid FROM units u WHERE {scope} ORDER BY ST_XMax(u.geometry) DESC LIMIT 1)
UNION (SELECT u.fid FROM units u WHERE {scope} ORDER BY ST_YMax(u.geometry) DESC LIMIT 1)"""


def _store_results(con: Any, key: str, family: str, results: pd.DataFrame) -> None:
    """Store a view's per-unit results under ``key``; drop those of the same view's
    versions older than :data:`KEEP_OLD_S`."""
    con.execute(
        "DELETE FROM gridkit_view_results r USING gridkit_view_stamps s WHERE r.view = s.view "
        "AND s.family = %s AND s.view <> %s AND s.made_at < now() - %s * interval '1 second'",
        (family, key, KEEP_OLD_S),
    )
    con.execute(
        "DELETE FROM gridkit_view_stamps WHERE family = %s AND view <> %s "
        "AND made_at < now() - %s * interval '1 second'",
        (family, key, KEEP_OLD_S),
    )
    rows = pd.DataFrame({"view": key, "unit_id": results["unit_id"].astype(str),
                         "s": results["s"].astype(str), "q": results["q"].astype("int64"),
                         "d": results["d"].astype("int64")})  # fmt: skip
    with con.cursor().copy(
        "COPY gridkit_view_results (view, unit_id, s, q, d) FROM STDIN WITH (FORMAT csv)"
    ) as copy:
        copy.write(rows.to_csv(header=False, index=False))
    con.execute("INSERT INTO gridkit_view_stamps (view, family) VALUES (%s, %s)", (key, family))


@dataclass
class ViewQueries:
    """The map pages' questions for one scope, answered from the PostGIS tables (see
    the module's description); the same methods and answers as
    :class:`gridkit.maps.ViewIndex`.

    Examples
    --------
    >>> views = ViewQueries.build(PostGISStore("postgresql://grid@localhost/zz"),
    ...                           "430202")  # doctest: +SKIP
    >>> views.overview()  # doctest: +SKIP
    {'bounds': [[27.7, 113.0], [27.9, 113.3]], 'switch': 14, 'level': 'village', 'units': 250}
    >>> doc = json.loads(views.units((113.0, 27.7, 113.1, 27.8), zoom=15))  # doctest: +SKIP
    >>> sorted(doc["features"][0]["properties"])  # doctest: +SKIP
    ['id', 's', 'w']
    >>> views.search("张三")[0][0]  # doctest: +SKIP
    '430202001001-000 网格<0> · 张三'
    """

    store: PostGISStore
    sql: _Sql
    count: int
    extent: tuple
    switch: int
    _held: dict = field(default_factory=dict, repr=False)  # made on first use
    _simplified: dict = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @classmethod
    def build(cls, store: PostGISStore, scope: str) -> ViewQueries:
        """What every view needs and changes only with the data: count, extent,
        typical unit width (the areas' counts and outlines follow on first use)."""
        with store._connection() as con:
            _ensure_indexes(store, con)
            sql = _sql(con, scope)
            n, x0, y0, x1, y1, width = con.execute(
                "SELECT count(*), min(ST_XMin(b)), min(ST_YMin(b)), max(ST_XMax(b)), "
                "max(ST_YMax(b)), percentile_cont(0.5) WITHIN GROUP "
                "(ORDER BY ST_XMax(b) - ST_XMin(b)) "
                f"FROM (SELECT u.geometry::box3d AS b FROM units u WHERE {sql.scope}) t",
                sql.params,
            ).fetchone()
        extent = (x0, y0, x1, y1) if n else (0.0, 0.0, 0.0, 0.0)
        return cls(store, sql, int(n), tuple(float(v) for v in extent),
                   zoom_for_width(width or 0.0))  # fmt: skip

    def _once(self, name: str, make):
        with self._lock:  # one request makes it; the others wait for it
            if name not in self._held:
                self._held[name] = make()
            return self._held[name]

    def _counts(self) -> tuple[str | None, pd.DataFrame | None]:
        def make():
            with self.store._connection() as con:
                return _area_counts(con, self.sql)

        return self._once("counts", make)

    @property
    def level(self) -> str | None:
        """``"village"``, ``"township"`` or ``None``: the areas shown at low zoom."""
        return self._counts()[0]

    @property
    def area_frame(self) -> gpd.GeoDataFrame | None:
        """The areas (``admin_code``, ``name``, ``n_units``, ``staffed``, class ``c``,
        outline), made on first use (``None`` when the units name no township)."""
        return self._area_index()[0]

    def _area_index(self) -> tuple[gpd.GeoDataFrame | None, shapely.STRtree | None]:
        def make():
            level, per = self._counts()
            if level is None or per is None:
                return None, None
            with self.store._connection() as con:
                frame = _area_frame(con, self.sql, level, per)
            return frame, shapely.STRtree(np.asarray(frame.geometry.array))

        return self._once("areas", make)

    def units(
        self, bbox: tuple, zoom: int, *, limit: int = 20_000, values: UnitValues | None = None
    ) -> bytes:
        """GeoJSON of the units meeting ``bbox`` (w, s, e, n), simplified for ``zoom``,
        with their class ``s`` and numbers in the view ``values`` (default coverage);
        ``{"too_many": n}`` when more than ``limit`` meet it."""
        box = check_bbox(bbox)
        guess = self._estimate(box)
        if guess > 4 * limit:  # clearly too many: refused without touching them
            return dumps({"type": "FeatureCollection", "features": [], "too_many": guess})
        cap = 16 * limit + 1  # counted up to here (beyond: a lower bound)
        params = {**self.sql.params, "w": box[0], "s": box[1], "e": box[2], "n": box[3],
                  "cap": cap, "tol": half_pixel(zoom), "prec": 6 if zoom >= 15 else 5}  # fmt: skip
        status, props, join = "CASE WHEN who.w IS NULL THEN 'unassigned' ELSE 'staffed' END", "", ""
        if values is not None:
            status, props, join = values.status, f" || {values.props}", values.join
            params |= values.params
        hit = (
            "u.geometry && ST_MakeEnvelope(%(w)s, %(s)s, %(e)s, %(n)s, 4326) AND "
            "ST_Intersects(u.geometry, ST_MakeEnvelope(%(w)s, %(s)s, %(e)s, %(n)s, 4326)) "
            f"AND {self.sql.scope}"
        )
        with self.store._connection() as con, con.transaction():
            con.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            n = con.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM units u WHERE {hit} LIMIT %(cap)s) t", params
            ).fetchone()[0]
            if n > limit:
                return dumps({"type": "FeatureCollection", "features": [], "too_many": int(n)})
            body = con.execute(
                "SELECT coalesce(string_agg(f, ',' ORDER BY fid), '') FROM (SELECT u.fid, "
                '\'{"type":"Feature","geometry":\' || ST_AsGeoJSON(ST_ForcePolygonCCW('
                "ST_SimplifyPreserveTopology(u.geometry, %(tol)s)), %(prec)s) || "
                '\',"properties":{"id":\' || to_json(u.unit_id::text)::text || '
                f"',\"s\":' || to_json(({status})::text)::text || ',\"w\":' || "
                f"to_json(coalesce(who.w, ''))::text{props} || '}}}}' AS f "
                f"FROM units u {self.sql.who} {join} WHERE {hit}) t",
                params,
            ).fetchone()[0]
        return b'{"type":"FeatureCollection","features":[' + body.encode() + b"]}"

    def _estimate(self, box: tuple) -> int:
        """Units expected in ``box`` if they were spread evenly over the extent."""
        w, s, e, n = self.extent
        iw = max(0.0, min(e, box[2]) - max(w, box[0]))
        ih = max(0.0, min(n, box[3]) - max(s, box[1]))
        area = max((e - w) * (n - s), 1e-12)
        return int(self.count * min(1.0, iw * ih / area))

    def areas(self, bbox: tuple, zoom: int, *, values: UnitValues | None = None) -> bytes:
        """GeoJSON of the areas (``name``, ``n_units``, the numbers of the view
        ``values``, default coverage's ``staffed``, and its class ``c``) meeting
        ``bbox``, simplified for ``zoom``."""
        a, tree = self._area_index()
        if a is None or tree is None:
            return dumps({"type": "FeatureCollection", "features": []})
        hit = np.sort(tree.query(shapely.box(*check_bbox(bbox)), predicate="intersects"))
        z = max(0, min(22, int(zoom)))
        if z not in self._simplified:  # once per zoom: areas are few, requests many
            self._simplified[z] = shapely.simplify(
                np.asarray(a.geometry.array), half_pixel(z), preserve_topology=True
            )
        if values is None or values.area_values is None:
            sub = a.iloc[hit][["admin_code", "name", "n_units", "staffed", "c"]]
        else:
            head = a.iloc[hit][["admin_code", "name", "n_units"]].reset_index(drop=True)
            more = values.area_values.iloc[hit].reset_index(drop=True)
            sub = pd.concat([head, more], axis=1)
        return to_geojson(gpd.GeoDataFrame(sub, geometry=self._simplified[z][hit], crs=WGS84),
                          precision=5)  # fmt: skip

    # -- the views other than coverage ------------------------------------------------
    def _per_area(self, rows: list, columns: list[str]) -> pd.DataFrame | None:
        """Sums per admin code (``rows``: code, then ``columns``) summed into the areas,
        aligned to :attr:`area_frame` (None without areas)."""
        frame = self.area_frame
        level = self.level
        if frame is None or level is None:
            return None
        per = pd.DataFrame(rows, columns=["code", *columns]).astype({"code": object})
        per[columns] = per[columns].astype(float)
        per["area"] = codes.ancestor(per["code"], level)
        sums = per[per["area"].notna()].groupby("area", sort=True)[columns].sum()
        return sums.reindex(frame["admin_code"].to_numpy()).fillna(0.0).reset_index(drop=True)

    def report_statuses(self) -> list[str]:
        """The statuses the ``reports`` table holds (the rules say which are open)."""
        with self.store._connection() as con:
            if "status" not in _columns(con, "reports"):
                return []
            rows = con.execute("SELECT DISTINCT status::text FROM reports WHERE status IS NOT "
                               "NULL").fetchall()  # fmt: skip
        return sorted(str(r[0]) for r in rows)

    def cases(
        self,
        open_statuses: Sequence[str],
        late_statuses: Sequence[str],
        at: pd.Timestamp,
        *,
        classes: tuple[str, str, str],
        rates: Callable[[pd.DataFrame], pd.DataFrame],
    ) -> UnitValues:
        """The cases view at ``at``, counted in SQL: a case is open when its status is
        one of ``open_statuses`` and it duplicates none; overdue when also its status
        is one of ``late_statuses``, it is not paused and its deadline is before ``at``
        (the statuses come from the case rules: the database is given them, not the
        rules). Per unit (viewport): ``o`` open, ``l`` overdue and the class
        (``classes``: none, open, overdue); per area: the sums, classed by ``rates``
        (open and overdue cases, households and open cases of community units, km of
        river and open cases of the others); ``until``: the next deadline after ``at``."""
        with self.store._connection() as con:
            have = _columns(con, "reports")
            src = "reports"
            if not {"unit_id", "status"} <= have:  # no case is anywhere
                is_open, late, have = "FALSE", "FALSE", set()
                src = "(SELECT NULL::text AS unit_id WHERE FALSE)"
            else:
                is_open = "r.status::text = ANY(%(c_open)s)"
                if "duplicate_of" in have:
                    is_open += " AND r.duplicate_of IS NULL"
                late = "FALSE"
                if "due_at" in have:
                    late = "r.status::text = ANY(%(c_late)s) AND r.due_at < %(c_at)s"
                    late += " AND r.paused_at IS NULL" if "paused_at" in have else ""
            params = {"c_open": list(open_statuses), "c_late": list(late_statuses),
                      "c_at": at.to_pydatetime(), "c_none": classes[0], "c_some": classes[1],
                      "c_overdue": classes[2]}  # fmt: skip
            join = (
                "LEFT JOIN LATERAL (SELECT count(*) AS o, count(*) FILTER (WHERE "
                f"{late}) AS l FROM {src} r WHERE r.unit_id = u.unit_id AND {is_open}) vc ON TRUE"
            )
            unit = _columns(con, "units")
            hh, km = "0::float8", "0::float8"
            if "households" in unit:
                hh = "coalesce(nullif(u.households::float8, 'NaN'), 0)::real::float8"
            if "length_m" in unit:
                km = (
                    "(coalesce(nullif(u.length_m::float8, 'NaN'), 0) * 0.001::float8)::real::float8"
                )
            rows = con.execute(
                "SELECT u.admin_code::text, sum(x.o), sum(x.l), sum(x.hh), "
                "sum(CASE WHEN x.hh > 0 THEN 0 ELSE x.km END), "
                "sum(CASE WHEN x.hh > 0 THEN x.o ELSE 0 END), "
                "sum(CASE WHEN x.hh > 0 THEN 0 ELSE x.o END) FROM units u LEFT JOIN "
                "(SELECT r.unit_id, count(*) AS o, count(*) FILTER (WHERE "
                f"{late}) AS l FROM {src} r WHERE {is_open} GROUP BY 1) vc "
                "ON vc.unit_id = u.unit_id CROSS JOIN LATERAL (SELECT "
                f"{hh} AS hh, {km} AS km, coalesce(vc.o, 0) AS o, coalesce(vc.l, 0) AS l) x "
                f"WHERE {self.sql.scope} GROUP BY 1",
                {**self.sql.params, **params},
            ).fetchall() if "admin_code" in unit else []  # fmt: skip
            next_due = None
            if "due_at" in have:
                next_due = con.execute(
                    f"SELECT min(r.due_at) FROM reports r JOIN units u ON u.unit_id = r.unit_id "
                    f"WHERE {self.sql.scope} AND {is_open} AND r.due_at > %(c_at)s",
                    {**self.sql.params, **params},
                ).fetchone()[0]
        sums = self._per_area(rows, ["open", "late", "households", "km", "open_hh", "open_km"])
        return UnitValues(
            "cases", join,
            "CASE WHEN vc.l > 0 THEN %(c_overdue)s WHEN vc.o > 0 THEN %(c_some)s "
            "ELSE %(c_none)s END",
            "',\"o\":' || vc.o || ',\"l\":' || vc.l", params,
            None if sums is None else rates(sums),
            None if next_due is None else pd.Timestamp(next_due).tz_convert("UTC"),
        )  # fmt: skip

    def patrol_span(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """The first and last ``started_at`` of the patrols (None: no patrols)."""
        with self.store._connection() as con:
            if "started_at" not in _columns(con, "patrols"):
                return None
            lo, hi = con.execute("SELECT min(started_at), max(started_at) FROM patrols").fetchone()
        if lo is None:
            return None
        return pd.Timestamp(lo).tz_convert("UTC"), pd.Timestamp(hi).tz_convert("UTC")

    def compliance_inputs(
        self, start: pd.Timestamp, end: pd.Timestamp, margin: float
    ) -> dict[str, pd.DataFrame | None]:
        """What the compliance rule needs for this scope's units over ``[start, end)``,
        fetched by indexed queries in one snapshot, typed as the store reads layers:
        ``assignments`` of the scope's units; ``patrols``: coverage rows of those units
        in the period, or tracks of their workers in the period and the earlier
        tracks within ``margin`` degrees of them (a track repeating an earlier
        one is no patrol, whoever walked it), and the tracks holding the table's
        extent; ``units``: those with an assignment and those holding the scope's
        extent (the rule's metric CRS is picked from the bounds), None for coverage
        rows; ``workers``: of those assignments and patrols."""
        p = {**self.sql.params, "start": start.to_pydatetime(), "end": end.to_pydatetime(),
             "margin": float(margin)}  # fmt: skip
        scope_ids = f"SELECT u.unit_id FROM units u WHERE {self.sql.scope}"
        out: dict[str, pd.DataFrame | None] = {}
        with self.store._connection() as con, con.transaction():
            con.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            table = self.store._table
            of_scope = f"unit_id IN ({scope_ids})"
            out["assignments"] = _read_table(
                con, "assignments", table(con, "assignments"), where=of_scope, params=p
            )
            pcols = _columns(con, "patrols")
            if {"unit_id", "patrol_id"} <= pcols:  # coverage rows: those of the scope's units
                when = " AND started_at >= %(start)s AND started_at < %(end)s"
                out["patrols"] = _read_table(  # rows outside the period count for nothing
                    con, "patrols", table(con, "patrols"), where=of_scope + when, params=p
                )
                out["units"] = None  # the rule needs units for tracks only
            else:
                out["patrols"] = _read_table(
                    con,
                    "patrols",
                    table(con, "patrols"),
                    where=_TRACKS.format(
                        workers=_WORKERS.format(scope=self.sql.scope)
                        if "worker_id" in pcols
                        else ""
                    ),
                    params=p,
                )
                out["units"] = _read_table(
                    con, "units", table(con, "units"), params=p,
                    where=f"fid IN ({_ASSIGNED.format(scope=self.sql.scope)})",
                )  # fmt: skip
            out["workers"] = None
            if "worker_id" in _columns(con, "workers"):
                ids = set(out["assignments"]["worker_id"].dropna().astype(str))
                if "worker_id" in out["patrols"].columns:
                    ids |= set(out["patrols"]["worker_id"].dropna().astype(str))
                out["workers"] = _read_table(con, "workers", table(con, "workers"),
                                             where="worker_id::text = ANY(%s)",
                                             params=[sorted(ids)])  # fmt: skip
        return out

    def compliance(
        self,
        key: str,
        make: Callable[[], pd.DataFrame],
        *,
        none: str,
        classes: Callable[[pd.DataFrame], pd.DataFrame],
    ) -> UnitValues:
        """The compliance view stored under ``key`` (scope, period and the versions of
        the layers it reads): the per-unit results (``unit_id``, class ``s``,
        required ``q``, done ``d``) are made by ``make()`` by the first process that
        asks (the others wait for it and read them), stored in the database, and read
        by the viewport queries; units without results are ``none``. The areas' sums
        (``required``, ``done``) are summed in SQL and classed by ``classes``."""
        family = key.rsplit("|", 1)[0]
        with self.store._connection() as con, con.transaction():
            con.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_RESULTS_LOCK, key))
            if con.execute("SELECT 1 FROM gridkit_view_stamps WHERE view = %s",
                           (key,)).fetchone() is None:  # fmt: skip
                _store_results(con, key, family, make())
            rows = con.execute(
                "SELECT u.admin_code::text, sum(coalesce(vr.q, 0)), sum(coalesce(vr.d, 0)) "
                "FROM units u LEFT JOIN gridkit_view_results vr ON vr.view = %(v_key)s "
                f"AND vr.unit_id = u.unit_id::text WHERE {self.sql.scope} GROUP BY 1",
                {**self.sql.params, "v_key": key},
            ).fetchall() if "admin_code" in _columns(con, "units") else []  # fmt: skip
        sums = self._per_area(rows, ["required", "done"])
        return UnitValues(
            "compliance",
            "LEFT JOIN gridkit_view_results vr ON vr.view = %(v_key)s "
            "AND vr.unit_id = u.unit_id::text",
            "coalesce(vr.s, %(v_none)s)",
            "',\"q\":' || coalesce(vr.q, 0) || ',\"d\":' || coalesce(vr.d, 0)",
            {"v_key": key, "v_none": none},
            None if sums is None else classes(sums),
        )  # fmt: skip

    def _search_sql(self, con: Any, q: str, limit: int) -> tuple[str, dict]:
        """The search's query for ``q`` (lower case): the first units by their own
        text, and by their workers', in table order."""
        # LIKE, not strpos: the trigram index of revision 5 is on the same expression
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        params = {**self.sql.params, "like": like, "limit": int(limit)}
        label = "u.unit_id::text || ' ' || coalesce(u.name::text, '')"
        if "name" not in _columns(con, "units"):
            label = "u.unit_id::text"
        first = "SELECT u.fid FROM units u WHERE {} AND {} ORDER BY u.fid LIMIT %(limit)s"
        sql = (
            f"SELECT {label}, who.w, ST_YMin(b), ST_XMin(b), ST_YMax(b), ST_XMax(b) "
            "FROM (SELECT u.*, u.geometry::box3d AS b FROM units u JOIN (("
            + first.format(self.sql.scope, f"lower({label}) LIKE %(like)s")
            + ") UNION ("
            + first.format(self.sql.scope, self.sql.named)
            + f")) m ON m.fid = u.fid ORDER BY u.fid LIMIT %(limit)s) u {self.sql.who} "
            "ORDER BY u.fid"
        )
        return sql, params

    def search_plan(self, q: str, limit: int = 20) -> str:
        """The database's plan of the search for ``q`` (``EXPLAIN``): whether it
        takes the trigram index (``gridkit_units_search``) or scans the units.

        Examples
        --------
        >>> "gridkit_units_search" in views.search_plan("网格员3号")  # doctest: +SKIP
        True
        """
        with self.store._connection() as con:
            sql, params = self._search_sql(con, q.strip().lower()[:100], limit)
            rows = con.execute("EXPLAIN " + sql, params).fetchall()
        return "\n".join(str(r[0]) for r in rows)

    def search(self, q: str, limit: int = 20) -> list:
        """Entries ``[text, south, west, north, east]`` whose text holds ``q``: places
        first (the areas drawn, then the admin areas above them), then units (id, name,
        workers' names) in table order."""
        q = q.strip().lower()[:100]
        if not q:
            return []
        names, bounds = self._places()
        hit = np.flatnonzero(names.str.lower().str.contains(q, regex=False).to_numpy())
        found = [[names.iat[i], *bounds[i].tolist()] for i in hit[:limit]]
        if len(found) < limit:
            with self.store._connection() as con:
                sql, params = self._search_sql(con, q, limit - len(found))
                rows = con.execute(sql, params).fetchall()
            found += [[t if w is None else t + SEPARATOR + w, *np.round(b, 5).tolist()]
                      for t, w, *b in rows]  # fmt: skip
        return found

    def _places(self) -> tuple[pd.Series, np.ndarray]:
        """Names and bounds (south, west, north, east) of the places search finds: the
        areas drawn, then every other admin area holding units of the scope
        (:func:`gridkit.webmap.places_of`), in table order, as the in-memory index."""

        def make():
            a = self.area_frame
            parts = [] if a is None else [a[["admin_code", "name"]].assign(
                b=list(a.geometry.bounds.to_numpy()))]  # fmt: skip
            _, per = self._counts()
            with self.store._connection() as con:
                more = _admin_places(con, None if per is None else per["code"])
            if len(more):
                drawn = set() if a is None else set(a["admin_code"].astype(str))
                parts.append(more[~more["admin_code"].isin(drawn)])
            if not parts:
                return pd.Series([], dtype=object), np.zeros((0, 4))
            frame = pd.concat(parts, ignore_index=True)
            bounds = np.round(np.vstack(frame["b"].to_list())[:, [1, 0, 3, 2]], 5)
            return frame["name"].astype(str).reset_index(drop=True), bounds

        return self._once("places", make)

    def overview(self) -> dict:
        """Bounds, the zoom from which units are served, and the areas' level."""
        b = self.extent
        return {"bounds": [[b[1], b[0]], [b[3], b[2]]], "switch": self.switch,
                "level": self.level, "units": self.count}  # fmt: skip
