"""Coordinate reference systems: declared datums, Chinese web-map datums, metric CRS.

gridkit stores everything in WGS84 (EPSG:4326) and measures lengths and areas in a
local metric CRS (the UTM zone of the data's centre). Coordinates from Chinese
web maps (AMap and Tencent use GCJ-02, Baidu uses BD-09) have no EPSG code and
cannot be detected, only declared: pass ``crs="gcj02"`` or ``crs="bd09"``.

CGCS2000 (EPSG:4490) is treated as WGS84; the two agree to within centimetres.

Examples
--------
>>> lon, lat = wgs84_to_gcj02(113.13, 27.83)   # Zhuzhou
>>> back = gcj02_to_wgs84(lon, lat)
>>> bool(abs(back[0] - 113.13) < 1e-7)
True
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Literal

import numpy as np
import pyproj
import shapely

from gridkit.errors import CRSError

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = [
    "WGS84",
    "Datum",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "check_lonlat_bounds",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "in_china",
    "is_wgs84",
    "like_input",
    "local_metric_crs",
    "lonlat_to_local_metric",
    "parse_crs",
    "result_crs",
    "to_metric",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

WGS84 = pyproj.CRS.from_epsg(4326)
CHINESE_DATUMS = ("gcj02", "bd09")
Datum = pyproj.CRS | Literal["gcj02", "bd09"]

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 obfuscation.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0


def in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Boolean mask of points inside the rectangle where GCJ-02 applies.

    The rectangle (72.004-137.8347 E, 0.8293-55.8271 N) is the one the map SDKs
    use; points outside it are never shifted.

    Examples
    --------
    >>> in_china([113.13, 2.35], [27.83, 48.86])   # Zhuzhou, Paris
    array([ True, False])
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _gcj_delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = lon - 105.0
    y = lat - 35.0
    sx = np.sqrt(np.abs(x))
    dlat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * sx
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * sx
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    radlat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def _as_arrays(lon: object, lat: object) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def wgs84_to_gcj02(lon: object, lat: object) -> tuple[np.ndarray, np.ndarray]:
    """Shift WGS84 lon/lat to GCJ-02 (vectorised; points outside China unchanged).

    Examples
    --------
    In Zhuzhou the shift is about 670 m; Paris is left alone.

    >>> import pyproj
    >>> lon, lat = wgs84_to_gcj02(113.13, 27.83)
    >>> metres = pyproj.Geod(ellps="WGS84").inv(113.13, 27.83, lon, lat)[2]
    >>> bool(660 < metres < 680)
    True
    >>> [float(v) for v in wgs84_to_gcj02(2.35, 48.86)]
    [2.35, 48.86]
    """
    lon, lat = _as_arrays(lon, lat)
    dlon, dlat = _gcj_delta(lon, lat)
    inside = in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def gcj02_to_wgs84(lon: object, lat: object) -> tuple[np.ndarray, np.ndarray]:
    """Shift GCJ-02 lon/lat back to WGS84.

    GCJ-02 has no closed-form inverse; a fixed-point iteration on the forward shift
    converges to well under a millimetre in a few steps.

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(*wgs84_to_gcj02([113.13, 113.5], [27.83, 27.0]))
    >>> bool(np.allclose(lon, [113.13, 113.5], atol=1e-8) and np.allclose(lat, [27.83, 27.0]))
    True
    """
    glon, glat = _as_arrays(lon, lat)
    return _invert(wgs84_to_gcj02, glon, glat, (glon.copy(), glat.copy()), steps=6)


def _invert(forward, x: np.ndarray, y: np.ndarray, start, *, steps: int):
    """Fixed-point inversion of a datum shift: ``forward(inverse(x, y)) == (x, y)``;
    points outside China are left as they are (no shift applies there)."""
    ix, iy = start
    for _ in range(steps):
        fx, fy = forward(ix, iy)
        ix = ix - (fx - x)
        iy = iy - (fy - y)
    inside = in_china(x, y)
    return np.where(inside, ix, x), np.where(inside, iy, y)


def gcj02_to_bd09(lon: object, lat: object) -> tuple[np.ndarray, np.ndarray]:
    """Shift GCJ-02 lon/lat to Baidu's BD-09 (vectorised).

    Examples
    --------
    Baidu adds its own offset of about 0.0065 degrees east and 0.006 north:

    >>> lon, lat = gcj02_to_bd09(113.1358, 27.8269)
    >>> round(float(lon - 113.1358), 4), round(float(lat - 27.8269), 4)
    (0.0065, 0.0061)
    """
    x, y = _as_arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    inside = in_china(x, y)
    return (
        np.where(inside, z * np.cos(theta) + 0.0065, x),
        np.where(inside, z * np.sin(theta) + 0.006, y),
    )


def bd09_to_gcj02(lon: object, lat: object) -> tuple[np.ndarray, np.ndarray]:
    """Shift BD-09 lon/lat back to GCJ-02 (closed form refined by iteration).

    Examples
    --------
    >>> lon, lat = bd09_to_gcj02(*gcj02_to_bd09(113.1358, 27.8269))
    >>> bool(abs(lon - 113.1358) < 1e-8 and abs(lat - 27.8269) < 1e-8)
    True
    """
    blon, blat = _as_arrays(lon, lat)
    return _invert(gcj02_to_bd09, blon, blat, (blon - 0.0065, blat - 0.006), steps=4)


def wgs84_to_bd09(lon: object, lat: object) -> tuple[np.ndarray, np.ndarray]:
    """Shift WGS84 lon/lat to BD-09.

    Examples
    --------
    The same as GCJ-02 first, then Baidu's offset:

    >>> via_gcj02 = gcj02_to_bd09(*wgs84_to_gcj02(113.13, 27.83))
    >>> bool(np.allclose(wgs84_to_bd09(113.13, 27.83), via_gcj02))
    True
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: object, lat: object) -> tuple[np.ndarray, np.ndarray]:
    """Shift BD-09 lon/lat to WGS84.

    Examples
    --------
    >>> lon, lat = bd09_to_wgs84(*wgs84_to_bd09(113.13, 27.83))
    >>> bool(abs(lon - 113.13) < 1e-7 and abs(lat - 27.83) < 1e-7)
    True
    """
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


_TO_WGS84 = {"gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}
_FROM_WGS84 = {"gcj02": wgs84_to_gcj02, "bd09": wgs84_to_bd09}


def parse_crs(value: object) -> Datum:
    """Parse a declared datum: an EPSG code, ``"EPSG:4490"``, a pyproj CRS, ``gcj02`` or ``bd09``.

    Raises
    ------
    CRSError
        When the value names no known CRS.

    Examples
    --------
    >>> parse_crs("GCJ-02"), parse_crs("bd09")
    ('gcj02', 'bd09')
    >>> parse_crs("EPSG:4490").to_epsg(), parse_crs(32649).name
    (4490, 'WGS 84 / UTM zone 49N')
    >>> parse_crs("Beijing-ish")
    Traceback (most recent call last):
    ...
    gridkit.errors.CRSError: Unknown CRS 'Beijing-ish'.
    Hint: Declare an EPSG code such as 4326 or 'EPSG:4490', or 'gcj02' / 'bd09' ...
    """
    if isinstance(value, str):
        key = value.strip().lower().replace("-", "").replace("_", "")
        if key in CHINESE_DATUMS:
            return key  # type: ignore[return-value]
    try:
        return pyproj.CRS.from_user_input(value)
    except pyproj.exceptions.CRSError as exc:
        raise CRSError(
            f"Unknown CRS {value!r}.",
            hint="Declare an EPSG code such as 4326 or 'EPSG:4490', or 'gcj02' / 'bd09' "
            "for coordinates from Chinese web maps (AMap, Tencent, Baidu).",
        ) from exc


def _transform_lonlat(geoms: np.ndarray, func) -> np.ndarray:
    def apply(coords: np.ndarray) -> np.ndarray:
        lon, lat = func(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geoms, apply)


def shift_datum(gdf: gpd.GeoDataFrame, *, source: str, target: str) -> gpd.GeoDataFrame:
    """Shift lon/lat geometries between ``wgs84``, ``gcj02`` and ``bd09``.

    Used to bring data into GCJ-02 to overlay Chinese web tiles, and back.
    """
    if source == target:
        return gdf.copy()
    if source == "wgs84":
        func = _FROM_WGS84[target]
    elif target == "wgs84":
        func = _TO_WGS84[source]
    else:

        def func(lon, lat):
            return _FROM_WGS84[target](*_TO_WGS84[source](lon, lat))

    out = gdf.copy()
    out.geometry = _transform_lonlat(np.asarray(gdf.geometry.array), func)
    return out.set_crs(WGS84, allow_override=True)


def is_wgs84(crs: object) -> bool:
    """Whether ``crs`` is WGS84 longitude/latitude or taken as it (CGCS2000, EPSG:4490).

    Examples
    --------
    >>> is_wgs84("EPSG:4326"), is_wgs84(4490), is_wgs84(32649), is_wgs84(None)
    (True, True, False, False)
    """
    if crs is None:
        return False
    crs = pyproj.CRS.from_user_input(crs)
    return crs.equals(WGS84, ignore_axis_order=True) or crs.to_epsg() in (4326, 4490)


def to_wgs84(
    gdf: gpd.GeoDataFrame, *, crs: object = None, source: str = "<data>"
) -> gpd.GeoDataFrame:
    """Return ``gdf`` in WGS84, honouring a declared datum.

    Parameters
    ----------
    gdf
        Input layer, with or without a CRS.
    crs
        Declared datum. For ``gcj02``/``bd09`` the coordinates are lon/lat in that
        datum (the layer may be unlabelled or labelled WGS84, as web-map exports are).
        An EPSG code labels an unlabelled layer; it must agree with a layer's own CRS.
    source
        Name of the file/layer for messages.

    Raises
    ------
    CRSError
        Missing CRS, conflicting declaration, or coordinates impossible in the CRS.

    Examples
    --------
    An AMap (GCJ-02) point comes back about 670 m away, in WGS84; CGCS2000 is
    taken as WGS84; an unlabelled layer needs a declaration:

    >>> import geopandas as gpd, shapely
    >>> amap = gpd.GeoDataFrame(geometry=[shapely.Point(113.1358, 27.8269)])
    >>> out = to_wgs84(amap, crs="gcj02")
    >>> out.crs.to_epsg(), round(float(out.geometry.x[0]), 4), round(float(out.geometry.y[0]), 4)
    (4326, 113.13, 27.83)
    >>> to_wgs84(amap.set_crs(4490)).crs.to_epsg()
    4326
    >>> to_wgs84(amap, source="pois.geojson")
    Traceback (most recent call last):
    ...
    gridkit.errors.CRSError: pois.geojson has no coordinate reference system.
    Hint: Declare one with --crs / crs= (e.g. 4326, 4490, 32649, gcj02, bd09).
    """
    declared = None if crs is None else parse_crs(crs)
    if isinstance(declared, str):
        if gdf.crs is not None and not is_wgs84(gdf.crs):
            raise CRSError(
                f"{source}: declared datum {declared} but the data carries {gdf.crs.name}.",
                hint=f"{declared} coordinates are longitude/latitude; drop the declaration "
                "or re-export the data as lon/lat.",
            )
        check_lonlat_bounds(gdf, source=source, label=declared)
        return shift_datum(gdf.set_crs(WGS84, allow_override=True), source=declared, target="wgs84")
    if gdf.crs is None:
        if declared is None:
            raise CRSError(
                f"{source} has no coordinate reference system.",
                hint="Declare one with --crs / crs= (e.g. 4326, 4490, 32649, gcj02, bd09).",
            )
        gdf = gdf.set_crs(declared)
    elif declared is not None and not gdf.crs.equals(declared, ignore_axis_order=True):
        both_wgs84 = is_wgs84(gdf.crs) and is_wgs84(declared)
        if not both_wgs84:
            raise CRSError(
                f"{source} carries {gdf.crs.name} (EPSG:{gdf.crs.to_epsg()}) but "
                f"{declared.name} was declared.",
                hint="Remove the --crs declaration or fix the file's CRS.",
            )
    src = gdf.crs
    if src.is_geographic:
        check_lonlat_bounds(gdf, source=source, label=src.name)
    if is_wgs84(src):
        return gdf.set_crs(WGS84, allow_override=True)
    out = gdf.to_crs(WGS84)
    check_lonlat_bounds(out, source=source, label=f"{src.name} (after reprojection)")
    return out


def result_crs(gdf: gpd.GeoDataFrame | gpd.GeoSeries, crs: object = None) -> pyproj.CRS:
    """The CRS in which a function given ``gdf`` (declared as ``crs``) returns its results.

    gridkit's functions answer in the CRS of their primary input, as geopandas does:
    the CRS ``gdf`` carries, else the declared one. GCJ-02 and BD-09 are no pyproj CRS
    (they cannot label a GeoDataFrame): results for them come back in WGS84.
    Files and the store are WGS84 whatever the input was.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> pts = gpd.GeoDataFrame(geometry=[shapely.Point(385_000, 6_672_000)], crs=3067)
    >>> result_crs(pts).to_epsg(), result_crs(pts.set_crs(None, allow_override=True), 32649).name
    (3067, 'WGS 84 / UTM zone 49N')
    >>> result_crs(pts.set_crs(4326, allow_override=True), "gcj02").to_epsg()
    4326
    """
    declared = None if crs is None else parse_crs(crs)
    if isinstance(declared, str):
        return WGS84
    if gdf.crs is not None:
        return pyproj.CRS.from_user_input(gdf.crs)
    return WGS84 if declared is None else declared


def like_input(result, crs: pyproj.CRS, *, given=None):
    """``result`` (a GeoDataFrame or GeoSeries) in ``crs``: one ``to_crs`` for the frame.

    Nothing is copied when ``result`` is already in ``crs``. CGCS2000 (EPSG:4490) is
    taken as WGS84 on the way in (:func:`to_wgs84` relabels it), so it is relabelled on
    the way out, keeping coordinates exact. ``given``, the input whose rows ``result``
    carries (same index, its geometry only reprojected), gives its own geometry back
    untouched instead of a reprojected copy (``result`` a GeoDataFrame).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> units = gpd.GeoDataFrame(geometry=[shapely.box(113.1, 27.8, 113.11, 27.81)], crs=4326)
    >>> like_input(units, pyproj.CRS.from_epsg(32649)).crs.to_epsg()
    32649
    >>> back = like_input(units, pyproj.CRS.from_epsg(4490))
    >>> back.crs.to_epsg(), bool(back.geom_equals_exact(units, tolerance=0).all())
    (4490, True)
    >>> like_input(units, WGS84) is units
    True
    """
    if result.crs is None or result.crs.is_exact_same(crs):
        return result
    if given is not None and given.crs is not None and given.crs.is_exact_same(crs):
        out = result.copy(deep=False)  # only the geometry column is replaced
        out[out.geometry.name] = given.geometry.array  # carries its CRS: the frame's now
        return out
    if is_wgs84(result.crs) and is_wgs84(crs):
        return result.set_crs(crs, allow_override=True)
    return result.to_crs(crs)


def check_lonlat_bounds(gdf: gpd.GeoDataFrame, *, source: str, label: str = "WGS84") -> None:
    """Refuse coordinates that cannot be longitude/latitude (projected metres, say).

    Raises
    ------
    CRSError
        Naming ``source``, the span of the coordinates and the fix.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> check_lonlat_bounds(gpd.GeoDataFrame(geometry=[shapely.Point(113.1, 27.8)]), source="a")
    >>> check_lonlat_bounds(gpd.GeoDataFrame(geometry=[shapely.Point(7e5, 3e6)]), source="b.gpkg")
    Traceback (most recent call last):
    ...
    gridkit.errors.CRSError: b.gpkg: coordinates span x 700000..700000, y 3e+06..3e+06, ...

    Latitudes in the x column and longitudes in the y column are named as such:

    >>> check_lonlat_bounds(gpd.GeoDataFrame(geometry=[shapely.Point(27.7, 113.0)]), source="c")
    Traceback (most recent call last):
    ...
    gridkit.errors.CRSError: c: ...: the columns look swapped (lat, lon).
    Hint: ...
    """
    if len(gdf) == 0:
        return
    minx, miny, maxx, maxy = gdf.total_bounds
    if not np.all(np.isfinite([minx, miny, maxx, maxy])):
        return  # all-empty geometries are reported by the schema check
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        if -90 <= minx and maxx <= 90 and -180 <= miny and maxy <= 180:
            raise CRSError(
                f"{source}: coordinates span x {minx:.6g}..{maxx:.6g}, y {miny:.6g}..{maxy:.6g}"
                ": the columns look swapped (lat, lon).",
                hint="Latitude is in the x/lon column and longitude in the y/lat one: swap "
                "them in the file, or rename on reading, e.g. --columns lon=lat --columns "
                "lat=lon (经度/纬度, x/y: your column names).",
            )
        raise CRSError(
            f"{source}: coordinates span x {minx:.6g}..{maxx:.6g}, y {miny:.6g}..{maxy:.6g}, "
            f"which cannot be longitude/latitude in {label}.",
            hint="These look like projected metres: declare the real CRS with --crs / crs= "
            "(e.g. 32649 for UTM 49N, 4547 for CGCS2000 3-degree GK zone 38).",
        )


def degrees_around(lat: object, metres: object) -> tuple[np.ndarray, np.ndarray]:
    """Half-widths (longitude, latitude) in degrees of a box around points at ``lat``
    that holds everything within ``metres`` of them, 1.5 times over (room for the
    scale of a metric projection).

    A degree of latitude is at least 110.5 km; a degree of longitude that times the
    cosine of the latitude, taken at the box's edge farthest from the equator.

    Examples
    --------
    >>> dlon, dlat = degrees_around(27.8, 50.0)
    >>> bool(dlat * 110_574 >= 50 and dlon * 111_320 * np.cos(np.radians(27.8)) >= 50)
    True
    """
    dlat = 1.5 * np.asarray(metres, dtype=float) / 110_000.0
    coslat = np.cos(np.radians(np.minimum(np.abs(np.asarray(lat, dtype=float)) + dlat, 89.9)))
    return dlat / coslat, dlat


def local_metric_crs(gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> pyproj.CRS:
    """The UTM zone (WGS84 datum) around the centre of the data's bounds.

    Lengths and areas in gridkit are computed in this CRS and reported in metres.

    Raises
    ------
    CRSError
        For data without a CRS, or an empty layer.

    Examples
    --------
    >>> import geodata
    >>> local_metric_crs(geodata.zhuzhou_admin()).to_epsg()   # UTM zone 49N
    32649
    """
    if gdf.crs is None:
        raise CRSError(
            "Cannot pick a metric CRS for data without a CRS.",
            hint="Read the data with crs= declared.",
        )
    src = gdf.crs
    if src.is_projected and src.axis_info[0].unit_name in ("metre", "meter"):
        return src
    bounds = gdf.to_crs(WGS84).total_bounds if not is_wgs84(src) else (gdf.total_bounds)
    if not np.all(np.isfinite(bounds)):
        raise CRSError("Cannot pick a metric CRS for an empty layer.")
    return utm_zone_crs((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)


def utm_zone_crs(lon: float, lat: float) -> pyproj.CRS:
    """The UTM zone (WGS84 datum) of a point, e.g. EPSG:32649 for Zhuzhou.

    Examples
    --------
    >>> utm_zone_crs(113.13, 27.83).to_epsg(), utm_zone_crs(-70.6, -33.4).to_epsg()
    (32649, 32719)
    """
    return _epsg(_utm_code(lon, lat))


def _utm_code(lon: float, lat: float) -> int:
    zone = int(np.clip(np.floor((lon + 180) / 6) + 1, 1, 60))
    return (32600 if lat >= 0 else 32700) + zone


def lonlat_to_local_metric(
    *arrays: np.ndarray, around: np.ndarray | None = None
) -> list[np.ndarray]:
    """Geometries in WGS84 lon/lat projected to the UTM zone around the centre of the
    bounds of ``around`` (default: of all ``arrays``): each array as
    ``GeoSeries(a, crs=WGS84).to_crs(local_metric_crs(GeoSeries(around, crs=WGS84)))``
    gives it (the same coordinates), without the series, for small arrays taken many
    times (a batch of reports and its duplicate candidates).

    Missing geometries stay missing; Z is dropped (x and y are projected).

    Raises
    ------
    CRSError
        When ``around`` (by default the arrays) holds no coordinate.

    Examples
    --------
    >>> a, b = lonlat_to_local_metric(shapely.points([(113.13, 27.83)]),
    ...                               shapely.points([(113.1301, 27.83)]))
    >>> round(float(shapely.distance(a[0], b[0])), 1)  # 0.0001 degree of longitude
    9.9
    """
    if around is None:
        around = np.concatenate([np.asarray(a, dtype=object) for a in arrays])
    bounds = shapely.total_bounds(around)
    if not np.all(np.isfinite(bounds)):
        raise CRSError("Cannot pick a metric CRS for an empty layer.")
    forward = _from_wgs84(_utm_code((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2))

    def project(xy: np.ndarray) -> np.ndarray:
        x, y = forward.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return [shapely.transform(np.asarray(a, dtype=object), project) for a in arrays]


@functools.lru_cache(maxsize=128)
def _from_wgs84(code: int) -> pyproj.Transformer:
    # one per zone (pyproj keeps a copy per thread): looked up by an int, where a
    # GeoSeries.to_crs per batch cost ~1 ms in series and CRS handling
    return pyproj.Transformer.from_crs(WGS84, _epsg(code), always_xy=True)


@functools.lru_cache(maxsize=128)
def _epsg(code: int) -> pyproj.CRS:
    # one CRS object per code: building one costs more than projecting a few points
    return pyproj.CRS.from_epsg(code)


def to_metric(gdf: gpd.GeoDataFrame, crs: pyproj.CRS | None = None) -> gpd.GeoDataFrame:
    """Project ``gdf`` to ``crs`` or to :func:`local_metric_crs` of itself.

    Examples
    --------
    >>> import geodata
    >>> city = geodata.zhuzhou_admin().query("level == 'city'")
    >>> metric = to_metric(city)
    >>> metric.crs.to_epsg(), round(float(metric.area.sum()) / 1e6, -2)   # km2
    (32649, 11300.0)
    """
    return gdf.to_crs(crs if crs is not None else local_metric_crs(gdf))
