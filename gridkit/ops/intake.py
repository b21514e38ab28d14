"""Taking reports and fixes in from the field: datum, service area, frames and ids.

What a service does with coordinates before :func:`gridkit.ops.reports.intake`
locates and links the reports: convert them from the datum the phone declared
(:func:`wgs84_points`, :func:`point_frame`), check they lie in the area served
(:func:`service_area`, :func:`in_service_area`, :func:`place_points`), build the
frame of new reports (:func:`report_frame`) with sequential ids (:class:`ReportIds`),
tell which hand-chosen admin codes name a known place (:func:`known_admin_codes`),
how large a received file's layer is before reading it (:func:`upload_size`, which
refuses GeoPackage views) and how large a layer read is (:func:`count_vertices`).

Examples
--------
>>> from gridkit.synth.ops import grid_units
>>> units = grid_units(2, 2)
>>> area = service_area(units=units)
>>> placed = place_points([(113.1025, 27.8025), (120.0, 30.0), None], area=area)
>>> placed[0].x, type(placed[1]).__name__, placed[2]
(113.1025, 'OutsideServiceAreaError', None)
>>> new = report_frame([{"category": "cctv", "source": "patrol"}], [placed[0]],
...                    report_ids=ReportIds([]).take(1))
>>> new[["report_id", "category"]].iloc[0].tolist()
['R0000001', 'cctv']
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gridkit import codes
from gridkit.crs import WGS84, to_wgs84
from gridkit.errors import GridkitError, InputFileError, InvalidLayerError
from gridkit.ops.reports import ReportError

__all__ = [
    "OutsideServiceAreaError",
    "ReportIds",
    "UploadSize",
    "count_vertices",
    "in_service_area",
    "known_admin_codes",
    "place_points",
    "point_frame",
    "report_frame",
    "service_area",
    "upload_size",
    "wgs84_points",
]


class OutsideServiceAreaError(ReportError):
    """A point lies outside the area served (or in the wrong datum)."""


def service_area(
    admin_areas: gpd.GeoDataFrame | None = None, units: gpd.GeoDataFrame | None = None
) -> shapely.Geometry | None:
    """The area served: the union of the admin areas, else of the units.

    Parameters
    ----------
    admin_areas, units
        The ``admin_areas`` and ``units`` layers (either may be missing).

    Returns
    -------
    shapely.Geometry or None
        Prepared for fast point tests; ``None`` when neither layer has a feature
        (then every point is taken).

    Examples
    --------
    >>> from gridkit.synth.ops import grid_units
    >>> area = service_area(units=grid_units(2, 2))
    >>> area.geom_type, round(area.area, 6)
    ('Polygon', 0.0001)
    >>> service_area() is None
    True
    """
    source = admin_areas if admin_areas is not None else units
    if source is None or not len(source):
        return None
    area = shapely.union_all(np.asarray(source.geometry.array))
    shapely.prepare(area)
    return area


def in_service_area(points: object, area: shapely.Geometry | None) -> np.ndarray:
    """Whether each point lies in ``area`` (its boundary included).

    Parameters
    ----------
    points
        Point geometries (array or GeoSeries) in WGS84.
    area
        From :func:`service_area`; ``None`` takes every point.

    Examples
    --------
    >>> import shapely
    >>> area = shapely.box(113.0, 27.8, 113.1, 27.9)
    >>> in_service_area(shapely.points([(113.05, 27.85), (113.1, 27.9), (114, 28)]), area)
    array([ True,  True, False])
    """
    geoms = np.asarray(getattr(points, "array", points), dtype=object)
    if area is None:
        return np.ones(len(geoms), dtype=bool)
    return np.asarray(shapely.covers(area, geoms), dtype=bool)


def wgs84_points(xy: object, crs: object = None, *, source: str = "report") -> np.ndarray:
    """Points in WGS84 from coordinates in a declared datum.

    Parameters
    ----------
    xy
        Coordinates, shape ``(n, 2)``: lon/lat, or x/y of ``crs``.
    crs
        Declared datum (EPSG code, ``"gcj02"``, ``"bd09"``); ``None``: WGS84 lon/lat
        as sent (checked to be lon/lat).
    source
        What the points are, for messages.

    Raises
    ------
    CRSError
        An unknown datum, or coordinates that cannot be lon/lat (projected metres
        sent without their CRS).

    Examples
    --------
    >>> from gridkit.crs import wgs84_to_gcj02
    >>> lon, lat = wgs84_to_gcj02(113.13, 27.83)
    >>> p = wgs84_points([(float(lon), float(lat))], "gcj02")[0]
    >>> round(p.x, 5), round(p.y, 5)
    (113.13, 27.83)
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    lonlat = (np.abs(xy[:, 0]) <= 180).all() and (np.abs(xy[:, 1]) <= 90).all()
    if not crs and lonlat:  # nothing to convert or check
        return shapely.points(xy)
    pts = gpd.GeoDataFrame(geometry=shapely.points(xy), crs=None if crs else WGS84)
    return np.asarray(to_wgs84(pts, crs=crs or None, source=source).geometry.array)


def point_frame(
    columns: Mapping[str, object],
    xy: object,
    *,
    crs: object = None,
    source: str = "points",
) -> gpd.GeoDataFrame:
    """A frame of points in WGS84 from columns and coordinates in a declared datum.

    Parameters
    ----------
    columns
        Column name to values (or a scalar for every row).
    xy
        Coordinates, shape ``(n, 2)``, in ``crs``.
    crs
        As for :func:`wgs84_points`.
    source
        What the points are, for messages.

    Examples
    --------
    >>> fixes = point_frame({"patrol_id": "P1"}, [(113.0, 27.8), (113.001, 27.8)])
    >>> len(fixes), fixes.crs.to_epsg(), fixes["patrol_id"].tolist()
    (2, 4326, ['P1', 'P1'])
    """
    geoms = gpd.array.from_shapely(wgs84_points(xy, crs, source=source), crs=WGS84)
    return gpd.GeoDataFrame(dict(columns), index=pd.RangeIndex(len(geoms)), geometry=geoms)


def place_points(
    coords: Sequence[tuple[float, float] | None],
    crs: object | Sequence[object] = None,
    *,
    area: shapely.Geometry | None = None,
    source: str = "report",
) -> list[shapely.Point | GridkitError | None]:
    """Place submitted points: to WGS84 per declared datum, then in the service area.

    Each point gets its own answer, so one bad point does not fail the others sent
    with it.

    Parameters
    ----------
    coords
        ``(x, y)`` per submission, ``None`` for one without a point (address only).
    crs
        The declared datum of all points, or one per point (see :func:`wgs84_points`).
    area
        From :func:`service_area`; ``None`` takes every point.
    source
        What the points are, for messages.

    Returns
    -------
    list
        Per submission: the WGS84 point; ``None`` without coordinates; or the error
        (:class:`~gridkit.errors.CRSError` for a datum that is unknown or does not fit
        the coordinates, :class:`OutsideServiceAreaError` outside the area).

    Examples
    --------
    >>> import shapely
    >>> area = shapely.box(113.0, 27.8, 113.1, 27.9)
    >>> out = place_points([(113.05, 27.85), (500000.0, 3000000.0)], area=area)
    >>> out[0].x, type(out[1]).__name__
    (113.05, 'CRSError')
    """
    n = len(coords)
    datums = list(crs) if _is_sequence(crs) else [crs] * n  # type: ignore[arg-type]
    placed: list[shapely.Point | GridkitError | None] = [None] * n
    groups: dict[object, list[int]] = {}
    for k, c in enumerate(coords):
        if c is not None:
            groups.setdefault(datums[k], []).append(k)
    for datum, ks in groups.items():
        xy = np.array([coords[k] for k in ks], dtype=float)
        try:
            geoms = wgs84_points(xy, datum, source=source)
        except GridkitError:  # find whose point it is: one at a time
            got = []
            for k, one in zip(ks, xy, strict=True):
                try:
                    got.append((k, wgs84_points(one[None, :], datum, source=source)[0]))
                except GridkitError as exc:
                    placed[k] = exc
            ks = [k for k, _ in got]
            geoms = np.array([g for _, g in got], dtype=object)
        inside = in_service_area(geoms, area)
        for k, g, ok in zip(ks, geoms, inside, strict=True):
            placed[k] = g if ok else _outside(g)
    return placed


def _is_sequence(value: object) -> bool:
    return isinstance(value, list | tuple | np.ndarray | pd.Series)


def _outside(point: shapely.Point) -> OutsideServiceAreaError:
    return OutsideServiceAreaError(
        f"The point ({point.x:.6f}, {point.y:.6f}) lies outside the service area. "
        "Check the coordinates and their datum (crs).",
    )


def report_frame(
    records: Sequence[Mapping[str, object]],
    points: Sequence[shapely.Point | None],
    *,
    report_ids: Sequence[str],
) -> gpd.GeoDataFrame:
    """New reports as a frame for :func:`gridkit.ops.reports.intake`.

    Parameters
    ----------
    records
        One mapping per report (``category``, ``source``, ``description``,
        ``reported_at``, ``admin_code``, ``unit_id``, ...; a key some records lack is
        ``None`` in those). A column that is ``None`` in every record is left out;
        ``reported_at`` becomes UTC.
    points
        The WGS84 point of each report (``None`` for address-only reports).
    report_ids
        The id of each report (see :class:`ReportIds`).

    Examples
    --------
    >>> import shapely
    >>> new = report_frame(
    ...     [{"category": "cctv", "unit_id": None, "reported_at": "2026-05-01T08:00+08:00"}],
    ...     [shapely.Point(113.0, 27.8)], report_ids=["R0000009"])
    >>> list(new.columns), str(new["reported_at"].iloc[0])
    (['report_id', 'category', 'reported_at', 'geometry'], '2026-05-01 00:00:00+00:00')
    >>> mixed = report_frame([{"category": "cctv"}, {"category": "sewage", "unit_id": "U7"}],
    ...                      [shapely.Point(113.0, 27.8), None], report_ids=["R1", "R2"])
    >>> mixed["unit_id"].isna().tolist(), mixed["unit_id"].iloc[1]
    ([True, False], 'U7')
    """
    cols: dict[str, object] = {"report_id": list(report_ids)}
    # every record's keys, in the order first seen (the first record's alone dropped
    # a unit_id given by hand only on an address-only report of a mixed batch)
    for name in dict.fromkeys(k for r in records for k in r):
        values = [r.get(name) for r in records]
        if any(v is not None for v in values):
            cols[name] = pd.to_datetime(values, utc=True) if name == "reported_at" else values
    geoms = np.empty(len(points), dtype=object)
    geoms[:] = list(points)
    cols["geometry"] = gpd.array.from_shapely(geoms, crs=WGS84)
    return gpd.GeoDataFrame(cols, geometry="geometry", copy=False)  # built once, as is


#: an id ReportIds numbers after (``R`` and digits), and how many ids it reads
#: without pandas
_REPORT_ID = re.compile(r"R(\d+)$")  # as pandas reads "^R(\d+)$"
_FEW_IDS = 64


class ReportIds:
    """Sequential report ids (``R0000001``, ...) continuing after those taken.

    Parameters
    ----------
    taken
        Report ids already in use; numbering continues after the highest
        ``R<digits>`` among them, and no id is given twice.

    Examples
    --------
    >>> ids = ReportIds(["R0000007", "R0000009", "hotline-3"])
    >>> ids.take(2), next(ids)
    (['R0000010', 'R0000011'], 'R0000012')
    """

    def __init__(self, taken: Iterable[object]) -> None:
        if isinstance(taken, list | tuple) and len(taken) <= _FEW_IDS:
            # a few ids (the highest stored, read by the database): no Series for them
            ids = [str(t) for t in taken]
            seqs = [int(m.group(1)) for m in map(_REPORT_ID.match, ids) if m]
            self._seq = max(seqs, default=0)
            self._taken = set(ids)
            return
        ids = pd.Series(list(taken) if not isinstance(taken, pd.Series) else taken, dtype=object)
        ids = ids.astype(str)
        digits = ids.str.extract(r"^R(\d+)$")[0].dropna()
        self._seq = int(digits.astype(int).max()) if len(digits) else 0
        self._taken = set(ids)

    def __iter__(self) -> ReportIds:
        return self

    def __next__(self) -> str:
        while True:
            self._seq += 1
            rid = f"R{self._seq:07d}"
            if rid not in self._taken:
                self._taken.add(rid)
                return rid

    def take(self, n: int) -> list[str]:
        """The next ``n`` ids."""
        return [next(self) for _ in range(n)]


def known_admin_codes(
    units: pd.DataFrame | None = None, admin_areas: pd.DataFrame | None = None
) -> frozenset[str] | None:
    """Admin codes a hand-chosen place may name: the admin areas' codes, the units'
    codes and every area above them (:func:`gridkit.codes.ancestors`), normalised
    (:func:`gridkit.codes.normalise`; test a code with ``codes.normalise(code) in
    known``).

    Returns ``None`` when both layers are missing (nothing to check against).

    Examples
    --------
    >>> import pandas as pd
    >>> known = known_admin_codes(pd.DataFrame({"admin_code": ["430202001001"]}))
    >>> sorted(known)
    ['430000', '430200', '430202', '430202001', '430202001001']
    >>> codes.normalise("430202000000") in known, "430203" in known
    (True, False)
    """
    if units is None and admin_areas is None:
        return None
    known: set[str] = set()
    if admin_areas is not None and "admin_code" in admin_areas:
        known |= set(codes.normalise(admin_areas["admin_code"].dropna()))
    if units is not None and "admin_code" in units:
        for c in set(codes.normalise(units["admin_code"].dropna())):  # distinct codes: few
            known |= {c, *codes.ancestors(c)}
    return frozenset(known)


def count_vertices(layer: gpd.GeoDataFrame) -> int:
    """How many coordinates the geometries of ``layer`` hold together: the size of a
    received layer, to refuse one too large before working on it.

    Examples
    --------
    >>> from gridkit.synth.ops import grid_units
    >>> count_vertices(grid_units(2, 2))  # four squares of five coordinates
    20
    """
    return int(shapely.get_num_coordinates(np.asarray(layer.geometry.array)).sum())


#: smallest bytes of a GeoPackage geometry blob besides its coordinates (8 header,
#: 1 byte order, 4 type); a coordinate takes at least 16 (x, y as doubles)
_GPKG_BLOB_OVERHEAD = 13
_COORD_BYTES = 16


@dataclass(frozen=True)
class UploadSize:
    """How large the layer of a received file is, known before reading it
    (:func:`upload_size`).

    Attributes
    ----------
    layer
        The layer a reader would take (the one asked for, or the file's only layer).
    features
        Its number of features.
    max_vertices
        An upper bound of its coordinates, from the bytes its geometries take (a
        GeoPackage); None where no tight bound is known without reading (GeoJSON: its
        size bounds the work of reading it).

    Examples
    --------
    >>> UploadSize("units", features=4, max_vertices=28).max_vertices
    28
    """

    layer: str
    features: int
    max_vertices: int | None


def upload_size(path: str | Path, layer: str, *, source: str | None = None) -> UploadSize:
    """Count the features of the layer a reader would take from ``path`` and bound its
    vertices, without reading it; refuse a layer that is a view.

    A GeoPackage is an SQLite file: a layer registered in it may be a *view*, a query
    run when read, which can make millions of rows out of a few bytes (``WITH
    RECURSIVE``). Such a layer is refused before anything reads it. For a layer that
    is a table, the features are counted by SQLite and the vertices bounded by the
    bytes of its geometry blobs (16 bytes a coordinate at least). Other formats are
    counted by GDAL (``pyogrio.read_info``); their size bounds the work of reading them.

    Parameters
    ----------
    path
        The file received.
    layer
        The contract layer wanted (``units``...); a file with one layer gives that one,
        as :func:`gridkit.io.read_input` reads it.
    source
        How messages name the file (default: its path), e.g. the name it was
        uploaded as.

    Raises
    ------
    InvalidLayerError
        The layer is an SQL view or a virtual table, not a table.
    InputFileError
        The file is not the SQLite file its ``.gpkg`` extension says.

    Examples
    --------
    >>> import sqlite3, tempfile, pathlib
    >>> from gridkit.synth.ops import grid_units
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "draft.gpkg"
    >>> grid_units(2, 2).to_file(path, layer="units", driver="GPKG")
    >>> upload_size(path, "units")
    UploadSize(layer='units', features=4, max_vertices=30)

    A layer that is a view is refused, naming it:

    >>> with sqlite3.connect(path) as con:
    ...     _ = con.execute("ALTER TABLE units RENAME TO cells")
    ...     _ = con.execute("CREATE VIEW units AS SELECT * FROM cells")
    >>> upload_size(path, "units", source="网格.gpkg")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gridkit.errors.InvalidLayerError: 网格.gpkg: layer 'units' is an SQL view, ...
    """
    p = Path(path)
    name = source or str(p)
    if p.suffix.lower() != ".gpkg":
        try:
            info = pyogrio.read_info(p)
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
            raise InputFileError(
                f"{name}: cannot open ({exc}).".replace(str(p), name),
                hint="Is the file complete and of the type its extension says?",
            ) from exc
        return UploadSize(str(info.get("layer_name") or layer), int(info["features"]), None)
    try:
        con = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InputFileError(f"{name}: cannot open ({exc}).") from exc
    try:
        return _gpkg_size(con, layer, name)
    except sqlite3.DatabaseError as exc:
        raise InputFileError(
            f"{name}: cannot open ({exc}).",
            hint="Is the file complete and a GeoPackage, as its extension says?",
        ) from exc
    finally:
        con.close()


def _gpkg_size(con: sqlite3.Connection, layer: str, name: str) -> UploadSize:
    objects = dict(con.execute("SELECT name, type FROM sqlite_master").fetchall())
    sql = dict(con.execute("SELECT name, coalesce(sql, '') FROM sqlite_master").fetchall())
    if "gpkg_contents" in objects:
        names = [
            str(n)
            for (n,) in con.execute(
                "SELECT table_name FROM gpkg_contents WHERE data_type IN ('features', 'attributes')"
            )
        ]
    else:  # a plain SQLite file: GDAL would list its tables and views
        internal = ("sqlite_", "gpkg_", "rtree_")
        names = [
            n for n, t in objects.items() if t in ("table", "view") and not n.startswith(internal)
        ]
    use = layer if layer in names or len(names) != 1 else names[0]
    kind = objects.get(use)
    if kind == "view" or sql.get(use, "").upper().startswith("CREATE VIRTUAL"):
        what = "an SQL view" if kind == "view" else "a virtual table"
        raise InvalidLayerError(
            f"{name}: layer {use!r} is {what}, not a table: it is refused, since reading "
            "it runs a query that may make any number of rows.",
            hint=f"Save the layer as a table and upload that (QGIS: Export > Save Features "
            f"As; or `ogr2ogr -f GPKG units.gpkg {name} {use} -nln units`).",
        )
    if kind != "table":
        return UploadSize(use, 0, 0)  # no such layer: the reader says so
    quoted = '"' + use.replace('"', '""') + '"'
    geom = (
        con.execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (use,)
        ).fetchone()
        if "gpkg_geometry_columns" in objects
        else None
    )
    if geom is None:
        (n,) = con.execute(f"SELECT count(*) FROM {quoted}").fetchone()
        return UploadSize(use, int(n), 0)
    column = '"' + str(geom[0]).replace('"', '""') + '"'
    n, n_geom, nbytes = con.execute(
        f"SELECT count(*), count({column}), total(length({column})) FROM {quoted}"
    ).fetchone()
    bound = max(int(nbytes) - _GPKG_BLOB_OVERHEAD * int(n_geom), 0) // _COORD_BYTES
    return UploadSize(use, int(n), bound)
