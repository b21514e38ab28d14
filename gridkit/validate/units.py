"""Validation of grid layers: one report format for river and community grids.

:func:`validate_units` runs the checks that apply to the units given (river reaches,
water bodies, community grids) and returns a :class:`ValidationReport`; the CLI
``gridkit validate`` prints it and exits 1 when it holds errors.

Check modules add :class:`Problem` entries: a stable ``code`` (``"overlap"``,
``"gap"``, ``"length_not_conserved"``...), a readable ``message`` that says where and
what to do, the offending ``rows`` (unit or reach ids) and a ``severity``.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from gridkit.crs import local_metric_crs
from gridkit.errors import format_rows
from gridkit.layers import WATER_KINDS, check_layer
from gridkit.validate.communities import community_problems
from gridkit.validate.report import Problem, ValidationReport, checked_layer
from gridkit.validate.rivers import RiverChecks, river_problems
from gridkit.validate.tiling import AREA_M2, overlap_text, overlaps, report_noise

__all__ = ["Problem", "ValidationReport", "validate_units"]

_AREA_TOL_M2 = AREA_M2  # spills smaller than this are noise of the float grid


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
    >>> from gridkit import split_rivers
    >>> admin = geodata.zhuzhou_admin()
    >>> reaches, units = split_rivers(geodata.xiang_river(), admin, max_length_m=5000)
    >>> validate_units(units, reaches=reaches, admin_areas=admin, max_length_m=5000).ok
    True
    """
    report = ValidationReport()
    checked = checked_layer(units, "units", report)
    if checked is None:
        return report
    metric = local_metric_crs(checked)
    job = _UnitChecks.of(checked, metric, rel_tol)
    report.figures["units"] = float(len(job.units))
    _overlaps(job, report)
    am = None
    if admin_areas is not None:
        am = check_layer(admin_areas, "admin_areas", source="admin_areas").to_crs(metric)
        _inside_admin_areas(job, am, report)
    if boundary is not None:
        _inside_boundary(job, boundary, report)

    kinds = set(job.units["kind"])
    if kinds & set(WATER_KINDS) and reaches is not None:
        checks = RiverChecks(
            job.units,
            reaches,
            admin_areas=am,
            rivers=rivers,
            max_length_m=max_length_m,
            min_length_m=min_length_m,
            rel_tol=rel_tol,
            metric=metric,
        )
        report.extend(river_problems(checks))
    if "community_grid" in kinds:
        grids = checked[checked["kind"] == "community_grid"]
        found = community_problems(
            grids, communities=communities, buildings=buildings, max_households=max_households
        )
        # the overlap check above already covers every unit kind
        found.problems = [p for p in found.problems if p.code not in ("overlap", "slivers")]
        report.extend(found)
    return report


@dataclass(frozen=True)
class _UnitChecks:
    """One run of the unit checks: the checked units in the ``metric`` CRS, with their
    geometries and ids (as text)."""

    units: gpd.GeoDataFrame
    metric: pyproj.CRS
    rel_tol: float
    geoms: np.ndarray
    ids: np.ndarray

    @classmethod
    def of(cls, units: gpd.GeoDataFrame, metric: pyproj.CRS, rel_tol: float) -> _UnitChecks:
        um = units.to_crs(metric)
        ids = um["unit_id"].astype(str).to_numpy()
        return cls(um, metric, rel_tol, np.asarray(um.geometry.array), ids)

    def spilled(
        self, rows: np.ndarray | slice, outside: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Area of the units ``rows`` outside the polygons ``outside`` (one per row, or
        one for all), and which of them spill more than the tolerance."""
        geoms = self.geoms[rows]
        spill = shapely.area(shapely.difference(geoms, outside))
        return spill, spill > np.maximum(_AREA_TOL_M2, self.rel_tol * shapely.area(geoms))


def _overlaps(job: _UnitChecks, report: ValidationReport) -> None:
    """No two units of one family overlap (``overlap``, naming both ids, the area and
    where); float noise (:mod:`gridkit.validate.tiling`) is told in one line
    (``slivers``, a warning)."""
    found = overlaps(job.geoms, crs=job.metric)
    if not len(found):
        return
    # water units (reaches, water bodies) and community grids are separate layers of
    # management: a river may run through a community, so only compare within a family
    family = job.units["kind"].isin(WATER_KINDS).to_numpy()
    same = family[found.first] == family[found.second]
    real = np.flatnonzero(same & found.real)
    if len(real):
        report.add(
            "overlap",
            f"{len(real)} pair(s) of units overlap: "
            f"{format_rows(overlap_text(job.ids, found, real))}.",
            rows=sorted(set(job.ids[found.first[real]]) | set(job.ids[found.second[real]])),
        )
    report_noise(report, found, same & ~found.real)


def _inside_admin_areas(job: _UnitChecks, am: gpd.GeoDataFrame, report: ValidationReport) -> None:
    """Units name a known admin area (``unknown_admin_code``) and lie inside it
    (``outside_admin_area``); ``am`` is in the metric CRS."""
    by_code = dict(zip(am["admin_code"].astype(str), am.geometry.array, strict=True))
    codes = job.units["admin_code"].astype(str).to_numpy()
    unknown = ~np.isin(codes, list(by_code))
    if unknown.any():
        names = ", ".join(sorted(set(codes[unknown])))
        report.add(
            "unknown_admin_code",
            f"units name admin codes not in the admin areas: {names}.",
            rows=job.ids[unknown],
        )
    known = np.flatnonzero(~unknown)
    if len(known):
        own = np.array([by_code[c] for c in codes[known]], dtype=object)
        spill, bad = job.spilled(known, own)
        if bad.any():
            report.add(
                "outside_admin_area",
                f"{int(bad.sum())} unit(s) reach outside their admin area "
                f"(largest spill {spill[bad].max():,.0f} m²).",
                rows=job.ids[known][bad],
            )


def _inside_boundary(
    job: _UnitChecks, boundary: gpd.GeoDataFrame, report: ValidationReport
) -> None:
    """Units lie inside the union of ``boundary`` (``outside_boundary``)."""
    bm = gpd.GeoDataFrame(boundary).to_crs(job.metric)
    outer = shapely.union_all(np.asarray(bm.geometry.array))
    _, bad = job.spilled(slice(None), outer)
    if bad.any():
        report.add(
            "outside_boundary",
            f"{int(bad.sum())} unit(s) lie partly outside the boundary.",
            rows=job.ids[bad],
        )
