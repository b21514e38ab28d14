"""Grid versions: compare two grids, record lineage, carry assignments and history over.

Planners redraw grids, compare the draft with the version in force, and publish it.
:func:`diff_units` says which units are unchanged, modified, split, merged, added or
removed (the ``lineage`` layer), :func:`carry_over` keeps workers on units that
survive and proposes workers for the rest, :func:`remap_unit_ids` re-indexes
history (patrols, reports) to the new units, and :func:`publish` records a new
version in a workspace.

Lineage shares
--------------
Every lineage row pairs an old and a new unit that overlap (or one side is empty for
added/removed units). ``share`` is the fraction of the *old* unit's area that went
into the new unit; ``share_new`` is the fraction of the *new* unit's area that came
from the old one. Overlaps below ``min_share`` on both sides (slivers from
boundaries redrawn within centimetres) are ignored.

Only units of the same family are paired: water units (river reaches, water bodies)
with water units, community grids with community grids, since a river corridor may
cross a community without either replacing the other.

Classification of an overlap pair (old ``o``, new ``n``):

- ``o`` overlaps only ``n`` and ``n`` only ``o``: ``unchanged`` when the ids are
  equal and the geometry and households agree within tolerance, else ``modified``;
- ``o`` overlaps several new units: ``split``;
- otherwise ``n`` overlaps several old units: ``merged``;
- an old unit with no overlap is ``removed``, a new one ``added``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gridkit.crs import local_metric_crs
from gridkit.errors import GridkitError, InvalidLayerError
from gridkit.io import read_layer, write_layer
from gridkit.layers import WATER_KINDS, check_layer

__all__ = [
    "CarryOver",
    "Diff",
    "carry_over",
    "diff_units",
    "publish",
    "read_version",
    "remap_unit_ids",
    "versions",
]

RELATIONS = ("unchanged", "modified", "split", "merged", "added", "removed")


@dataclass
class Diff:
    """Result of :func:`diff_units`.

    Attributes
    ----------
    lineage
        The ``lineage`` layer: ``old_id``, ``new_id``, ``relation``, ``share``,
        ``share_new``, ``area_m2`` (overlap area).
    summary
        Counts of old and new units per relation, households and metres moved.
    """

    lineage: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> pd.DataFrame:
        """Lineage rows of everything that is not unchanged."""
        return self.lineage[self.lineage["relation"] != "unchanged"]

    def touched_ids(self) -> set[str]:
        """Old and new unit ids that changed in any way."""
        ch = self.changed
        return set(ch["old_id"].dropna()) | set(ch["new_id"].dropna())

    def __str__(self) -> str:
        s = self.summary
        parts = [f"{s['old_units'][r]} {r}" for r in RELATIONS if s["old_units"].get(r)]
        added = s["new_units"].get("added", 0)
        if added:
            parts.append(f"{added} added")
        moved = f"; {s['households_moved']:,.0f} households"
        if s.get("length_moved_m"):
            moved += f" and {s['length_moved_m'] / 1000:,.2f} km of river"
        return (
            f"{s['n_old']} old units -> {s['n_new']} new units: "
            + ", ".join(parts)
            + moved
            + " change unit"
        )


def _prepared(units: pd.DataFrame, name: str) -> gpd.GeoDataFrame:
    if not isinstance(units, gpd.GeoDataFrame):
        raise InvalidLayerError(f"{name}: expected a GeoDataFrame of units.")
    return check_layer(units, "units", source=name)


def diff_units(
    old: gpd.GeoDataFrame,
    new: gpd.GeoDataFrame,
    *,
    min_share: float = 0.01,
    area_tolerance: float = 1e-4,
    households_tolerance: int = 0,
) -> Diff:
    """Compare two versions of a grid and return the lineage from old to new units.

    Parameters
    ----------
    old, new
        ``units`` layers (the version in force and the draft).
    min_share
        Overlaps smaller than this share of both units are slivers and ignored.
    area_tolerance
        A unit keeping its id counts as ``unchanged`` when the area of the symmetric
        difference is at most this share of its area (default 0.01 %).
    households_tolerance
        ... and its households differ by at most this many.

    Returns
    -------
    Diff
        ``.lineage`` (layer ``lineage`` plus ``share_new`` and ``area_m2``) and
        ``.summary``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> def grid(cells):
    ...     return gpd.GeoDataFrame({"unit_id": list(cells), "kind": "community_grid",
    ...         "parent_id": "C1", "admin_code": "430202001001"},
    ...         geometry=list(cells.values()), crs=32649)
    >>> old = grid({"C1-001": shapely.box(0, 0, 200, 100)})
    >>> new = grid({"C1-001": shapely.box(0, 0, 100, 100),
    ...             "C1-002": shapely.box(100, 0, 200, 100)})
    >>> diff_units(old, new).lineage[["old_id", "new_id", "relation", "share"]]
       old_id  new_id relation  share
    0  C1-001  C1-001    split    0.5
    1  C1-001  C1-002    split    0.5
    """
    old = _prepared(old, "old units")
    new = _prepared(new, "new units")
    crs = local_metric_crs(old)
    og = np.asarray(old.to_crs(crs).geometry.array)
    ng = np.asarray(new.to_crs(crs).geometry.array)
    old_ids = old["unit_id"].astype(str).to_numpy()
    new_ids = new["unit_id"].astype(str).to_numpy()
    oa = shapely.area(og)
    na = shapely.area(ng)

    # candidate pairs from the index, then exact overlap areas in one vectorised call
    tree = shapely.STRtree(ng)
    oi, ni = tree.query(og, predicate="intersects")
    inter = shapely.area(shapely.intersection(og[oi], ng[ni]))
    share = np.divide(inter, oa[oi], out=np.zeros_like(inter), where=oa[oi] > 0)
    share_new = np.divide(inter, na[ni], out=np.zeros_like(inter), where=na[ni] > 0)
    # water units and community grids are separate layers of management (a river runs
    # through a community): lineage only links units of the same family
    keep = ((share >= min_share) | (share_new >= min_share)) & (
        _family(old)[oi] == _family(new)[ni]
    )
    oi, ni, inter, share, share_new = oi[keep], ni[keep], inter[keep], share[keep], share_new[keep]

    n_partners_old = np.bincount(oi, minlength=len(og))
    n_partners_new = np.bincount(ni, minlength=len(ng))
    one_to_one = (n_partners_old[oi] == 1) & (n_partners_new[ni] == 1)
    same = _same_unit(old, new, og, ng, oi, ni, oa, area_tolerance, households_tolerance)
    relation = np.where(
        one_to_one,
        np.where(same, "unchanged", "modified"),
        np.where(n_partners_old[oi] > 1, "split", "merged"),
    )
    pairs = pd.DataFrame(
        {
            "old_id": old_ids[oi],
            "new_id": new_ids[ni],
            "relation": relation,
            "share": share,
            "share_new": share_new,
            "area_m2": inter,
        }
    )
    removed = np.flatnonzero(n_partners_old == 0)
    added = np.flatnonzero(n_partners_new == 0)
    lineage = pd.concat(
        [
            pairs,
            pd.DataFrame({"old_id": old_ids[removed], "new_id": None, "relation": "removed"}),
            pd.DataFrame({"old_id": None, "new_id": new_ids[added], "relation": "added"}),
        ],
        ignore_index=True,
    )
    lineage = lineage.sort_values(["old_id", "new_id"], na_position="last", kind="stable")
    lineage = lineage.reset_index(drop=True)
    for col in ("share", "share_new"):
        lineage[col] = lineage[col].round(6)
    return Diff(lineage, _summary(old, new, lineage, pairs, oi, ni))


def _family(units: pd.DataFrame) -> np.ndarray:
    return units["kind"].isin(WATER_KINDS).to_numpy()


def _same_unit(old, new, og, ng, oi, ni, oa, area_tol, hh_tol) -> np.ndarray:
    same_id = old["unit_id"].astype(str).to_numpy()[oi] == new["unit_id"].astype(str).to_numpy()[ni]
    sym = shapely.area(shapely.symmetric_difference(og[oi], ng[ni]))
    same_geom = sym <= area_tol * np.maximum(oa[oi], 1e-9)
    same_hh = np.ones(len(oi), dtype=bool)
    if "households" in old.columns and "households" in new.columns:
        ho = pd.to_numeric(old["households"], errors="coerce").to_numpy(dtype=float)[oi]
        hn = pd.to_numeric(new["households"], errors="coerce").to_numpy(dtype=float)[ni]
        same_hh = (np.abs(ho - hn) <= hh_tol) | (np.isnan(ho) & np.isnan(hn))
    return same_id & same_geom & same_hh


def _summary(old, new, lineage, pairs, oi, ni) -> dict[str, Any]:
    per_old = lineage.dropna(subset=["old_id"]).drop_duplicates("old_id")
    old_counts = per_old["relation"].value_counts().to_dict()
    per_new = lineage.dropna(subset=["new_id"]).drop_duplicates("new_id")
    new_counts = per_new["relation"].value_counts().to_dict()
    moved = (pairs["relation"] != "unchanged").to_numpy() & (
        pairs["old_id"].to_numpy() != pairs["new_id"].to_numpy()
    )
    summary: dict[str, Any] = {
        "n_old": len(old),
        "n_new": len(new),
        "old_units": {r: int(old_counts.get(r, 0)) for r in RELATIONS if r != "added"},
        "new_units": {r: int(new_counts.get(r, 0)) for r in RELATIONS if r != "removed"},
        "households_moved": 0.0,
        "length_moved_m": 0.0,
    }
    for col, key in (("households", "households_moved"), ("length_m", "length_moved_m")):
        if col in old.columns:
            values = pd.to_numeric(old[col], errors="coerce").fillna(0).to_numpy(dtype=float)
            removed_ids = lineage.loc[lineage["relation"] == "removed", "old_id"]
            removed = old["unit_id"].astype(str).isin(removed_ids).to_numpy()
            summary[key] = float(
                (values[oi][moved] * pairs["share"].to_numpy()[moved]).sum() + values[removed].sum()
            )
    return summary


@dataclass
class CarryOver:
    """Result of :func:`carry_over`.

    Attributes
    ----------
    assignments
        Proposed ``assignments`` for the new units: ``unit_id``, ``worker_id``,
        ``role`` and ``decision`` (``kept`` for unchanged/modified units, ``proposed``
        for split/merged ones).
    needs_decision
        New units a planner must confirm or staff: ``unit_id``, ``relation``,
        ``proposed_worker_id`` (may be empty) and ``reason``.
    """

    assignments: pd.DataFrame
    needs_decision: pd.DataFrame


def carry_over(assignments: pd.DataFrame, lineage: pd.DataFrame) -> CarryOver:
    """Carry worker assignments from old units to new ones through a lineage.

    Unchanged and modified units keep their worker. A unit made by a split or merge
    is proposed the worker of the old unit that gave it the largest share of its
    area, and listed in ``needs_decision``; added units with no worker are listed too.

    Parameters
    ----------
    assignments
        Current ``assignments`` layer (``unit_id``, ``worker_id``, optional ``role``).
        Rows with ``valid_to`` in the past are ignored.
    lineage
        The lineage from :func:`diff_units`.
    """
    for col in ("unit_id", "worker_id"):
        if col not in assignments.columns:
            raise InvalidLayerError(f"assignments: missing column {col!r}.")
    current = assignments
    if "valid_to" in current.columns:
        ended = pd.to_datetime(current["valid_to"], utc=True, errors="coerce")
        current = current[ended.isna() | (ended > pd.Timestamp.now(tz="UTC"))]
    role = (
        current["role"]
        if "role" in current.columns
        else pd.Series("grid_worker", index=current.index)
    )
    by_old = pd.DataFrame(
        {"old_id": current["unit_id"].astype(str), "worker_id": current["worker_id"], "role": role}
    )
    pairs = lineage.dropna(subset=["old_id", "new_id"])
    joined = pairs.merge(by_old, on="old_id", how="left")
    # the old unit giving the largest share of the new unit's area wins (ties: old id)
    joined = joined.sort_values(
        ["new_id", "share_new", "old_id"], ascending=[True, False, True], kind="stable"
    )
    kept_rel = joined["relation"].isin(["unchanged", "modified"])
    kept = joined[kept_rel & joined["worker_id"].notna()]
    proposed = joined[~kept_rel & joined["worker_id"].notna()].drop_duplicates(["new_id", "role"])
    out = pd.concat(
        [kept.assign(decision="kept"), proposed.assign(decision="proposed")], ignore_index=True
    )
    out = out.rename(columns={"new_id": "unit_id"})[["unit_id", "worker_id", "role", "decision"]]
    out = out.drop_duplicates(["unit_id", "worker_id", "role"]).reset_index(drop=True)

    new_ids = pd.Series(lineage["new_id"].dropna().unique())
    staffed = set(out["unit_id"])
    first = joined.drop_duplicates("new_id").set_index("new_id")
    decisions = []
    for unit_id in new_ids:  # one row per new unit needing a decision (small)
        rel = first["relation"].get(unit_id, "added")
        if unit_id not in staffed:
            reason = (
                "added unit: no previous worker"
                if rel == "added"
                else ("no worker on the old unit(s)")
            )
            decisions.append((unit_id, rel, None, reason))
        elif rel in ("split", "merged"):
            worker = out.loc[out["unit_id"] == unit_id, "worker_id"].iloc[0]
            decisions.append((unit_id, rel, worker, f"{rel}: worker of the largest share"))
    needs = pd.DataFrame(decisions, columns=["unit_id", "relation", "proposed_worker_id", "reason"])
    return CarryOver(out, needs)


def remap_unit_ids(unit_ids: pd.Series, lineage: pd.DataFrame) -> pd.Series:
    """Re-index history to new units: each old id maps to where most of its area went.

    Ids of removed units map to missing values; ids not in the lineage stay as they are
    (so already-current ids pass through). Records with their own location (reports,
    patrol tracks) are better re-located with ``gridkit.locate``; this is for records
    that only know their unit.
    """
    pairs = lineage.dropna(subset=["old_id", "new_id"]).sort_values(
        ["old_id", "share", "new_id"], ascending=[True, False, True], kind="stable"
    )
    mapping = pairs.drop_duplicates("old_id").set_index("old_id")["new_id"]
    removed = set(lineage.loc[lineage["relation"] == "removed", "old_id"])
    mapped = unit_ids.map(mapping)
    keep = mapped.isna() & ~unit_ids.isin(removed)
    return mapped.where(~keep, unit_ids)


# --------------------------------------------------------------------------- versions

VERSIONS_LAYER = "versions"
HISTORY_LAYER = "unit_versions"


def versions(workspace: str | Path) -> pd.DataFrame:
    """The published versions of a workspace: ``version``, ``published_at``, counts, note."""
    ws = Path(workspace)
    if not ws.exists() or VERSIONS_LAYER not in _layers(ws):
        return pd.DataFrame(columns=["version", "published_at", "n_units", "note"])
    return read_layer(ws, VERSIONS_LAYER, check=False)


def _layers(ws: Path) -> set[str]:
    return {str(n) for n, _ in pyogrio.list_layers(ws)}


def read_version(workspace: str | Path, version: int | None = None) -> gpd.GeoDataFrame:
    """Units of a published version (the one in force when ``version`` is None)."""
    ws = Path(workspace)
    table = versions(ws)
    if table.empty:
        raise GridkitError(
            f"{ws}: no version has been published.",
            hint="Publish one with `gridkit publish UNITS --workspace W`.",
        )
    version = int(table["version"].max()) if version is None else int(version)
    if version not in set(table["version"].astype(int)):
        raise GridkitError(
            f"{ws}: no version {version}.",
            hint=f"Published: {', '.join(map(str, table['version']))}.",
        )
    units = read_layer(ws, HISTORY_LAYER, check=False)
    units = units[units["version"].astype(int) == version].reset_index(drop=True)
    return check_layer(units, "units", source=f"{ws} version {version}")


def publishable(
    units: gpd.GeoDataFrame,
    *,
    validate: bool = True,
    validate_options: Mapping[str, Any] | None = None,
) -> gpd.GeoDataFrame:
    """``units`` checked for publishing (contract, and ``gridkit.validate_units`` when
    ``validate``); :func:`publish` runs it first, callers may run it beforehand."""
    units = check_layer(units, "units", source="units to publish")
    if validate:
        from gridkit.validate.units import validate_units

        report = validate_units(units, **dict(validate_options or {}))
        if not report.ok:
            raise InvalidLayerError(
                "The units are not valid; nothing was published.\n" + str(report),
                hint="Fix the problems (gridkit validate) or publish with validate=False.",
                problems=[p.message for p in report.errors],
            )
    return units


def publish(
    units: gpd.GeoDataFrame,
    workspace: str | Path,
    *,
    note: str = "",
    published_at: pd.Timestamp | None = None,
    validate: bool = True,
    validate_options: Mapping[str, Any] | None = None,
) -> tuple[int, Diff | None]:
    """Publish ``units`` as the next version of the grid in ``workspace``.

    Checks the units (contract, and ``gridkit.validate_units`` when ``validate``),
    diffs them against the version in force, and writes: layer ``units`` (the version
    in force, with ``version`` set), ``unit_versions`` (every published version),
    ``lineage`` (appended, with the new ``version``) and ``versions``.

    Returns
    -------
    (version, diff)
        The new version number and the diff against the previous one (None for the
        first version).
    """
    ws = Path(workspace)
    units = publishable(units, validate=validate, validate_options=validate_options)
    table = versions(ws)
    previous = int(table["version"].max()) if not table.empty else 0
    version = previous + 1
    when = published_at if published_at is not None else pd.Timestamp.now(tz="UTC")
    units = units.copy()
    units["version"] = version
    diff = None
    if previous:
        diff = diff_units(read_version(ws, previous), units)
        lineage = diff.lineage.assign(version=version)
        write_layer(lineage, ws, "lineage", append=True)
    write_layer(units, ws, "units")
    write_layer(units, ws, HISTORY_LAYER, append=True)
    row = pd.DataFrame(
        {"version": [version], "published_at": [when], "n_units": [len(units)], "note": [note]}
    )
    write_layer(row, ws, VERSIONS_LAYER, append=True)
    return version, diff
