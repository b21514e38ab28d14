"""Checks of river units and their reaches. Called by
:func:`gridkit.validate.units.validate_units` for units of kind ``river_reach`` or
``water_body`` when ``reaches`` are given.

Each check is one function over a :class:`RiverChecks` job (the reaches measured
once in a local metric CRS, plus the options) and adds its problems to a report:
``unknown_reach``, ``length_mismatch``, ``seq_gap`` (warning), ``too_long``,
``too_short`` (warning), and with admin areas ``unknown_admin_code``,
``reach_crosses_area`` and, with ``rivers`` too, ``length_not_conserved``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridkit.crs import local_metric_crs
from gridkit.layers import LEVELS, check_layer
from gridkit.validate.report import ValidationReport, checked_layer

__all__ = ["RiverChecks", "river_problems"]


@dataclass(frozen=True)
class RiverChecks:
    """One run of the river checks (:func:`river_problems`): the layers and the options.

    Attributes
    ----------
    units
        ``units`` layer; its ``river_reach`` rows must name reaches that exist.
    reaches
        ``reaches`` layer.
    admin_areas
        ``admin_areas`` layer (codes, levels, geometry): every non-boundary reach must
        lie inside one area of the finest level. None skips the area checks.
    rivers
        ``rivers`` layer: with ``admin_areas``, the reaches of each river must add up
        to its length inside the areas (to ``rel_tol``). None skips this check.
    max_length_m, min_length_m
        Reaches longer are errors (``too_long``), shorter are warnings (``too_short``).
    rel_tol
        Relative tolerance of the length and area checks.
    metric
        The CRS to measure in; default :func:`gridkit.crs.local_metric_crs` of ``units``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import LineString
    >>> reaches = gpd.GeoDataFrame({"reach_id": ["R1"], "river_id": ["A"],
    ...     "admin_code": ["430202"], "seq": [1], "length_m": [100.0], "boundary": False},
    ...     geometry=[LineString([(0, 0), (100, 0)])], crs=32649)
    >>> job = RiverChecks(reaches.iloc[:0], reaches, max_length_m=50)
    >>> job.ids.tolist(), job.length.tolist()
    (['R1'], [100.0])
    """

    units: gpd.GeoDataFrame
    reaches: gpd.GeoDataFrame
    admin_areas: gpd.GeoDataFrame | None = None
    rivers: gpd.GeoDataFrame | None = None
    max_length_m: float | None = None
    min_length_m: float | None = None
    rel_tol: float = 1e-4
    metric: pyproj.CRS | None = None

    @cached_property
    def ids(self) -> np.ndarray:
        """Reach ids as text."""
        return self.reaches["reach_id"].astype(str).to_numpy()

    @cached_property
    def geoms(self) -> np.ndarray:
        """Reach lines."""
        return np.asarray(self.reaches.geometry.array)

    @cached_property
    def length(self) -> np.ndarray:
        """The reaches' ``length_m``."""
        return self.reaches["length_m"].to_numpy(float)

    def finest_areas(self) -> gpd.GeoDataFrame:
        """The admin areas of the finest level present (reaches are cut at them)."""
        am = self.admin_areas
        finest = max(set(am["level"]), key=LEVELS.index)
        return am[am["level"] == finest]


def river_problems(job: RiverChecks) -> ValidationReport:
    """Validate the reaches behind river units (see :func:`gridkit.validate_units`).

    The reaches are checked against the data contract first (problems reported as
    ``invalid_layer``); then every layer is measured in ``job.metric`` (default
    :func:`gridkit.crs.local_metric_crs` of the units) and each check runs in turn.

    Returns
    -------
    ValidationReport
        Figures ``reaches``, ``reach_length_m`` and, with rivers and admin areas,
        ``length_conservation_max_rel``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import LineString
    >>> reaches = gpd.GeoDataFrame({"reach_id": ["R1", "R2"], "river_id": "A",
    ...     "admin_code": "430202", "seq": [1, 3], "length_m": [100.0, 90.0],
    ...     "boundary": False},
    ...     geometry=[LineString([(0, 0), (100, 0)]), LineString([(100, 0), (200, 0)])],
    ...     crs=32649)
    >>> units = gpd.GeoDataFrame({"unit_id": ["U1"], "kind": "river_reach",
    ...     "reach_id": ["R9"]}, geometry=[LineString([(0, 0), (9, 0)]).buffer(5)], crs=32649)
    >>> report = river_problems(RiverChecks(units, reaches, max_length_m=95))
    >>> [(p.code, p.rows) for p in report.problems]  # doctest: +NORMALIZE_WHITESPACE
    [('unknown_reach', ('U1',)), ('length_mismatch', ('R2',)), ('seq_gap', ('A',)),
     ('too_long', ('R1',))]
    """
    report = ValidationReport()
    checked = checked_layer(job.reaches, "reaches", report)
    if checked is None:
        return report
    metric = job.metric if job.metric is not None else local_metric_crs(job.units)
    am = job.admin_areas
    job = replace(
        job,
        units=job.units.to_crs(metric),
        reaches=checked.to_crs(metric),
        admin_areas=None if am is None else am.to_crs(metric),
        metric=metric,
    )
    report.figures["reaches"] = float(len(job.reaches))
    report.figures["reach_length_m"] = float(job.length.sum())
    for check in (_reach_ids, _lengths, _seq, _length_bounds, _reach_areas, _conservation):
        check(job, report)
    return report


def _reach_ids(job: RiverChecks, report: ValidationReport) -> None:
    """Every river unit names a reach of the reaches layer (``unknown_reach``)."""
    ru = job.units[job.units["kind"] == "river_reach"]
    missing = ~ru["reach_id"].astype(str).isin(set(job.ids)).to_numpy()
    if missing.any():
        report.add(
            "unknown_reach",
            f"{int(missing.sum())} river unit(s) name reaches that are not in the reaches layer.",
            rows=ru["unit_id"].to_numpy()[missing],
        )


def _lengths(job: RiverChecks, report: ValidationReport) -> None:
    """``length_m`` is the length of the reach's line (``length_mismatch``)."""
    length = job.length
    off = np.abs(shapely.length(job.geoms) - length) > np.maximum(0.01, 1e-3 * length)
    if off.any():
        report.add(
            "length_mismatch",
            f"{int(off.sum())} reach(es) have length_m differing from their line's length.",
            rows=job.ids[off],
        )


def _seq(job: RiverChecks, report: ValidationReport) -> None:
    """``seq`` runs 1..n along every river (``seq_gap``, a warning)."""
    seq_ok = job.reaches.groupby("river_id")["seq"].apply(
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


def _length_bounds(job: RiverChecks, report: ValidationReport) -> None:
    """No reach longer than ``max_length_m`` (``too_long``) or shorter than
    ``min_length_m`` (``too_short``, a warning)."""
    length, ids = job.length, job.ids
    if job.max_length_m is not None:
        long = length > job.max_length_m * (1 + 1e-9)
        if long.any():
            report.add(
                "too_long",
                f"{int(long.sum())} reach(es) exceed max_length_m="
                f"{job.max_length_m:g} (longest {length[long].max():,.1f} m).",
                rows=ids[long],
            )
    if job.min_length_m is not None:
        short = length < job.min_length_m * (1 - 1e-9)
        if short.any():
            report.add(
                "too_short",
                f"{int(short.sum())} reach(es) are shorter than min_length_m={job.min_length_m:g}.",
                rows=ids[short],
                severity="warning",
            )


def _reach_areas(job: RiverChecks, report: ValidationReport) -> None:
    """Every non-boundary reach names an area of the finest level
    (``unknown_admin_code``) and stays inside it (``reach_crosses_area``)."""
    if job.admin_areas is None:
        return
    fa = job.finest_areas()
    by_code = dict(zip(fa["admin_code"].astype(str), fa.geometry.array, strict=True))
    rid, length = job.ids, job.length
    nb = ~job.reaches["boundary"].to_numpy(bool)
    codes = job.reaches["admin_code"].astype(str).to_numpy()
    known = nb & np.isin(codes, list(by_code))
    if (nb & ~known).any():
        finest = fa["level"].iloc[0]
        report.add(
            "unknown_admin_code",
            f"reaches name admin codes not at the finest level ({finest}) of the admin areas.",
            rows=rid[nb & ~known],
        )
    if known.any():
        own = np.array([by_code[c] for c in codes[known]], dtype=object)
        out = shapely.length(shapely.difference(job.geoms[known], shapely.buffer(own, 0.01)))
        bad = out > np.maximum(0.05, job.rel_tol * length[known])
        if bad.any():
            report.add(
                "reach_crosses_area",
                f"{int(bad.sum())} non-boundary reach(es) leave their admin area.",
                rows=rid[known][bad],
            )


def _conservation(job: RiverChecks, report: ValidationReport) -> None:
    """The reaches of each river add up to its length inside the finest areas
    (``length_not_conserved``); figure ``length_conservation_max_rel``."""
    if job.admin_areas is None or job.rivers is None:
        return
    rm = job.reaches
    rv = check_layer(job.rivers, "rivers", source="rivers").to_crs(rm.crs)
    union = shapely.union_all(np.asarray(job.finest_areas().geometry.array))
    inside = shapely.length(shapely.intersection(np.asarray(rv.geometry.array), union))
    want = pd.Series(inside, index=rv["river_id"].astype(str).to_numpy())
    got = rm.groupby(rm["river_id"].astype(str))["length_m"].sum()
    got = got.reindex(want.index, fill_value=0.0)
    rel = (got - want).abs() / want.clip(lower=1e-9)
    bad = (rel > job.rel_tol) & (want > 0)
    report.figures["length_conservation_max_rel"] = (
        float(rel[want > 0].max()) if (want > 0).any() else 0.0
    )
    if bad.any():
        detail = ", ".join(
            f"{r}: reaches {got[r]:,.1f} m vs river {want[r]:,.1f} m" for r in want.index[bad][:10]
        )
        report.add(
            "length_not_conserved",
            f"reach lengths do not add up to the river length inside the admin areas ({detail}).",
            rows=list(want.index[bad]),
        )
