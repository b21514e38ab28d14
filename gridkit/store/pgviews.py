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
  fid LIMIT``), place names from the areas.

Scope is an admin code prefix, as for items. The rules (half a pixel, 6 decimals from
zoom 15, 400 villages, 80 % staffed) are those of :mod:`gridkit.maps.viewport`,
restated here (the store does not import the maps room);
``tests/test_postgis_maps.py`` holds both backends to the same answers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit import codes
from gridkit.crs import WGS84
from gridkit.geojson import dumps, to_geojson
from gridkit.store.postgis import PostGISStore, _ident
from gridkit.webmap import (
    MAX_VILLAGES,
    SEPARATOR,
    area_outlines,
    check_bbox,
    half_pixel,
    staffed_class,
    zoom_for_width,
)

__all__ = ["ViewQueries"]

_INDEXES = (("assignments", "unit_id"),)  # what the per-unit lookups need


@dataclass(frozen=True)
class _Sql:
    """The SQL fragments of one scope over the tables present."""

    scope: str  # WHERE clause on units ``u``
    params: dict
    who: str  # LEFT JOIN LATERAL giving ``who.w`` (workers' names) or ''
    assigned: str  # the unit ids with a current assignment (DISTINCT ``unit_id``)
    named: str  # condition on ``u``: a current worker's name is LIKE ``%(like)s``


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

    def units(self, bbox: tuple, zoom: int, *, limit: int = 20_000) -> bytes:
        """GeoJSON of the units meeting ``bbox`` (w, s, e, n), simplified for ``zoom``;
        ``{"too_many": n}`` when more than ``limit`` meet it."""
        box = check_bbox(bbox)
        guess = self._estimate(box)
        if guess > 4 * limit:  # clearly too many: refused without touching them
            return dumps({"type": "FeatureCollection", "features": [], "too_many": guess})
        cap = 16 * limit + 1  # counted up to here (beyond: a lower bound)
        params = {**self.sql.params, "w": box[0], "s": box[1], "e": box[2], "n": box[3],
                  "cap": cap, "tol": half_pixel(zoom), "prec": 6 if zoom >= 15 else 5}  # fmt: skip
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
                "',\"s\":' || CASE WHEN who.w IS NULL THEN '\"unassigned\"' "
                "ELSE '\"staffed\"' END || ',\"w\":' || to_json(coalesce(who.w, ''))::text "
                f"|| '}}}}' AS f FROM units u {self.sql.who} WHERE {hit}) t",
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

    def areas(self, bbox: tuple, zoom: int) -> bytes:
        """GeoJSON of the areas (``name``, ``n_units``, ``staffed``, class ``c``) meeting
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
        sub = a.iloc[hit][["admin_code", "name", "n_units", "staffed", "c"]]
        return to_geojson(gpd.GeoDataFrame(sub, geometry=self._simplified[z][hit], crs=WGS84),
                          precision=5)  # fmt: skip

    def search(self, q: str, limit: int = 20) -> list:
        """Entries ``[text, south, west, north, east]`` whose text holds ``q``: units
        (id, name, workers' names) in table order, then places."""
        q = q.strip().lower()[:100]
        if not q:
            return []
        # LIKE, not strpos: a trigram index (pg_trgm) on the same expression serves it
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        params = {**self.sql.params, "like": like, "limit": int(limit)}
        label = "u.unit_id::text || ' ' || coalesce(u.name::text, '')"
        with self.store._connection() as con:
            if "name" not in _columns(con, "units"):
                label = "u.unit_id::text"
            first = "SELECT u.fid FROM units u WHERE {} AND {} ORDER BY u.fid LIMIT %(limit)s"
            rows = con.execute(  # the first units by their own text, by their workers'
                f"SELECT {label}, who.w, ST_YMin(b), ST_XMin(b), ST_YMax(b), ST_XMax(b) "
                "FROM (SELECT u.*, u.geometry::box3d AS b FROM units u JOIN (("
                + first.format(self.sql.scope, f"lower({label}) LIKE %(like)s")
                + ") UNION ("
                + first.format(self.sql.scope, self.sql.named)
                + f")) m ON m.fid = u.fid ORDER BY u.fid LIMIT %(limit)s) u {self.sql.who} "
                "ORDER BY u.fid",
                params,
            ).fetchall()
        found = [[t if w is None else t + SEPARATOR + w, *np.round(b, 5).tolist()]
                 for t, w, *b in rows]  # fmt: skip
        if len(found) < limit and self.area_frame is not None:
            a = self.area_frame
            names = a["name"].astype(str)
            hit = np.flatnonzero(names.str.lower().str.contains(q, regex=False).to_numpy())
            bounds = np.round(a.geometry.bounds.to_numpy()[:, [1, 0, 3, 2]], 5)
            found += [[names.iat[i], *bounds[i].tolist()] for i in hit[: limit - len(found)]]
        return found

    def overview(self) -> dict:
        """Bounds, the zoom from which units are served, and the areas' level."""
        b = self.extent
        return {"bounds": [[b[1], b[0]], [b[3], b[2]]], "switch": self.switch,
                "level": self.level, "units": self.count}  # fmt: skip
