"""Split residential communities into grid units balanced by households.

:func:`split_communities` turns ``communities`` and ``buildings`` into a ``units``
layer (``kind="community_grid"``) such that, in every community part:

- units tile the part exactly (no gap, no overlap; overlays on a 1 mm grid) and each
  unit is one Polygon;
- every building belongs to exactly one unit; no unit boundary cuts a footprint, and
  overlapping footprints (OSM building parts) form one cluster kept whole;
- no unit holds more than ``max_households`` unless one cluster alone does (then it
  is a unit of its own, with a warning);
- the number of units stays close to ``ceil(households / max_households)``, units
  are balanced and compact, and their boundaries follow ``barriers`` where possible.

How: atoms (one cell per building cluster, Voronoi cells cut by barriers, footprints
kept whole, see :mod:`gridkit.communities.atoms`), a shared-edge graph of atoms, and
a balanced contiguous partition of that graph (METIS when ``pymetis`` is installed,
then repair and refinement that guarantee contiguity and the cap, see
:mod:`gridkit.communities.partition`). Every community is processed on its own, in
the UTM zone of its own centre, so a change in one community leaves every other
community's units and ids untouched.

The report of a run is in ``units.attrs["report"]`` (:class:`CommunitySplitReport`).

Examples
--------
>>> import geopandas as gpd
>>> from shapely import box
>>> communities = gpd.GeoDataFrame(
...     {"community_id": ["C1"], "name": ["荷塘"], "admin_code": ["430202001001"]},
...     geometry=[box(0, 0, 200, 100)], crs=32649)
>>> buildings = gpd.GeoDataFrame(
...     {"building_id": [f"B{i}" for i in range(8)], "households": [30] * 8},
...     geometry=[box(10 + 25 * i, 40, 25 + 25 * i, 60) for i in range(8)], crs=32649)
>>> units = split_communities(communities, buildings, max_households=100)
>>> len(units), int(units.households.max()) <= 100
(3, True)
>>> units.unit_id.tolist()
['C1-001', 'C1-002', 'C1-003']
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from shapely import STRtree

from gridkit.communities.atoms import GRID_M, Atoms, build_atoms, group_union, snap
from gridkit.communities.partition import AtomGraph, _share, partition
from gridkit.crs import like_input, local_metric_crs, result_crs, utm_zone_crs
from gridkit.errors import (
    GridkitError,
    GridkitWarning,
    InvalidLayerError,
    format_rows,
    once_per_call,
)
from gridkit.validate.tiling import polygon_parts, settle

__all__ = [
    "M2_PER_HOUSEHOLD",
    "CommunitySplitReport",
    "estimate_households",
    "split_communities",
]

M2_PER_HOUSEHOLD = 90.0
"""Floor area per household used by :func:`estimate_households` (m²)."""

BARRIER_FACTOR = 0.2
"""Cut cost of a shared edge lying on a barrier, relative to an ordinary edge."""

DEFAULT_CELL_AREA_M2 = 10_000.0

Method = Literal["balanced", "square", "h3"]

WGS84 = pyproj.CRS.from_epsg(4326)


@dataclass
class CommunitySplitReport:
    """Figures and findings of a :func:`split_communities` run.

    Attributes
    ----------
    n_units, min_units
        Units made, and the lower bound ``sum over parts of ceil(households / cap)``
        (plus one unit per over-cap cluster and per empty part).
    max_households, mean_households, cv_households
        Household load of units: maximum, mean, coefficient of variation.
    mean_polsby_popper
        Mean compactness ``4 pi A / P^2`` of the units (1 = circle).
    barrier_share
        Share of the length of boundaries between units that lies on barriers.
    over_cap_units, oversized_buildings
        Unit ids above the cap (each a single over-cap cluster) and their buildings.
    under_floor_units
        Unit ids below ``min_households`` and why: ``"small part"`` (the community
        part holds fewer households than the floor), ``"locked"`` (a locked unit,
        kept as given) or ``"cap"`` (the cap and contiguity left no way to reach it).
    target_missed
        ``community_id -> (asked, made)`` where ``n_units`` could not be met (the cap
        needs more units, or the floor or the buildings allow fewer).
    outside_buildings, straddling_buildings
        Building ids outside every community (in no unit), and building ids whose
        footprint crosses their community's boundary (assigned by representative
        point; the footprint is clipped there).
    estimated_households
        Building ids whose households were estimated.
    empty_communities
        Community ids without buildings (one unit with 0 households each).
    building_units
        ``building_id -> unit_id`` for every building (missing for outside ones).
    slivers, sliver_m2
        Float-noise overlaps and gaps between communities (thinner than 1 cm or under
        1 m², :mod:`gridkit.validate.tiling`) snapped before splitting, and their area.

    Examples
    --------
    Eight buildings of 30 households in a row, at most 100 households a unit:

    >>> import geopandas as gpd
    >>> from shapely import box
    >>> communities = gpd.GeoDataFrame(
    ...     {"community_id": ["C1"]}, geometry=[box(0, 0, 200, 100)], crs=32649
    ... )
    >>> buildings = gpd.GeoDataFrame(
    ...     {"building_id": [f"B{i}" for i in range(8)], "households": [30] * 8},
    ...     geometry=[box(10 + 25 * i, 40, 25 + 25 * i, 60) for i in range(8)],
    ...     crs=32649,
    ... )
    >>> units = split_communities(communities, buildings, max_households=100)
    >>> report = units.attrs["report"]
    >>> report.n_units, report.min_units, report.max_households, report.over_cap_units
    (3, 3, 90.0, [])
    >>> report.building_units.tolist()
    ['C1-001', 'C1-001', 'C1-002', 'C1-002', 'C1-002', 'C1-003', 'C1-003', 'C1-003']
    """

    method: str = "balanced"
    n_units: int = 0
    min_units: int = 0
    max_households: float = 0.0
    mean_households: float = 0.0
    cv_households: float = 0.0
    mean_polsby_popper: float = 0.0
    barrier_share: float = float("nan")
    over_cap_units: list[str] = field(default_factory=list)
    oversized_buildings: list[str] = field(default_factory=list)
    under_floor_units: dict[str, str] = field(default_factory=dict)
    target_missed: dict[str, tuple[int, int]] = field(default_factory=dict)
    outside_buildings: list[str] = field(default_factory=list)
    straddling_buildings: list[str] = field(default_factory=list)
    estimated_households: list[str] = field(default_factory=list)
    empty_communities: list[str] = field(default_factory=list)
    building_units: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    slivers: int = 0
    sliver_m2: float = 0.0

    def __repr__(self) -> str:
        """One line: the figures and how many of each finding (the lists are attributes).

        Examples
        --------
        >>> CommunitySplitReport(n_units=3, min_units=3, max_households=90, over_cap_units=["U1"])
        <CommunitySplitReport balanced: 3 units (lower bound 3), ... CV 0.00; 1 over the cap>
        """
        text = (
            f"<CommunitySplitReport {self.method}: {self.n_units:,} units (lower bound "
            f"{self.min_units:,}), households max {self.max_households:.0f}, mean "
            f"{self.mean_households:.1f}, CV {self.cv_households:.2f}"
        )
        for what, n in (
            ("over the cap", len(self.over_cap_units)),
            ("below the floor", len(self.under_floor_units)),
            ("targets missed", len(self.target_missed)),
            ("buildings outside", len(self.outside_buildings)),
            ("straddling", len(self.straddling_buildings)),
            ("households estimated", len(self.estimated_households)),
            ("empty communities", len(self.empty_communities)),
        ):
            if n:
                text += f"; {n:,} {what}"
        return text + ">"

    def figures(self) -> dict[str, float]:
        """The numeric figures as a flat dict.

        Examples
        --------
        >>> CommunitySplitReport(n_units=3, min_units=3).figures()["n_units"]
        3
        """
        return {
            k: getattr(self, k)
            for k in (
                "n_units",
                "min_units",
                "max_households",
                "mean_households",
                "cv_households",
                "mean_polsby_popper",
                "barrier_share",
            )
        }


# --------------------------------------------------------------------------- households


def estimate_households(
    buildings: gpd.GeoDataFrame,
    *,
    levels_col: str = "building:levels",
    m2_per_household: float = M2_PER_HOUSEHOLD,
    default_levels: float = 1.0,
) -> pd.Series:
    """Estimate households from floor area: footprint area x levels / ``m2_per_household``.

    Levels come from ``levels_col`` (OSM ``building:levels``; text such as ``"4"`` or
    ``"4;5"`` is read as its first number), ``default_levels`` when missing. Rounded
    to the nearest integer; point buildings count 1 household.

    Parameters
    ----------
    buildings
        Buildings with a CRS.
    levels_col, m2_per_household, default_levels
        See above.

    Returns
    -------
    pandas.Series of int64, indexed like ``buildings``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> b = gpd.GeoDataFrame({"building:levels": ["3", None]},
    ...                      geometry=[box(0, 0, 30, 30), box(0, 40, 30, 70)], crs=32649)
    >>> estimate_households(b).tolist()
    [30, 10]
    """
    geom = buildings.geometry
    if buildings.crs is not None and not pyproj.CRS.from_user_input(buildings.crs).is_projected:
        geom = geom.to_crs(local_metric_crs(buildings))
    area = shapely.area(np.asarray(geom.array))
    if levels_col in buildings.columns:
        lv = buildings[levels_col]
        if not pd.api.types.is_numeric_dtype(lv.dtype):
            lv = lv.astype("string").str.extract(r"(\d+(?:\.\d+)?)", expand=False)
        levels = pd.to_numeric(lv, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        levels = np.where(np.isfinite(levels) & (levels > 0), levels, default_levels)
    else:
        levels = np.full(len(buildings), default_levels)
    hh = np.rint(area * levels / m2_per_household)
    is_point = shapely.get_type_id(np.asarray(geom.array)) == 0
    hh = np.where(is_point, 1, hh)
    return pd.Series(hh.astype(np.int64), index=buildings.index, name="households")


# --------------------------------------------------------------------------- inputs


def _require(df: object, name: str, cols: list[str]) -> gpd.GeoDataFrame:
    if not isinstance(df, gpd.GeoDataFrame):
        raise InvalidLayerError(f"{name}: expected a GeoDataFrame, got {type(df).__name__}.")
    if df.crs is None:
        raise InvalidLayerError(
            f"{name} has no CRS.", hint="Set one with .set_crs(...) (e.g. 4326 or a UTM zone)."
        )
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InvalidLayerError(
            f"{name} is missing column(s) {', '.join(missing)}.",
            hint=f"Columns present: {', '.join(map(str, df.columns))}.",
        )
    ids = df[cols[0]]
    if ids.isna().any():
        raise InvalidLayerError(
            f"{name}: column {cols[0]!r} has empty values in rows "
            f"{format_rows(df.index[ids.isna()])}."
        )
    dup = ids.duplicated(keep=False)
    if dup.any():
        raise InvalidLayerError(
            f"{name}: duplicate {cols[0]} values "
            f"{format_rows(sorted(map(str, pd.unique(ids[dup]))))}.",
            hint="Ids must be unique.",
        )
    return df


def _clean_geoms(
    df: gpd.GeoDataFrame, name: str, id_col: str, *, polygonal_only: bool
) -> gpd.GeoDataFrame:
    """Repair invalid geometries (with a warning naming them); reject missing ones."""
    g = np.asarray(df.geometry.array)
    missing = shapely.is_missing(g) | shapely.is_empty(g)
    if missing.any():
        raise InvalidLayerError(
            f"{name}: rows {format_rows(df.loc[missing, id_col])} have no geometry.",
            hint="Drop or fix them.",
        )
    t = shapely.get_type_id(g)
    allowed = (3, 6) if polygonal_only else (0, 3, 6)
    wrong = ~np.isin(t, allowed)
    if wrong.any():
        raise InvalidLayerError(
            f"{name}: rows {format_rows(df.loc[wrong, id_col])} are not "
            f"{'polygons' if polygonal_only else 'polygons or points'}."
        )
    bad = ~shapely.is_valid(g)
    if bad.any():
        polys = polygon_parts(shapely.make_valid(g[bad]))
        warnings.warn(
            f"{name}: repaired invalid geometries of {format_rows(df.loc[bad, id_col])} "
            "(shapely.make_valid, polygon parts kept).",
            GridkitWarning,
            stacklevel=3,
        )
        df = df.copy()
        g = g.copy()
        g[bad] = polys
        df = df.set_geometry(gpd.GeoSeries(g, index=df.index, crs=df.crs))
    return df


# --------------------------------------------------------------------------- main


@once_per_call
def split_communities(
    communities: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    *,
    max_households: int,
    households_col: str = "households",
    barriers: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    min_households: int | None = None,
    locked: gpd.GeoDataFrame | None = None,
    seeds: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    method: Method = "balanced",
    cell_area_m2: float = DEFAULT_CELL_AREA_M2,
    estimate: Callable[[gpd.GeoDataFrame], pd.Series] | None = None,
    version: int = 1,
    n_units: int | Mapping[str, int] | None = None,
) -> gpd.GeoDataFrame:
    """Split communities into grid units balanced by households.

    Parameters
    ----------
    communities
        ``communities`` layer: ``community_id`` (and ``admin_code``; the community id
        is used when it is missing), Polygon/MultiPolygon, any CRS.
    buildings
        ``buildings`` layer: ``building_id``, households in ``households_col``,
        Polygon/MultiPolygon footprints or Points.
    max_households
        Household cap per unit. A building cluster above it is a unit of its own
        (with a :class:`~gridkit.errors.GridkitWarning`).
    households_col
        Column with households. Missing values (or a missing column) are estimated
        by ``estimate`` (default :func:`estimate_households`: floor area / 90 m²).
    barriers
        Lines (roads, rivers, walls). Unit boundaries prefer to run along them.
    min_households
        Household floor per unit (``method="balanced"``). The partition lifts units
        below it by moving buildings from neighbouring units (keeping contiguity and
        the cap) and, failing that, merges a unit into a neighbour when both fit under
        the cap. The cap always wins: where the floor cannot hold (a community part
        smaller than the floor, a locked unit, or no room under the cap) the units
        are listed in ``report.under_floor_units`` with a
        :class:`~gridkit.errors.GridkitWarning`. With a floor and no ``n_units`` the
        count stays the minimum the cap allows.
    locked
        Existing ``units`` kept exactly (geometry and id); the rest of each community
        is partitioned around them. Buildings inside a locked unit count there.
    seeds
        Points: in each community part, at least one unit per seed, grown from the
        seeds instead of METIS.
    method
        ``"balanced"`` (default), or regular cells of ``cell_area_m2`` clipped to the
        communities: ``"square"`` (squares on a grid aligned to multiples of the side
        in each community's UTM zone) or ``"h3"`` (H3 cells of the resolution whose
        mean area is closest, containment mode *overlap*: every cell touching the
        community, clipped to it). Regular cells ignore the cap (over-cap units are
        reported) and are exploded into single polygons.
    cell_area_m2
        Target cell area of ``"square"`` and ``"h3"``.
    estimate
        ``buildings -> Series`` of households, for rows without a value.
    version
        Written to the ``version`` column.
    n_units
        Units wanted per community (locked units included): one number for every
        community or ``{community_id: n}`` (communities not listed get the minimum).
        Use it to match a planned number of grid workers, or to compare with a tool
        that chooses its own count. Shared among a community's parts by households.
        The cap wins (never fewer than ``ceil(households / max_households)`` per
        part), then the floor (never more than ``households // min_households``);
        a count that cannot be met is reported in ``report.target_missed`` with a
        warning. Default: the fewest units the cap allows.

    Returns
    -------
    geopandas.GeoDataFrame
        The ``units`` layer in the CRS of ``communities`` (as geopandas answers;
        locked units exactly as given): ``unit_id`` (``{community_id}-{seq:03d}``,
        numbered north to south, west to east), ``kind="community_grid"``,
        ``parent_id`` (community id), ``admin_code``, ``households``, ``area_m2``
        (exact, metric), ``version``, plus ``n_buildings`` and ``polsby_popper``.
        ``attrs["report"]`` holds a :class:`CommunitySplitReport`.

    Raises
    ------
    InvalidLayerError
        Missing columns, duplicate ids, missing geometry, negative households,
        overlapping communities (each pair with its ids, overlap area and a lon/lat
        inside the overlap). Float noise between communities (slivers thinner than
        1 cm or under 1 m², :mod:`gridkit.validate.tiling`) is not an overlap: it is
        snapped before splitting and told in one :class:`~gridkit.errors.GridkitWarning`.
    GridkitError
        ``method="h3"`` without the ``h3`` package.

    Examples
    --------
    One community of the sample data, at most 300 households a unit:

    >>> from gridkit.synth import sample_layers
    >>> layers = sample_layers(seed=1)
    >>> comm, bld = layers["communities"], layers["buildings"]
    >>> cid = "430204002002-C01"
    >>> units = split_communities(
    ...     comm[comm.community_id == cid], bld[bld.community_id == cid], max_households=300
    ... )
    >>> int(units.households.max()) <= 300, units.geom_type.unique().tolist()
    (True, ['Polygon'])
    >>> report = units.attrs["report"]
    >>> report.n_units == len(units) >= report.min_units
    True
    >>> units.unit_id.iloc[0], units.crs.to_epsg()
    ('430204002002-C01-001', 4326)

    The units come in the communities' CRS, here UTM zone 49N:

    >>> utm = split_communities(comm[comm.community_id == cid].to_crs(32649),
    ...                         bld[bld.community_id == cid], max_households=300)
    >>> utm.crs.to_epsg(), utm.unit_id.tolist() == units.unit_id.tolist()
    (32649, True)
    """
    min_households, n_units = _check_options(
        method, max_households=max_households, min_households=min_households, n_units=n_units
    )
    communities = _require(communities, "communities", ["community_id"])
    buildings = _require(buildings, "buildings", ["building_id"])
    communities = _clean_geoms(communities, "communities", "community_id", polygonal_only=True)
    buildings = _clean_geoms(buildings, "buildings", "building_id", polygonal_only=False)
    run = _Run(
        cap=int(max_households),
        floor=min_households,
        method=method,
        cell_area_m2=cell_area_m2,
        version=version,
        report=CommunitySplitReport(method=method),
    )
    targets = _targets(n_units, communities)
    hh = _households(buildings, households_col, estimate, run.report)
    inputs = _wgs84_inputs(
        communities, buildings, hh, barriers=barriers, seeds=seeds, locked=locked
    )
    frames, b_unit, assigned = _split_zones(inputs, run, targets)
    _warn_outside(inputs.buildings, assigned, run.report)
    units = _units_layer(frames, result_crs(communities), locked)
    run.report.building_units = pd.Series(
        b_unit.to_numpy(), index=inputs.buildings["building_id"].to_numpy(), name="unit_id"
    )
    _finish_report(units, run.report, run.stats, max_households)
    _warn_targets(run.report, min_households)
    units.attrs["report"] = run.report
    return units


# --------------------------------------------------------------------------- stages


@dataclass
class _Stats:
    """Running totals for the report: the lower bound on units, cut lengths (m)."""

    min_units: int = 0
    cut_len: float = 0.0
    cut_barrier: float = 0.0


@dataclass
class _Run:
    """Settings and running totals shared by every community of one call."""

    cap: int
    floor: int | None
    method: Method
    cell_area_m2: float
    version: int
    report: CommunitySplitReport
    stats: _Stats = field(default_factory=_Stats)


@dataclass
class _Inputs:
    """The layers of one call in WGS84; buildings in a canonical order."""

    communities: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    households: np.ndarray  # per building, in the order of ``buildings``
    barriers: gpd.GeoSeries | None
    seeds: gpd.GeoSeries | None
    locked: gpd.GeoDataFrame | None


@dataclass
class _Zone:
    """The run-wide layers in one UTM zone (metric)."""

    crs: pyproj.CRS
    barriers: np.ndarray | None
    seeds: np.ndarray | None
    locked: gpd.GeoDataFrame | None


@dataclass
class _CommunityJob:
    """One community to split, in its zone's metric CRS."""

    cid: str
    admin: str
    geom: shapely.Geometry
    bgeo: np.ndarray  # its buildings (on the 1 mm grid)
    hh: np.ndarray  # households per building
    bids: np.ndarray  # building ids
    target: int | None  # units wanted (``n_units``)
    zone: _Zone
    run: _Run


@dataclass
class _Made:
    """Units of one community as they are made (parallel lists, in the order made)."""

    bunit: np.ndarray  # unit id of each building of the community; None until placed
    geoms: list[shapely.Geometry] = field(default_factory=list)
    locked_ids: list[str | None] = field(default_factory=list)  # None: a new unit
    households: list[int] = field(default_factory=list)
    members: list[np.ndarray] = field(default_factory=list)  # building positions
    small: list[int] = field(default_factory=list)  # units of parts below the floor

    def add(
        self,
        geom: shapely.Geometry,
        households: int,
        members: np.ndarray,
        *,
        locked_id: str | None = None,
        small: bool = False,
    ) -> None:
        if small:
            self.small.append(len(self.geoms))
        self.geoms.append(geom)
        self.locked_ids.append(locked_id)
        self.households.append(int(households))
        self.members.append(members)

    def unplaced(self) -> np.ndarray:
        return pd.isna(self.bunit)

    def geometry(self) -> np.ndarray:
        return np.array(self.geoms, dtype=object)


def _check_options(
    method: str,
    *,
    max_households: int,
    min_households: int | None,
    n_units: int | Mapping[str, int] | None,
) -> tuple[int | None, int | Mapping[str, int] | None]:
    """Checked options; ``(min_households, n_units)`` as the chosen method uses them."""
    if method not in ("balanced", "square", "h3"):
        raise GridkitError(f"Unknown method {method!r}.", hint="Use 'balanced', 'square' or 'h3'.")
    if method == "h3":
        try:
            import h3  # noqa: F401  (optional dependency: only method="h3" needs it)
        except ImportError:
            raise GridkitError(
                "method='h3' needs the h3 package.", hint="pip install h3, or use method='square'."
            ) from None
    if not isinstance(max_households, int | np.integer) or max_households < 1:
        raise GridkitError(f"max_households must be a positive integer, got {max_households!r}.")
    if min_households is not None:
        if not isinstance(min_households, int | np.integer) or min_households < 0:
            raise GridkitError(
                f"min_households must be a non-negative integer, got {min_households!r}."
            )
        if min_households > max_households:
            raise GridkitError(
                f"min_households ({min_households}) is above max_households ({max_households}).",
                hint="The cap always wins: lower the floor or raise the cap.",
            )
        min_households = int(min_households) or None
    if method != "balanced" and (min_households or n_units is not None):
        warnings.warn(
            f"method={method!r} draws regular cells: min_households and n_units are ignored.",
            GridkitWarning,
            stacklevel=3,  # the caller of split_communities
        )
        min_households, n_units = None, None
    return min_households, n_units


def _wgs84_inputs(
    communities: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    hh: np.ndarray,
    *,
    barriers: gpd.GeoDataFrame | gpd.GeoSeries | None,
    seeds: gpd.GeoDataFrame | gpd.GeoSeries | None,
    locked: gpd.GeoDataFrame | None,
) -> _Inputs:
    comm = communities.to_crs(WGS84)
    # a canonical building order makes the result independent of the input row order
    border = np.argsort(buildings["building_id"].astype(str).to_numpy(), kind="stable")
    bld = buildings.iloc[border].to_crs(WGS84)
    if "admin_code" not in comm.columns:
        comm = comm.assign(admin_code=comm["community_id"].astype(str))
    bar = None
    if barriers is not None:
        bar = barriers.geometry if isinstance(barriers, gpd.GeoDataFrame) else barriers
        if bar.crs is None:
            raise InvalidLayerError("barriers have no CRS.", hint="Set one with .set_crs().")
        bar = bar.to_crs(WGS84)
    seed_g = None
    if seeds is not None:
        seed_g = (seeds.geometry if isinstance(seeds, gpd.GeoDataFrame) else seeds).to_crs(WGS84)
    lock = None
    if locked is not None and len(locked):
        lock = _require(locked, "locked", ["unit_id"]).to_crs(WGS84)
    return _Inputs(comm, bld, hh[border], bar, seed_g, lock)


def _split_zones(
    inp: _Inputs, run: _Run, targets: dict[str, int]
) -> tuple[list[gpd.GeoDataFrame], pd.Series, np.ndarray]:
    """Every community, zone by zone (the UTM zone of its centre), in community id order.

    Returns the unit frames, the unit id of every building and which buildings lie in
    a community.
    """
    comm = inp.communities
    cent = shapely.centroid(np.asarray(comm.geometry.array))
    cx, cy = shapely.get_x(cent), shapely.get_y(cent)
    zone_key = np.array([utm_zone_crs(x, y).to_epsg() for x, y in zip(cx, cy, strict=True)])
    order = np.argsort(comm["community_id"].astype(str).to_numpy(), kind="stable")
    frames: list[gpd.GeoDataFrame] = []
    b_unit = pd.Series(pd.NA, index=inp.buildings.index, dtype=object)
    assigned = np.zeros(len(inp.buildings), dtype=bool)
    for epsg in sorted(set(zone_key.tolist())):
        idx = order[zone_key[order] == epsg]
        crs = pyproj.CRS.from_epsg(epsg)
        frames += _split_zone(inp, run, crs, idx, targets, b_unit=b_unit, assigned=assigned)
    return frames, b_unit, assigned


def _split_zone(
    inp: _Inputs,
    run: _Run,
    crs: pyproj.CRS,
    idx: np.ndarray,
    targets: dict[str, int],
    *,
    b_unit: pd.Series,
    assigned: np.ndarray,
) -> list[gpd.GeoDataFrame]:
    """The communities ``idx`` of one zone; fills ``b_unit`` and ``assigned`` in place."""
    cm = inp.communities.iloc[idx].to_crs(crs)
    cgeo = _settle(cm, crs, run.report)
    bm = inp.buildings.to_crs(crs)
    bgeo = snap(np.asarray(bm.geometry.array))
    which = _assign(bgeo, cgeo)  # community position in cm, -1 outside
    which[assigned] = -1  # already placed by an earlier zone
    assigned |= which >= 0
    _report_straddlers(bgeo, cgeo, which, bm["building_id"], run.report)
    zone = _zone_layers(inp, crs)
    bids = bm["building_id"].to_numpy()
    frames = []
    for pos in range(len(cm)):
        row = cm.iloc[pos]
        members = np.flatnonzero(which == pos)
        cid = str(row["community_id"])
        job = _CommunityJob(
            cid=cid,
            admin=str(row["admin_code"]),
            geom=cgeo[pos],
            bgeo=bgeo[members],
            hh=inp.households[members],
            bids=bids[members],
            target=targets.get(cid),
            zone=zone,
            run=run,
        )
        frame, bunits = _split_one(job)
        b_unit.iloc[members] = bunits
        frames.append(frame.assign(version=run.version))
    return frames


def _zone_layers(inp: _Inputs, crs: pyproj.CRS) -> _Zone:
    lock_m = None
    if inp.locked is not None:
        lock_m = inp.locked.to_crs(crs)
    return _Zone(
        crs=crs,
        barriers=None if inp.barriers is None else np.asarray(inp.barriers.to_crs(crs).array),
        seeds=None if inp.seeds is None else np.asarray(inp.seeds.to_crs(crs).array),
        locked=lock_m,
    )


def _warn_outside(
    bld: gpd.GeoDataFrame, assigned: np.ndarray, report: CommunitySplitReport
) -> None:
    outside = ~assigned
    if outside.any():
        report.outside_buildings = [str(v) for v in bld.loc[outside, "building_id"]]
        warnings.warn(
            f"{outside.sum()} building(s) lie outside every community and are in no unit: "
            f"{format_rows(report.outside_buildings)}.",
            GridkitWarning,
            stacklevel=3,  # the caller of split_communities
        )


_UNIT_COLUMNS = [
    "unit_id",
    "kind",
    "parent_id",
    "admin_code",
    "households",
    "area_m2",
    "version",
    "n_buildings",
    "polsby_popper",
    "geometry",
]


def _units_layer(
    frames: list[gpd.GeoDataFrame], crs: pyproj.CRS, locked: gpd.GeoDataFrame | None
) -> gpd.GeoDataFrame:
    """The units of every community in ``crs`` (one reprojection), locked units with
    the geometry they were given (in ``crs``), not a reprojected copy."""
    units = pd.concat(frames, ignore_index=True) if frames else None
    units = gpd.GeoDataFrame(units, geometry="geometry", crs=WGS84)
    is_locked = units["_locked"].to_numpy(dtype=bool) if "_locked" in units else None
    units = like_input(units[_UNIT_COLUMNS], crs)
    units["households"] = units["households"].astype(np.int64)
    if is_locked is not None and is_locked.any():
        given = locked.to_crs(crs)  # no copy in the same CRS
        geom = pd.Series(
            np.asarray(given.geometry.array), index=given["unit_id"].astype(str).to_numpy()
        )
        ids = units.loc[is_locked, "unit_id"].astype(str)
        units.loc[is_locked, "geometry"] = geom.reindex(ids).to_numpy()
    return units


def _targets(
    n_units: int | Mapping[str, int] | None, communities: gpd.GeoDataFrame
) -> dict[str, int]:
    """``community_id -> units wanted`` from the ``n_units`` option."""
    if n_units is None:
        return {}
    ids = communities["community_id"].astype(str)
    if isinstance(n_units, Mapping):
        out = {str(k): v for k, v in n_units.items()}
        unknown = sorted(set(out) - set(ids))
        if unknown:
            raise GridkitError(
                f"n_units names unknown communities {format_rows(unknown)}.",
                hint="Keys are community_id values of the communities layer.",
            )
    else:
        out = dict.fromkeys(ids, n_units)
    bad = [k for k, v in out.items() if not isinstance(v, int | np.integer) or v < 1]
    if bad:
        raise GridkitError(
            f"n_units must be positive integers; not so for {format_rows(bad)}.",
        )
    return {k: int(v) for k, v in out.items()}


def _warn_targets(report: CommunitySplitReport, floor: int | None) -> None:
    if report.target_missed:
        got = [f"{c} ({a} asked, {m} made)" for c, (a, m) in report.target_missed.items()]
        warnings.warn(
            f"n_units could not be met (the cap needs more units, or the floor or the "
            f"buildings allow fewer): {format_rows(got)}.",
            GridkitWarning,
            stacklevel=3,
        )
    if report.under_floor_units:
        why = {
            "small part": "their community part holds fewer households than the floor",
            "locked": "locked units are kept as given",
            "cap": "the cap and contiguity leave no way to reach it",
        }
        for reason, text in why.items():
            ids = [u for u, r in report.under_floor_units.items() if r == reason]
            if ids:
                warnings.warn(
                    f"{len(ids)} unit(s) below min_households={floor} ({text}): "
                    f"{format_rows(ids)}.",
                    GridkitWarning,
                    stacklevel=3,
                )


def _households(
    bld: gpd.GeoDataFrame,
    col: str,
    estimate: Callable[[gpd.GeoDataFrame], pd.Series] | None,
    report: CommunitySplitReport,
) -> np.ndarray:
    if col in bld.columns:
        raw = pd.to_numeric(bld[col], errors="coerce")
        bad = bld[col].notna() & raw.isna()
        if bad.any():
            raise InvalidLayerError(
                f"buildings: column {col!r} is not numeric in rows "
                f"{format_rows(bld.loc[bad, 'building_id'])}."
            )
        miss = raw.isna().to_numpy()
    else:
        raw = pd.Series(np.nan, index=bld.index)
        miss = np.ones(len(bld), dtype=bool)
    values = raw.to_numpy(dtype=float, na_value=np.nan)
    if miss.any():
        est = (estimate or estimate_households)(bld)
        values = np.where(miss, np.asarray(est, dtype=float), values)
        report.estimated_households = [str(v) for v in bld.loc[miss, "building_id"]]
    if (values < 0).any():
        raise InvalidLayerError(
            f"buildings: negative households in rows "
            f"{format_rows(bld.loc[values < 0, 'building_id'])}."
        )
    return np.rint(values).astype(np.int64)


def _settle(cm: gpd.GeoDataFrame, crs: pyproj.CRS, report: CommunitySplitReport) -> np.ndarray:
    """The communities' polygons with float noise along shared edges snapped (one
    warning line); real overlaps raise, naming both ids, the area and where."""
    settled = settle(
        np.asarray(cm.geometry.array), cm["community_id"].astype(str).to_numpy(), crs=crs
    )
    line = settled.line("communities")
    if line is not None:
        report.slivers += settled.slivers
        report.sliver_m2 += settled.sliver_m2
        warnings.warn(
            line,
            GridkitWarning,
            stacklevel=5,  # the caller of split_communities (via the zone stages)
        )
    return settled.geoms


def _assign(bgeo: np.ndarray, cgeo: np.ndarray) -> np.ndarray:
    """Community position holding each building's representative point (-1: none)."""
    return _first_holder(shapely.point_on_surface(bgeo), cgeo)


def _report_straddlers(
    bgeo: np.ndarray,
    cgeo: np.ndarray,
    which: np.ndarray,
    ids: pd.Series,
    report: CommunitySplitReport,
) -> None:
    inside = np.flatnonzero(which >= 0)
    poly = inside[shapely.get_type_id(bgeo[inside]) != 0]
    shapely.prepare(cgeo)
    poly = poly[~shapely.contains_properly(cgeo[which[poly]], bgeo[poly])]
    if not len(poly):
        return
    out = shapely.area(shapely.difference(bgeo[poly], cgeo[which[poly]], grid_size=GRID_M))
    s = poly[out > 1e-6 * np.maximum(shapely.area(bgeo[poly]), 1.0)]
    if len(s):
        found = [str(v) for v in ids.to_numpy()[s]]
        report.straddling_buildings += found
        warnings.warn(
            f"{len(found)} building(s) straddle a community boundary; each belongs to the "
            f"community holding its representative point and is clipped there: "
            f"{format_rows(found)}.",
            GridkitWarning,
            stacklevel=5,  # the caller of split_communities (via the zone stages)
        )


def _clusters(geoms: np.ndarray) -> np.ndarray:
    """Cluster ids: connected groups of footprints overlapping with positive area."""
    n = len(geoms)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    i, j = STRtree(geoms).query(geoms, predicate="intersects")
    m = i < j
    i, j = i[m], j[m]
    if len(i):
        pt = (shapely.get_type_id(geoms[i]) == 0) | (shapely.get_type_id(geoms[j]) == 0)
        ov = np.zeros(len(i), dtype=bool)
        ov[pt] = True
        poly = ~pt
        ov[poly] = (
            shapely.area(shapely.intersection(geoms[i[poly]], geoms[j[poly]], grid_size=GRID_M)) > 0
        )
        i, j = i[ov], j[ov]
    g = sparse.csr_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    return connected_components(g, directed=False)[1]


def _first_holder(points: np.ndarray, polygons: np.ndarray) -> np.ndarray:
    """Position of the first polygon holding each point (-1: none); a point on a shared
    edge goes to the first polygon."""
    pi, bi = STRtree(points).query(polygons, predicate="intersects")
    order = np.lexsort((pi, bi))
    pi, bi = pi[order], bi[order]
    first = np.r_[True, bi[1:] != bi[:-1]] if len(bi) else np.zeros(0, dtype=bool)
    out = np.full(len(points), -1, dtype=np.int64)
    out[bi[first]] = pi[first]
    return out


def _split_one(job: _CommunityJob) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Units of one community: locked units first, then every part of the rest.

    Returns the units (in WGS84, ordered by id) and the unit id of each building.
    """
    made = _Made(bunit=np.full(len(job.bgeo), None, dtype=object))
    area = _take_locked(job, made)
    parts, part_of = _locate_parts(job, made, area)
    placed = part_of >= 0
    part_hh = np.bincount(
        part_of[placed], weights=job.hh[placed].astype(float), minlength=len(parts)
    )
    part_k = _part_targets(job, made, part_hh)
    floor = job.run.floor
    for p, part in enumerate(parts):
        members = np.flatnonzero(part_of == p)
        if job.run.method != "balanced":
            _cells_part(job, made, part, members)
        elif len(members) == 0:
            made.add(part, 0, members, small=bool(floor))
            job.run.stats.min_units += 1
        else:
            _balanced_part(
                job,
                made,
                part,
                members,
                n_parts=None if part_k is None else int(part_k[p]) or 1,
                below_floor=bool(floor) and part_hh[p] < floor,
            )
    if not len(job.bgeo):
        job.run.report.empty_communities.append(job.cid)
    ids = _unit_ids(job, made)
    _record(job, made, ids)
    return _unit_frame(job, made, ids), made.bunit


def _take_locked(job: _CommunityJob, made: _Made) -> shapely.Geometry:
    """Locked units of the community, kept as given with the buildings inside them;
    returns the area left to split."""
    locked = job.zone.locked
    if locked is None:
        return job.geom
    lg = np.asarray(locked.geometry.array)
    mine = (
        locked["parent_id"].astype(str).to_numpy() == job.cid
        if "parent_id" in locked
        else shapely.intersects(shapely.point_on_surface(lg), job.geom)
    )
    if not mine.any():
        return job.geom
    for k in np.flatnonzero(mine):
        uid = str(locked["unit_id"].iloc[k])
        inside = shapely.intersects(shapely.point_on_surface(job.bgeo), lg[k])
        inside &= made.unplaced()
        made.bunit[inside] = uid
        made.add(lg[k], int(job.hh[inside].sum()), np.flatnonzero(inside), locked_id=uid)
    return shapely.difference(
        job.geom, shapely.union_all(lg[mine], grid_size=GRID_M), grid_size=GRID_M
    )


def _locate_parts(
    job: _CommunityJob, made: _Made, area: shapely.Geometry
) -> tuple[np.ndarray, np.ndarray]:
    """Polygon parts of ``area`` and the part of each building not yet placed (-1: none)."""
    parts = shapely.get_parts(area)
    parts = parts[(shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)]
    part_of = np.full(len(job.bgeo), -1, dtype=np.int64)
    free = np.flatnonzero(made.unplaced())
    if len(free) and len(parts):
        part_of[free] = _first_holder(shapely.point_on_surface(job.bgeo[free]), parts)
        lost = free[part_of[free] < 0]  # inside the community, not in a part: nearest
        if len(lost):
            d = shapely.distance(shapely.point_on_surface(job.bgeo[lost])[:, None], parts[None, :])
            part_of[lost] = d.argmin(axis=1)
    return parts, part_of


def _part_targets(job: _CommunityJob, made: _Made, part_hh: np.ndarray) -> np.ndarray | None:
    """Units wanted per part (``n_units``; empty parts take one each), or None."""
    if job.target is None:
        return None
    n_locked = sum(k is not None for k in made.locked_ids)
    empty = int((part_hh == 0).sum())
    return _share(max(job.target - n_locked - empty, 0), part_hh, job.run.cap)


def _cells_part(
    job: _CommunityJob, made: _Made, part: shapely.Geometry, members: np.ndarray
) -> None:
    """Regular cells (square or H3) of one part, a unit each; the cap is not enforced."""
    cells = _regular_cells(part, job.run.method, job.run.cell_area_m2, job.zone.crs)
    # buildings in no cell (never seen: the cells cover the part) go to the first
    owner = np.maximum(_first_holder(shapely.point_on_surface(job.bgeo[members]), cells), 0)
    for c, g in enumerate(cells):
        mm = members[owner == c]
        made.add(g, int(job.hh[mm].sum()), mm)
    job.run.stats.min_units += max(1, -(-int(job.hh[members].sum()) // job.run.cap))


def _balanced_part(
    job: _CommunityJob,
    made: _Made,
    part: shapely.Geometry,
    members: np.ndarray,
    *,
    n_parts: int | None,
    below_floor: bool,
) -> None:
    """Household-balanced contiguous units of one part: atoms, then their partition."""
    hh = job.hh[members]
    atoms, aw, cl, cl_hh = part_atoms(part, job.bgeo[members], hh, barriers=job.zone.barriers)
    lab, ugeo = _partition_part(job, part, atoms, aw, n_parts)
    _count_clusters(job, members, cl, cl_hh)
    stats = job.run.stats
    cut = lab[atoms.edge_i] != lab[atoms.edge_j]
    stats.cut_len += float(atoms.edge_len[cut].sum())
    stats.cut_barrier += float(atoms.edge_len[cut & atoms.edge_barrier].sum())
    b_lab = lab[atoms.cluster_atom[cl]]
    nu = int(lab.max()) + 1
    u_hh = np.bincount(b_lab, weights=hh, minlength=nu)
    order_b = np.argsort(b_lab, kind="stable")
    split_at = np.searchsorted(b_lab[order_b], np.arange(1, nu))
    for u, mm in enumerate(np.split(members[order_b], split_at)):
        made.add(ugeo[u], int(np.rint(u_hh[u])), mm, small=below_floor)


def _partition_part(
    job: _CommunityJob,
    part: shapely.Geometry,
    atoms: Atoms,
    weights: np.ndarray,
    n_parts: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """A unit label per atom and the unit polygons (one Polygon each)."""
    xy = shapely.get_coordinates(shapely.centroid(atoms.geoms))
    factor = np.where(atoms.edge_barrier, BARRIER_FACTOR, 1.0)
    graph = AtomGraph.from_edges(weights, xy, atoms.edge_i, atoms.edge_j, atoms.edge_len, factor)
    seed_atoms = None
    seeds = job.zone.seeds
    if seeds is not None:
        sp = seeds[shapely.intersects(seeds, part)]
        if len(sp):
            ai, _ = STRtree(atoms.geoms).query(sp, predicate="intersects")[::-1]
            seed_atoms = np.unique(ai)
    lab = partition(graph, cap=job.run.cap, seeds=seed_atoms, floor=job.run.floor, n_parts=n_parts)
    ugeo = group_union(atoms.geoms, lab)
    if (shapely.get_type_id(ugeo) != 3).any():  # guard: never seen on a coverage
        lab = _single_polygons(atoms.geoms, lab, graph)
        ugeo = np.array(
            [
                shapely.union_all(atoms.geoms[lab == u], grid_size=GRID_M)
                for u in range(lab.max() + 1)
            ],
            dtype=object,
        )
    return lab, ugeo


def _count_clusters(
    job: _CommunityJob, members: np.ndarray, cl: np.ndarray, cl_hh: np.ndarray
) -> None:
    """The part's share of the lower bound on units; warns of over-cap clusters."""
    cap = job.run.cap
    over_cl = np.flatnonzero(cl_hh > cap)
    rest = int(cl_hh[cl_hh <= cap].sum())
    job.run.stats.min_units += max(1, -(-rest // cap) + len(over_cl))
    if len(over_cl):
        ob = [str(v) for v in job.bids[members[np.isin(cl, over_cl)]]]
        job.run.report.oversized_buildings += ob
        warnings.warn(
            f"community {job.cid}: building cluster(s) above the cap of {cap} households "
            f"become units of their own: {format_rows(ob)}.",
            GridkitWarning,
            # the caller of split_communities (via _balanced_part, _split_one,
            # _split_zone and _split_zones)
            stacklevel=7,
        )


def _unit_ids(job: _CommunityJob, made: _Made) -> list[str]:
    """Locked units keep their ids; new ones are numbered north to south, west to east."""
    geo = made.geometry()
    rp = shapely.point_on_surface(geo)
    x, y = shapely.get_x(rp), shapely.get_y(rp)
    band = max(np.sqrt(max(job.geom.area, 1.0) / max(len(geo), 1)), 1.0)
    rowk = np.floor((y.max() - y) / band) if len(y) else y
    taken = {k for k in made.locked_ids if k is not None}
    ids: list[str] = [""] * len(geo)
    seq = 0
    for u in np.lexsort((x, rowk)):
        locked_id = made.locked_ids[u]
        if locked_id is not None:
            ids[u] = locked_id
            continue
        seq += 1
        while f"{job.cid}-{seq:03d}" in taken:
            seq += 1
        ids[u] = f"{job.cid}-{seq:03d}"
    return ids


def _record(job: _CommunityJob, made: _Made, ids: list[str]) -> None:
    """The unit of every building, units below the floor and a missed target."""
    for u, mm in enumerate(made.members):
        made.bunit[mm] = ids[u]
    report, floor = job.run.report, job.run.floor
    if floor:
        for u in np.flatnonzero(np.array(made.households, dtype=np.int64) < floor):
            report.under_floor_units[ids[u]] = (
                "locked"
                if made.locked_ids[u] is not None
                else "small part"
                if u in made.small
                else "cap"
            )
    if job.target is not None and len(ids) != job.target:
        report.target_missed[job.cid] = (int(job.target), len(ids))


def _unit_frame(job: _CommunityJob, made: _Made, ids: list[str]) -> gpd.GeoDataFrame:
    """The community's units in WGS84 (``_locked`` marks the locked ones), ordered by id."""
    geo = made.geometry()
    area_m2 = shapely.area(geo)
    perim = shapely.length(geo)
    pp = np.where(perim > 0, 4 * np.pi * area_m2 / np.maximum(perim, 1e-12) ** 2, 0.0)
    frame = gpd.GeoDataFrame(
        {
            "unit_id": ids,
            "kind": "community_grid",
            "parent_id": job.cid,
            "admin_code": job.admin,
            "households": np.array(made.households, dtype=np.int64),
            "area_m2": area_m2,
            "n_buildings": np.array([len(m) for m in made.members], dtype=np.int64),
            "polsby_popper": pp,
        },
        geometry=gpd.GeoSeries(geo, crs=job.zone.crs),
    ).to_crs(WGS84)
    frame["_locked"] = np.array([k is not None for k in made.locked_ids], dtype=bool)
    return frame.iloc[np.argsort(np.array(ids, dtype=str), kind="stable")]


def part_atoms(
    part: shapely.Polygon,
    geoms: np.ndarray,
    households: np.ndarray,
    *,
    barriers: np.ndarray | None = None,
) -> tuple[Atoms, np.ndarray, np.ndarray, np.ndarray]:
    """Atoms of one community part around its buildings: what the partition splits.

    Buildings whose footprints overlap with positive area form one cluster, kept
    whole in one atom. The benchmark hands exactly these atoms to its peers.

    Parameters
    ----------
    part
        One polygon of a community (metric CRS).
    geoms
        Building footprints (or points) in ``part``, on the 1 mm grid
        (:func:`gridkit.communities.atoms.snap`).
    households
        Households per building.
    barriers
        Lines (metric) atom boundaries should follow.

    Returns
    -------
    tuple
        ``(atoms, households per atom, cluster of each building, households per
        cluster)``; see :class:`gridkit.communities.atoms.Atoms`.

    Examples
    --------
    Two overlapping footprints (one cluster) and a third building:

    >>> import numpy as np
    >>> from shapely import box
    >>> from gridkit.communities.atoms import snap
    >>> footprints = snap(np.array([box(10, 10, 20, 20), box(15, 15, 30, 30), box(60, 10, 70, 20)]))
    >>> atoms, atom_hh, cluster, cluster_hh = part_atoms(
    ...     box(0, 0, 100, 50), footprints, np.array([10, 5, 20])
    ... )
    >>> cluster.tolist(), cluster_hh.tolist(), sorted(atom_hh.tolist())
    ([0, 0, 1], [15, 20], [15, 20])
    """
    cl = _clusters(geoms)
    ncl = cl.max() + 1
    cl_hh = np.bincount(cl, weights=households, minlength=ncl).astype(np.int64)
    areas = shapely.area(geoms)
    big = np.zeros(ncl, dtype=np.int64)
    o = np.lexsort((-areas, cl))
    big[cl[o][::-1]] = o[::-1]  # largest member of each cluster
    cpt = shapely.point_on_surface(geoms[big])
    shapely.prepare(part)
    for c in np.flatnonzero(~shapely.intersects(part, cpt)):
        # the largest member lies outside the part: a point of the cluster inside it
        fp = shapely.union_all(geoms[cl == c], grid_size=GRID_M)
        cpt[c] = shapely.point_on_surface(shapely.intersection(fp, part, grid_size=GRID_M))
    atoms = build_atoms(part, geoms, cpt, barriers=barriers, footprint_cluster=cl)
    aw = np.bincount(atoms.cluster_atom, weights=cl_hh, minlength=len(atoms.geoms))
    return atoms, np.rint(aw).astype(np.int64), cl, cl_hh


def _single_polygons(geoms: np.ndarray, lab: np.ndarray, graph: AtomGraph) -> np.ndarray:
    """Relabel atoms so that every label's union is one polygon (guards overlay noise)."""
    for _ in range(5):
        bad = False
        for u in range(lab.max() + 1):
            sel = np.flatnonzero(lab == u)
            g = shapely.union_all(geoms[sel], grid_size=GRID_M)
            if shapely.get_type_id(g) == 3:
                continue
            bad = True
            parts = shapely.get_parts(g)
            main = parts[np.argmax(shapely.area(parts))]
            stray = sel[~shapely.intersects(shapely.point_on_surface(geoms[sel]), main)]
            for a in stray:
                nb = graph.length.indices[graph.length.indptr[a] : graph.length.indptr[a + 1]]
                ln = graph.length.data[graph.length.indptr[a] : graph.length.indptr[a + 1]]
                other = lab[nb] != u
                if other.any():
                    lab[a] = lab[nb[other][np.argmax(ln[other])]]
                else:
                    d = shapely.distance(geoms[a], geoms)
                    d[lab == u] = np.inf
                    if np.isfinite(d).any():
                        lab[a] = lab[np.argmin(d)]
        if not bad:
            break
        _, lab = np.unique(lab, return_inverse=True)
    return lab


def _regular_cells(
    part: shapely.Polygon, method: str, cell_area_m2: float, crs: pyproj.CRS
) -> np.ndarray:
    """Square or H3 cells clipped exactly to ``part`` (metric), exploded to polygons."""
    if method == "square":
        side = float(np.sqrt(cell_area_m2))
        x0, y0, x1, y1 = part.bounds
        xs = np.arange(np.floor(x0 / side) * side, x1, side)
        ys = np.arange(np.floor(y0 / side) * side, y1, side)
        gx, gy = np.meshgrid(xs, ys)
        cells = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + side, gy.ravel() + side)
    else:
        import h3  # optional dependency: only method="h3" needs it

        res = int(
            np.argmin(
                [abs(h3.average_hexagon_area(r, unit="m^2") - cell_area_m2) for r in range(16)]
            )
        )
        to_ll = pyproj.Transformer.from_crs(crs, WGS84, always_xy=True)
        ll = shapely.transform(part, lambda c: np.column_stack(to_ll.transform(c[:, 0], c[:, 1])))
        shape = h3.geo_to_h3shape(shapely.geometry.mapping(ll))
        ids = sorted(h3.h3shape_to_cells_experimental(shape, res, contain="overlap"))
        to_m = pyproj.Transformer.from_crs(WGS84, crs, always_xy=True)
        cells = []
        for c in ids:  # one polygon per cell id; h3 returns (lat, lng) rings
            ring = np.array(h3.cell_to_boundary(c))[:, ::-1]
            cells.append(shapely.Polygon(np.column_stack(to_m.transform(ring[:, 0], ring[:, 1]))))
        cells = np.array(cells, dtype=object)
    clipped = shapely.intersection(cells, part, grid_size=GRID_M)
    pieces = shapely.get_parts(clipped)
    pieces = pieces[(shapely.get_type_id(pieces) == 3) & (shapely.area(pieces) > 0)]
    # whatever the cells missed (h3 overlap covers, but guard): its own pieces
    rest = shapely.difference(part, shapely.union_all(pieces, grid_size=GRID_M), grid_size=GRID_M)
    extra = shapely.get_parts(rest)
    extra = extra[(shapely.get_type_id(extra) == 3) & (shapely.area(extra) > 1e-3)]
    return np.r_[pieces, extra]


def _finish_report(
    units: gpd.GeoDataFrame, report: CommunitySplitReport, stats: _Stats, cap: int
) -> None:
    hh = units["households"].to_numpy(dtype=float)
    report.n_units = len(units)
    report.min_units = stats.min_units
    report.max_households = float(hh.max()) if len(hh) else 0.0
    report.mean_households = float(hh.mean()) if len(hh) else 0.0
    report.cv_households = float(hh.std() / hh.mean()) if len(hh) and hh.mean() > 0 else 0.0
    report.mean_polsby_popper = float(units["polsby_popper"].mean()) if len(units) else 0.0
    report.barrier_share = (
        (stats.cut_barrier / stats.cut_len) if stats.cut_len > 0 else float("nan")
    )
    report.over_cap_units = units.loc[hh > cap, "unit_id"].astype(str).tolist()
