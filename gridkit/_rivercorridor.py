"""Corridor units: the corridor of every reach, shared by nearest reach within each area."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit._riveradmin import Tiling
from gridkit.validate import ValidationReport

__all__ = ["corridor_units"]

_MIN_PART_M2 = 1e-3  # polygon parts smaller than this are clipping noise


def _samples(geoms: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Points along each reach; the first and last sit at the same small offset from
    the ends, so the Voronoi edge between consecutive reaches passes through their cut."""
    length = shapely.length(geoms)
    h0 = np.minimum(spacing / 4.0, length / 4.0)
    n = np.maximum(np.ceil((length - 2 * h0) / spacing), 1).astype(np.int64)
    owner = np.repeat(np.arange(len(geoms)), n + 1)
    i = np.arange(owner.size) - np.repeat(np.cumsum(n + 1) - (n + 1), n + 1)
    m = h0[owner] + (length - 2 * h0)[owner] * i / n[owner]
    xy = shapely.get_coordinates(shapely.line_interpolate_point(geoms[owner], m))
    return xy, owner


def _partition(avail, members, xy, owner, env):
    """Split ``avail`` among ``members`` by nearest sample point (Voronoi)."""
    if len(members) == 1:
        return [avail]
    sel = np.isin(owner, members)
    pts, who = xy[sel], owner[sel]
    pts_r, first = np.unique(np.round(pts, 6), axis=0, return_index=True)
    who = who[first]
    if len(pts_r) < 2:
        return [avail if m == who[0] else shapely.Polygon() for m in members]
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(pts_r), extend_to=env, ordered=True)
    )
    order = np.argsort(who, kind="stable")
    who_s, cells_s = who[order], cells[order]
    bounds = np.searchsorted(who_s, members, side="left")
    ends = np.searchsorted(who_s, members, side="right")
    # one union per reach of the area (a loop over reaches of one area, each a GEOS call
    # on an exact Voronoi coverage)
    regions = np.array(
        [
            shapely.coverage_union_all(cells_s[s:e]) if e > s else shapely.Polygon()
            for s, e in zip(bounds, ends, strict=True)
        ],
        dtype=object,
    )
    shapely.prepare(avail)
    return list(shapely.intersection(regions, avail))


def corridor_units(
    reaches: gpd.GeoDataFrame,
    tiling: Tiling,
    *,
    corridor_m: float,
    water_bodies: gpd.GeoDataFrame | None,
    version: int,
    report: ValidationReport,
) -> gpd.GeoDataFrame:
    """Units for the reaches (and water bodies), all in the reaches' metric CRS."""
    geoms = np.asarray(reaches.geometry.array)
    buffers = shapely.buffer(geoms, corridor_m)
    code_idx = {c: i for i, c in enumerate(tiling.codes)}
    bnd = reaches["boundary"].to_numpy(bool)
    own = np.array([code_idx[c] for c in reaches["admin_code"]], dtype=np.int64)
    rid = reaches["reach_id"].to_numpy()
    rank = reaches["rank"].to_numpy()

    # (reach, area, bank): every reach in its area; boundary reaches in both banks' areas
    mem_r = [np.flatnonzero(~bnd)]
    mem_a = [own[~bnd]]
    mem_b = [np.full((~bnd).sum(), "both", dtype=object)]
    if bnd.any():
        bi = np.flatnonzero(bnd)
        for col, bank in (("left_code", "left"), ("right_code", "right")):
            mem_r.append(bi)
            mem_a.append(np.array([code_idx[c] for c in reaches[col].to_numpy()[bi]]))
            mem_b.append(np.full(len(bi), bank, dtype=object))
    mem_r, mem_a, mem_b = (np.concatenate(x) for x in (mem_r, mem_a, mem_b))
    order = np.lexsort((mem_r, mem_a))
    mem_r, mem_a, mem_b = mem_r[order], mem_a[order], mem_b[order]

    xy, owner = _samples(geoms, corridor_m / 2.0)

    wb_geoms = wb_ids = None
    wb_tree = None
    if water_bodies is not None and len(water_bodies):
        wb_geoms = np.asarray(water_bodies.geometry.array)
        wb_ids = water_bodies["water_body_id"].astype(str).to_numpy()
        wb_tree = shapely.STRtree(wb_geoms)

    out_geom, out_r, out_a, out_bank = [], [], [], []
    areas, starts = np.unique(mem_a, return_index=True)
    ends = np.r_[starts[1:], len(mem_a)]
    # a loop over areas: each step is vectorised GEOS work on the reaches of one area
    for a, s, e in zip(areas, starts, ends, strict=True):
        area_geom = tiling.geoms[a]
        members, banks = mem_r[s:e], mem_b[s:e]
        water = None
        if wb_tree is not None:
            near = wb_tree.query(area_geom, predicate="intersects")
            if len(near):
                water = shapely.union_all(wb_geoms[near])
        claimed = None
        for rk in np.unique(rank[members]):
            sel = rank[members] == rk
            mem, bk = members[sel], banks[sel]
            avail = shapely.intersection(shapely.union_all(buffers[mem]), area_geom)
            if water is not None:
                avail = shapely.difference(avail, water)
            if claimed is not None:
                avail = shapely.difference(avail, claimed)
            if shapely.is_empty(avail):
                continue
            claimed = avail if claimed is None else shapely.union(claimed, avail)
            env = shapely.buffer(shapely.envelope(avail), corridor_m)
            regions = _partition(avail, mem, xy, owner, env)
            out_geom += regions
            out_r.append(mem)
            out_a.append(np.full(len(mem), a))
            out_bank.append(bk)

    cols = [
        "unit_id",
        "kind",
        "parent_id",
        "reach_id",
        "admin_code",
        "bank",
        "length_m",
        "area_m2",
        "version",
    ]
    frames = []
    if out_geom:
        g = np.array(out_geom, dtype=object)
        r = np.concatenate(out_r)
        a = np.concatenate(out_a)
        bank = np.concatenate(out_bank)
        parts, idx = shapely.get_parts(g, return_index=True)
        poly = shapely.get_type_id(parts) == 3
        parts, idx = parts[poly], idx[poly]
        big = shapely.area(parts) >= _MIN_PART_M2
        parts, idx = parts[big], idx[big]
        df = pd.DataFrame({"i": idx, "area_m2": shapely.area(parts), "geometry": parts})
        df = df.sort_values(["i", "area_m2"], ascending=[True, False], kind="stable")
        df["part"] = df.groupby("i").cumcount() + 1
        i = df["i"].to_numpy()
        suffix = np.where(bank[i] == "left", "-L", np.where(bank[i] == "right", "-R", ""))
        part_sfx = np.where(df["part"] > 1, "-" + df["part"].astype(str), "")
        unit_id = rid[r[i]].astype(str) + suffix + part_sfx
        frames.append(
            pd.DataFrame(
                {
                    "unit_id": unit_id.astype(object),
                    "kind": "river_reach",
                    "parent_id": reaches["river_id"].to_numpy()[r[i]],
                    "reach_id": rid[r[i]],
                    "admin_code": tiling.codes[a[i]].astype(object),
                    "bank": bank[i],
                    "length_m": reaches["length_m"].to_numpy()[r[i]],
                    "area_m2": df["area_m2"].to_numpy(),
                    "version": version,
                    "geometry": df["geometry"].to_numpy(),
                }
            )
        )
        multi = df.loc[df["part"] > 1, "i"].unique()
        if len(multi):
            ids = sorted(set(rid[r[multi]]))
            report.add(
                "multipart_unit",
                f"the corridors of {len(ids)} reach(es) fall apart into several polygons "
                "(the river leaves and re-enters its area, or the corridor is cut by a "
                "neighbour); extra parts get ids with -2, -3, ...",
                rows=ids,
                severity="warning",
            )
        have = np.zeros(len(rid), dtype=bool)
        have[r[i]] = True
    else:
        have = np.zeros(len(rid), dtype=bool)
    if (~have).any():
        ids = list(rid[~have])
        report.add(
            "no_corridor",
            f"{len(ids)} reach(es) got no corridor unit (their corridor is covered by a "
            "water body or a main stem).",
            rows=ids,
            severity="warning",
        )

    if wb_tree is not None:
        wi, ai = tiling.tree.query(wb_geoms, predicate="intersects")
        inter = shapely.intersection(wb_geoms[wi], tiling.geoms[ai])
        parts, idx = shapely.get_parts(inter, return_index=True)
        poly = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) >= _MIN_PART_M2)
        parts, idx = parts[poly], idx[poly]
        df = pd.DataFrame({"i": idx, "area_m2": shapely.area(parts), "geometry": parts})
        df = df.sort_values(["i", "area_m2"], ascending=[True, False], kind="stable")
        df["part"] = df.groupby("i").cumcount() + 1
        i = df["i"].to_numpy()
        code = tiling.codes[ai[i]]
        wid = wb_ids[wi[i]]
        part_sfx = np.where(df["part"] > 1, "-" + df["part"].astype(str), "")
        frames.append(
            pd.DataFrame(
                {
                    "unit_id": (code.astype(str) + "-" + wid.astype(str) + part_sfx).astype(object),
                    "kind": "water_body",
                    "parent_id": wid.astype(object),
                    "reach_id": None,
                    "admin_code": code.astype(object),
                    "bank": None,
                    "length_m": np.nan,
                    "area_m2": df["area_m2"].to_numpy(),
                    "version": version,
                    "geometry": df["geometry"].to_numpy(),
                }
            )
        )
        inside = shapely.area(inter)
        total = pd.Series(inside).groupby(wi).sum().reindex(range(len(wb_geoms)), fill_value=0)
        outside = shapely.area(wb_geoms) - total.to_numpy() > 1.0
        if outside.any():
            ids = list(wb_ids[outside])
            report.add(
                "outside_areas",
                f"water bodies {', '.join(ids)} lie partly outside every admin area; only "
                "the parts inside became units.",
                rows=ids,
                severity="warning",
            )
    if frames:
        units = pd.concat(frames, ignore_index=True)
    else:
        units = pd.DataFrame({c: pd.Series(dtype=object) for c in [*cols, "geometry"]})
    units["version"] = units["version"].astype("int64")
    return gpd.GeoDataFrame(units, geometry="geometry", crs=reaches.crs)
