"""Checks of community grid units: coverage, overlaps, contiguity, nesting, households,
cut footprints. Called by :func:`gridkit.validate.units.validate_units` for units of kind
``community_grid``.

Areas are compared in a local metric CRS with the one tolerance rule of
:mod:`gridkit.validate.tiling`: overlaps, gaps and spills whose every piece is thinner
than 1 cm or under 1 m² are noise (overlays run on a 1 mm grid and the layer goes
through WGS84); a footprint counts as cut when a unit other than its own holds a
part of it thicker than 1 cm.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import STRtree

from gridkit.crs import local_metric_crs
from gridkit.errors import format_rows
from gridkit.validate.report import ValidationReport
from gridkit.validate.tiling import (
    EXACT_M2,
    TOLERANCE,
    overlap_text,
    overlaps,
    polygon_parts,
    report_noise,
)

__all__ = ["community_problems"]

REL_TOL = 1e-6


def community_problems(
    units: gpd.GeoDataFrame,
    *,
    communities: gpd.GeoDataFrame | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    max_households: int | None = None,
) -> ValidationReport:
    """Validate community grid units.

    Parameters
    ----------
    units
        ``units`` layer; only rows with ``kind == "community_grid"`` are checked.
    communities
        When given: every community is covered exactly by its units (``gap``), units
        lie inside their parent (``not_nested``), parents exist (``unknown_parent``).
    buildings
        When given: no footprint is cut by a unit boundary inside its community
        (``cut_footprint``); unit households match the buildings' (``households``,
        warning) when the buildings carry a ``households`` column.
    max_households
        When given: units above it are ``over_cap`` (a warning when the unit holds a
        single building, which is allowed).

    Returns
    -------
    ValidationReport
        Always checked: ``not_polygon`` (each unit one contiguous Polygon),
        ``invalid_geometry``, ``overlap``. Figures: ``community_units``,
        ``max_households``, ``mean_polsby_popper``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> units = gpd.GeoDataFrame({"unit_id": ["C1-001", "C1-002"], "kind": "community_grid",
    ...     "parent_id": "C1", "admin_code": "4302", "households": [40, 50]},
    ...     geometry=[box(0, 0, 10, 10), box(5, 0, 20, 10)], crs=32649)
    >>> [p.code for p in community_problems(units, max_households=45).problems]
    ['overlap', 'over_cap']
    """
    rep = ValidationReport()
    if "kind" in units.columns:
        units = units[units["kind"] == "community_grid"]
    if len(units) == 0:
        return rep
    crs = local_metric_crs(units)
    um = units.to_crs(crs)
    g = np.asarray(um.geometry.array)
    ids = um["unit_id"].astype(str).to_numpy()
    area = shapely.area(g)

    t = shapely.get_type_id(g)
    not_poly = t != 3
    if not_poly.any():
        rep.add(
            "not_polygon",
            f"units {format_rows(ids[not_poly])} are not one contiguous "
            "Polygon (multipart or other type); a grid unit must be one piece.",
            ids[not_poly],
        )
    invalid = ~shapely.is_valid(g)
    if invalid.any():
        rep.add(
            "invalid_geometry",
            f"units {format_rows(ids[invalid])} have invalid "
            f"geometry ({shapely.is_valid_reason(g[invalid])[0]}).",
            ids[invalid],
        )
    valid = ~invalid
    _overlaps(rep, g, ids, crs)

    hh = None
    if "households" in um.columns:
        hh = pd.to_numeric(um["households"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if max_households is not None and hh is not None:
        over = hh > max_households
        if over.any():
            single = (
                over & (um["n_buildings"].to_numpy() <= 1)
                if "n_buildings" in um
                else np.zeros(len(um), dtype=bool)
            )
            many = over & ~single
            if many.any():
                rep.add(
                    "over_cap",
                    f"units {format_rows(ids[many])} hold more than {max_households} households.",
                    ids[many],
                )
            if single.any():
                rep.add(
                    "over_cap",
                    f"units {format_rows(ids[single])} hold one building "
                    f"above the cap of {max_households} households (allowed).",
                    ids[single],
                    severity="warning",
                )

    if communities is not None:
        _coverage(rep, um, g, ids, valid, communities.to_crs(crs))
    if buildings is not None:
        _footprints(rep, um, g, ids, hh, buildings.to_crs(crs), max_households)

    rep.figures["community_units"] = float(len(um))
    if hh is not None and np.isfinite(hh).any():
        rep.figures["max_households"] = float(np.nanmax(hh))
    perim = shapely.length(g)
    rep.figures["mean_polsby_popper"] = float(
        np.mean(np.where(perim > 0, 4 * np.pi * area / np.maximum(perim, 1e-12) ** 2, 0))
    )
    return rep


def _overlaps(rep: ValidationReport, g: np.ndarray, ids: np.ndarray, crs: object) -> None:
    """Real overlaps (``overlap``: both ids, area, where) and noise (``slivers``)."""
    found = overlaps(g, crs=crs)
    if found.real.any():
        real = np.flatnonzero(found.real)
        rep.add(
            "overlap",
            f"units overlap: {format_rows(overlap_text(ids, found, real))}.",
            np.r_[ids[found.first[real]], ids[found.second[real]]],
        )
    if len(found):
        report_noise(rep, found, ~found.real)


def _real(pieces: np.ndarray, *, width_only: bool = False) -> np.ndarray:
    """Per geometry: does any of its parts exceed the noise of the tiling rule?"""
    parts, owner = shapely.get_parts(pieces, return_index=True)
    poly = (shapely.get_dimensions(parts) == 2) & (shapely.area(parts) >= EXACT_M2)
    parts, owner = parts[poly], owner[poly]
    big = ~(TOLERANCE.thin(parts) if width_only else TOLERANCE.noise(parts))
    return np.bincount(owner, weights=big, minlength=len(pieces)) > 0


def _coverage(
    rep: ValidationReport,
    um: gpd.GeoDataFrame,
    g: np.ndarray,
    ids: np.ndarray,
    valid: np.ndarray,
    cm: gpd.GeoDataFrame,
) -> None:
    cid = cm["community_id"].astype(str).to_numpy()
    cg = np.asarray(cm.geometry.array)
    parent = um["parent_id"].astype(str).to_numpy()
    unknown = ~np.isin(parent, cid)
    if unknown.any():
        rep.add(
            "unknown_parent",
            f"units {format_rows(ids[unknown])} name a parent community "
            "that is not in the communities layer.",
            ids[unknown],
        )
    gaps, outside = [], []
    for k, c in enumerate(cid):
        sel = (parent == c) & valid
        if not sel.any():
            gaps.append(f"{c} (no units)")
            continue
        u = shapely.union_all(g[sel])
        gap = shapely.difference(cg[k], u)
        if _real(np.array([gap]))[0]:
            gaps.append(f"{c} ({shapely.area(gap):.1f} m² uncovered)")
        bad = _real(shapely.difference(g[sel], cg[k]))
        outside += list(ids[sel][bad])
    if gaps:
        rep.add(
            "gap",
            f"communities not covered exactly by their units: {format_rows(gaps)}.",
            [x.split(" ")[0] for x in gaps],
        )
    if outside:
        rep.add(
            "not_nested", f"units {format_rows(outside)} extend outside their community.", outside
        )


def _footprints(
    rep: ValidationReport,
    um: gpd.GeoDataFrame,
    g: np.ndarray,
    ids: np.ndarray,
    hh: np.ndarray | None,
    bm: gpd.GeoDataFrame,
    cap: int | None,
) -> None:
    bg = np.array(bm.geometry.array, dtype=object)
    # invalid footprints are repaired as the splitter repairs them (make_valid, polygon
    # parts): a self-touching OSM way becomes the multi-part footprint it stands for
    broken = np.isin(shapely.get_type_id(bg), (3, 6)) & ~shapely.is_valid(bg)
    bg[broken] = polygon_parts(shapely.make_valid(bg[broken]))
    parent = um["parent_id"].astype(str).to_numpy()
    bid = (bm["building_id"] if "building_id" in bm else pd.Series(bm.index)).astype(str)
    bid = bid.to_numpy()
    # each building's community: the parent of the unit holding its representative point
    ui, bi = STRtree(shapely.point_on_surface(bg)).query(g, predicate="intersects")
    home = np.full(len(bg), -1, dtype=np.int64)
    home[bi] = ui
    poly = np.flatnonzero(
        np.isin(shapely.get_type_id(bg), (3, 6)) & shapely.is_valid(bg) & (home >= 0)
    )
    if len(poly):
        bi2, ui2 = STRtree(g).query(bg[poly], predicate="intersects")
        b, u = poly[bi2], ui2
        same = parent[u] == parent[home[b]]
        b, u = b[same], u[same]
        pieces = shapely.intersection(bg[b], g[u])
        inter = shapely.area(pieces)
        fa = shapely.area(bg[b])
        # a unit holds part of a footprint when that part is more than noise: thicker
        # than 1 cm somewhere (the splitter draws on the 1 mm grid, so a footprint as
        # given may cross its unit's edge by a hair)
        whole = inter >= fa * (1 - REL_TOL)
        hit = whole.copy()
        partial = np.flatnonzero(~whole & (inter >= EXACT_M2))
        hit[partial] = _real(pieces[partial], width_only=True)
        df = pd.DataFrame({"b": b, "u": u, "a": inter, "hit": hit})
        per_b = df.groupby("b").agg(n=("hit", "sum"), a=("a", "sum"))
        inside = per_b["a"].to_numpy() >= shapely.area(
            bg[per_b.index.to_numpy()]
        ) - 0.05 - 1e-4 * shapely.area(bg[per_b.index.to_numpy()])  # straddlers are reported apart
        cut = per_b.index[(per_b["n"].to_numpy() > 1) & inside].to_numpy()
        if len(cut):
            rep.add(
                "cut_footprint",
                f"buildings {format_rows(bid[cut])} are cut by a unit "
                "boundary inside their community.",
                bid[cut],
            )
        # a building counts in the unit holding most of its footprint (clusters go whole)
        best = df.sort_values(["b", "a"], ascending=[True, False]).drop_duplicates("b")
        home[best["b"].to_numpy()] = best["u"].to_numpy()
    if hh is not None and "households" in bm.columns:
        raw = pd.to_numeric(bm["households"], errors="coerce")
        bh = raw.fillna(0).to_numpy()
        inside = home >= 0
        sums = np.bincount(home[inside], weights=bh[inside], minlength=len(g))
        # units holding buildings without households carry estimates: not comparable
        estimated = (
            np.bincount(home[inside], weights=raw.isna().to_numpy()[inside], minlength=len(g)) > 0
        )
        diff = np.isfinite(hh) & ~estimated & (np.abs(sums - hh) > 0.5)
        if diff.any():
            rep.add(
                "households",
                f"units {format_rows(ids[diff])} report households that "
                "differ from the sum of their buildings.",
                ids[diff],
                severity="warning",
            )
    # over-cap units holding one building cluster are allowed: downgrade to a warning
    over = [k for k, p in enumerate(rep.problems) if p.code == "over_cap" and p.severity == "error"]
    for k in over:
        p = rep.problems[k]
        single = []
        for uid in p.rows:
            u = int(np.flatnonzero(ids == uid)[0])
            bh = (
                pd.to_numeric(bm["households"], errors="coerce").fillna(1).to_numpy()
                if "households" in bm.columns
                else np.ones(len(bg))
            )
            # empty buildings may share the unit; the households sit in one cluster
            mine = bg[(home == u) & (bh > 0)]
            heavy = bh[home == u].sum() > cap
            if len(mine) and heavy and shapely.get_type_id(shapely.union_all(mine)) == 3:
                single.append(uid)
        if single:
            rest = [r for r in p.rows if r not in single]
            rep.problems.pop(k)
            if rest:
                rep.add("over_cap", f"units {format_rows(rest)} hold more than the cap.", rest)
            rep.add(
                "over_cap",
                f"units {format_rows(single)} hold one building cluster above the cap (allowed).",
                single,
                severity="warning",
            )
