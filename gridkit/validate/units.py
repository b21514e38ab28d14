"""Validation of grid layers: one report format for river and community grids.

:func:`validate_units` runs the checks that apply to the units given (river reaches,
water bodies, community grids) and returns a :class:`ValidationReport`; the CLI
``gridkit validate`` prints it and exits 1 when it holds errors.

Check modules add :class:`Problem` entries: a stable ``code`` (``"overlap"``,
``"gap"``, ``"length_not_conserved"``...), a readable ``message`` that says where and
what to do, the offending ``rows`` (unit or reach ids) and a ``severity``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["Problem", "ValidationReport", "validate_units"]


@dataclass(frozen=True)
class Problem:
    """One problem found by validation."""

    code: str
    message: str
    rows: tuple[str, ...] = ()
    severity: Literal["error", "warning"] = "error"


@dataclass
class ValidationReport:
    """Problems and figures from a validation run. ``ok`` when there is no error."""

    problems: list[Problem] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def add(self, code: str, message: str, rows=(), severity="error") -> None:
        self.problems.append(Problem(code, message, tuple(map(str, rows)), severity))

    def extend(self, other: ValidationReport) -> ValidationReport:
        self.problems += other.problems
        self.figures.update(other.figures)
        return self

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [(p.severity, p.code, p.message, ", ".join(p.rows)) for p in self.problems],
            columns=["severity", "code", "message", "rows"],
        )

    def __str__(self) -> str:
        if not self.problems:
            return "valid: no problems found"
        lines = [
            f"{len(self.errors)} error(s), {len(self.problems) - len(self.errors)} warning(s):"
        ]
        lines += [f"  [{p.severity}] {p.code}: {p.message}" for p in self.problems]
        return "\n".join(lines)


# --------------------------------------------------------------------------- checks

_AREA_TOL_M2 = 1.0  # overlaps / spills smaller than this are noise of the float grid


def validate_units(
    units: gpd.GeoDataFrame,
    *,
    reaches: gpd.GeoDataFrame | None = None,
    rivers: gpd.GeoDataFrame | None = None,
    admin_areas: gpd.GeoDataFrame | None = None,
    boundary: gpd.GeoDataFrame | None = None,
    max_length_m: float | None = None,
    min_length_m: float | None = None,
    rel_tol: float = 1e-4,
    communities: gpd.GeoDataFrame | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    max_households: int | None = None,
) -> ValidationReport:
    """Validate grid units (and the reaches behind river units).

    Checks run by what is given: the units themselves (contract, unique ids, no
    overlaps), units inside their admin area (``admin_areas``) or inside
    ``boundary``; for river units with ``reaches``: every unit's reach exists, reach
    lengths match their lines, ``seq`` runs 1..n per river, no reach longer than
    ``max_length_m`` (error) or shorter than ``min_length_m`` (warning), every
    non-boundary reach inside one area of the finest level (``admin_areas``), and,
    with ``rivers`` and ``admin_areas``, the reaches of each river add up to its
    length inside the areas (to ``rel_tol``). Community grids are checked for
    contiguity and, with ``communities``, ``buildings`` and ``max_households``, for
    exact coverage, nesting, cut footprints and the household cap
    (:func:`gridkit.validate.communities.community_problems`).

    Returns
    -------
    ValidationReport
        ``.ok`` is False when any error was found; ``str(report)`` is readable.

    Examples
    --------
    >>> import geodata
    >>> from gridkit.rivers.split import split_rivers
    >>> admin = geodata.zhuzhou_admin()
    >>> reaches, units = split_rivers(geodata.xiang_river(), admin, max_length_m=5000)
    >>> validate_units(units, reaches=reaches, admin_areas=admin, max_length_m=5000).ok
    True
    """
    import geopandas as gpd
    import shapely

    from gridkit.crs import local_metric_crs
    from gridkit.errors import InvalidLayerError
    from gridkit.layers import WATER_KINDS, check_layer

    report = ValidationReport()
    try:
        units = check_layer(units, "units", source="units")
    except InvalidLayerError as exc:
        for p in exc.problems or [exc.message]:
            report.add("invalid_layer", f"units: {p}", rows=())
        return report
    metric = local_metric_crs(units)
    um = units.to_crs(metric)
    report.figures["units"] = float(len(um))
    geoms = np.asarray(um.geometry.array)
    ids = um["unit_id"].astype(str).to_numpy()

    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    # water units (reaches, water bodies) and community grids are separate layers of
    # management: a river may run through a community, so only compare within a family
    family = um["kind"].isin(WATER_KINDS).to_numpy()
    keep = (a < b) & (family[a] == family[b])
    a, b = a[keep], b[keep]
    if len(a):
        ov = shapely.area(shapely.intersection(geoms[a], geoms[b]))
        bad = ov > _AREA_TOL_M2
        if bad.any():
            pairs = [
                f"{ids[i]}/{ids[j]} ({v:,.0f} m²)"
                for i, j, v in zip(a[bad], b[bad], ov[bad], strict=True)
            ]
            report.add(
                "overlap",
                f"{int(bad.sum())} pair(s) of units overlap: "
                f"{', '.join(pairs[:10])}{' ...' if len(pairs) > 10 else ''}.",
                rows=sorted(set(ids[a[bad]]) | set(ids[b[bad]])),
            )

    am = None
    if admin_areas is not None:
        am = check_layer(admin_areas, "admin_areas", source="admin_areas").to_crs(metric)
        by_code = dict(zip(am["admin_code"].astype(str), am.geometry.array, strict=True))
        codes = um["admin_code"].astype(str).to_numpy()
        unknown = ~np.isin(codes, list(by_code))
        if unknown.any():
            report.add(
                "unknown_admin_code",
                f"units name admin codes not in the admin areas: "
                f"{', '.join(sorted(set(codes[unknown])))}.",
                rows=ids[unknown],
            )
        known = np.flatnonzero(~unknown)
        if len(known):
            own = np.array([by_code[c] for c in codes[known]], dtype=object)
            spill = shapely.area(shapely.difference(geoms[known], own))
            bad = spill > np.maximum(_AREA_TOL_M2, rel_tol * shapely.area(geoms[known]))
            if bad.any():
                report.add(
                    "outside_admin_area",
                    f"{int(bad.sum())} unit(s) reach outside their admin area "
                    f"(largest spill {spill[bad].max():,.0f} m²).",
                    rows=ids[known][bad],
                )
    if boundary is not None:
        bm = gpd.GeoDataFrame(boundary).to_crs(metric)
        outer = shapely.union_all(np.asarray(bm.geometry.array))
        spill = shapely.area(shapely.difference(geoms, outer))
        bad = spill > np.maximum(_AREA_TOL_M2, rel_tol * shapely.area(geoms))
        if bad.any():
            report.add(
                "outside_boundary",
                f"{int(bad.sum())} unit(s) lie partly outside the boundary.",
                rows=ids[bad],
            )

    kinds = set(um["kind"])
    if kinds & {"river_reach", "water_body"}:
        _river_problems(
            um,
            reaches,
            rivers,
            am,
            metric,
            report,
            max_length_m=max_length_m,
            min_length_m=min_length_m,
            rel_tol=rel_tol,
        )
    if "community_grid" in kinds:
        from gridkit.validate.communities import community_problems

        grids = units[units["kind"] == "community_grid"]
        found = community_problems(
            grids, communities=communities, buildings=buildings, max_households=max_households
        )
        # the overlap check above already covers every unit kind
        found.problems = [p for p in found.problems if p.code != "overlap"]
        report.extend(found)
    return report


def _river_problems(
    um, reaches, rivers, am, metric, report, *, max_length_m, min_length_m, rel_tol
) -> None:
    """River checks on units in ``metric`` (see :func:`validate_units`)."""
    import shapely

    from gridkit.errors import InvalidLayerError
    from gridkit.layers import LEVELS, check_layer

    if reaches is None:
        return
    try:
        reaches = check_layer(reaches, "reaches", source="reaches")
    except InvalidLayerError as exc:
        for p in exc.problems or [exc.message]:
            report.add("invalid_layer", f"reaches: {p}")
        return
    rm = reaches.to_crs(metric)
    rid = rm["reach_id"].astype(str).to_numpy()
    g = np.asarray(rm.geometry.array)
    length = rm["length_m"].to_numpy(float)
    report.figures["reaches"] = float(len(rm))
    report.figures["reach_length_m"] = float(length.sum())

    ru = um[um["kind"] == "river_reach"]
    missing = ~ru["reach_id"].astype(str).isin(set(rid)).to_numpy()
    if missing.any():
        report.add(
            "unknown_reach",
            f"{int(missing.sum())} river unit(s) name reaches that are not in the reaches layer.",
            rows=ru["unit_id"].to_numpy()[missing],
        )
    geo_len = shapely.length(g)
    off = np.abs(geo_len - length) > np.maximum(0.01, 1e-3 * length)
    if off.any():
        report.add(
            "length_mismatch",
            f"{int(off.sum())} reach(es) have length_m differing from their line's length.",
            rows=rid[off],
        )
    seq_ok = rm.groupby("river_id")["seq"].apply(
        lambda s: sorted(s.tolist()) == list(range(1, len(s) + 1))
    )
    if not seq_ok.all():
        bad = list(seq_ok.index[~seq_ok].astype(str))
        report.add(
            "seq_gap",
            f"seq does not run 1..n along rivers {', '.join(bad)}.",
            rows=bad,
            severity="warning",
        )
    if max_length_m is not None:
        long = length > max_length_m * (1 + 1e-9)
        if long.any():
            report.add(
                "too_long",
                f"{int(long.sum())} reach(es) exceed max_length_m="
                f"{max_length_m:g} (longest {length[long].max():,.1f} m).",
                rows=rid[long],
            )
    if min_length_m is not None:
        short = length < min_length_m * (1 - 1e-9)
        if short.any():
            report.add(
                "too_short",
                f"{int(short.sum())} reach(es) are shorter than min_length_m={min_length_m:g}.",
                rows=rid[short],
                severity="warning",
            )
    if am is None:
        return
    finest = max(set(am["level"]), key=LEVELS.index)
    fa = am[am["level"] == finest]
    by_code = dict(zip(fa["admin_code"].astype(str), fa.geometry.array, strict=True))
    nb = ~rm["boundary"].to_numpy(bool)
    codes = rm["admin_code"].astype(str).to_numpy()
    known = nb & np.isin(codes, list(by_code))
    if (nb & ~known).any():
        report.add(
            "unknown_admin_code",
            f"reaches name admin codes not at the finest level ({finest}) of the admin areas.",
            rows=rid[nb & ~known],
        )
    if known.any():
        own = np.array([by_code[c] for c in codes[known]], dtype=object)
        out = shapely.length(shapely.difference(g[known], shapely.buffer(own, 0.01)))
        bad = out > np.maximum(0.05, rel_tol * length[known])
        if bad.any():
            report.add(
                "reach_crosses_area",
                f"{int(bad.sum())} non-boundary reach(es) leave their admin area.",
                rows=rid[known][bad],
            )
    if rivers is not None:
        rv = check_layer(rivers, "rivers", source="rivers").to_crs(metric)
        union = shapely.union_all(np.asarray(fa.geometry.array))
        inside = shapely.length(shapely.intersection(np.asarray(rv.geometry.array), union))
        want = pd.Series(inside, index=rv["river_id"].astype(str).to_numpy())
        got = rm.groupby(rm["river_id"].astype(str))["length_m"].sum()
        got = got.reindex(want.index, fill_value=0.0)
        rel = (got - want).abs() / want.clip(lower=1e-9)
        bad = (rel > rel_tol) & (want > 0)
        report.figures["length_conservation_max_rel"] = (
            float(rel[want > 0].max()) if (want > 0).any() else 0.0
        )
        if bad.any():
            detail = ", ".join(
                f"{r}: reaches {got[r]:,.1f} m vs river {want[r]:,.1f} m"
                for r in want.index[bad][:10]
            )
            report.add(
                "length_not_conserved",
                f"reach lengths do not add up to the river "
                f"length inside the admin areas ({detail}).",
                rows=list(want.index[bad]),
            )
