"""Grid versions: compare two grids, record lineage, carry assignments and history over.

Planners redraw grids, compare the draft with the version in force, and publish it.
:func:`diff_units` says which units are unchanged, modified, split, merged, added or
removed (the ``lineage`` layer), :func:`carry_over` keeps workers on units that
survive and proposes workers for the rest, :func:`remap_unit_ids` re-indexes
history (patrols, reports) to the new units, and :func:`publish` records a new
version in a workspace: a GeoPackage file, or a store (``gridkit.store``) a running
service reads, which then serves the new grid at once.

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

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gridkit import codes
from gridkit.crs import local_metric_crs
from gridkit.errors import GridkitError, InvalidLayerError, format_rows
from gridkit.io import read_layer, write_layer
from gridkit.layers import WATER_KINDS, check_layer, contract_ints
from gridkit.validate.units import validate_units

__all__ = [
    "MAX_REMOVED_SHARE",
    "CarryOver",
    "ConfirmationRequiredError",
    "Diff",
    "Preview",
    "VersionWriteError",
    "Workspace",
    "carry_over",
    "confirm_reasons",
    "diff_units",
    "preview",
    "publish",
    "publishable",
    "read_version",
    "remap_unit_ids",
    "restore",
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

    Examples
    --------
    >>> from gridkit.synth.ops import grid_units
    >>> old = grid_units(2, 1).assign(unit_id=["A", "B"])
    >>> new = grid_units(3, 1, cell_deg=0.004).assign(unit_id=["A", "B", "C"])
    >>> diff = diff_units(old, new)
    >>> str(diff)
    '2 old units -> 3 new units: 2 split; 147 households change unit'
    >>> sorted(diff.touched_ids()), len(diff.changed)
    (['A', 'B', 'C'], 4)
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
        "households_moved": 0,
        "length_moved_m": 0.0,
    }
    for col, key in (("households", "households_moved"), ("length_m", "length_moved_m")):
        if col in old.columns:
            values = pd.to_numeric(old[col], errors="coerce").fillna(0).to_numpy(dtype=float)
            removed_ids = lineage.loc[lineage["relation"] == "removed", "old_id"]
            removed = old["unit_id"].astype(str).isin(removed_ids).to_numpy()
            total = (values[oi][moved] * pairs["share"].to_numpy()[moved]).sum()
            total += values[removed].sum()  # households by area share: whole households
            summary[key] = round(float(total)) if col == "households" else round(float(total), 1)
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

    Examples
    --------
    >>> import pandas as pd
    >>> from gridkit.synth.ops import grid_units
    >>> units = grid_units(2, 1).assign(unit_id=["A", "B"])
    >>> lineage = diff_units(units, units).lineage
    >>> result = carry_over(pd.DataFrame({"unit_id": ["A"], "worker_id": ["W1"]}), lineage)
    >>> isinstance(result, CarryOver), result.needs_decision["unit_id"].tolist()
    (True, ['B'])
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

    Examples
    --------
    >>> import pandas as pd
    >>> from gridkit.synth.ops import grid_units
    >>> old = grid_units(2, 1).assign(unit_id=["A", "B"])
    >>> new = grid_units(3, 1, cell_deg=0.004).assign(unit_id=["A", "B", "C"])
    >>> result = carry_over(pd.DataFrame({"unit_id": ["A", "B"], "worker_id": ["W1", "W2"]}),
    ...                     diff_units(old, new).lineage)
    >>> result.assignments[["unit_id", "worker_id", "decision"]].values.tolist()
    [['A', 'W1', 'proposed'], ['B', 'W2', 'proposed'], ['C', 'W2', 'proposed']]
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

    Examples
    --------
    >>> import pandas as pd
    >>> from gridkit.synth.ops import grid_units
    >>> old = grid_units(2, 1).assign(unit_id=["A", "B"])
    >>> new = grid_units(1, 1, cell_deg=0.01).assign(unit_id=["AB"])  # A and B merged
    >>> remap_unit_ids(pd.Series(["A", "B", "X"]), diff_units(old, new).lineage).tolist()
    ['AB', 'AB', 'X']
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


@runtime_checkable
class Workspace(Protocol):
    """What publishing needs of where versions live: a :class:`gridkit.store.Store`
    has it (``gridkit.versions`` does not import the store: capabilities never import
    each other); a workspace path is wrapped in one that reads and writes the file.

    Examples
    --------
    A store is a workspace; a path is wrapped in one by the functions:

    >>> import tempfile
    >>> from gridkit.store import create_store
    >>> from gridkit.synth.ops import grid_units
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = create_store(f"{tmp.name}/ws.gpkg", {"units": grid_units(2, 1)})
    >>> isinstance(store, Workspace), isinstance("ws.gpkg", Workspace)
    (True, False)
    >>> tmp.cleanup()
    """

    def layers(self) -> list[str]: ...
    def read(self, layer: str) -> pd.DataFrame: ...
    def save_layer(self, layer: str, frame: pd.DataFrame, *, append: bool = False) -> None: ...
    def exclusive(self) -> AbstractContextManager[Any]: ...


class _File:
    """A workspace GeoPackage read and written directly (no service reads it)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __str__(self) -> str:
        return str(self.path)

    def layers(self) -> list[str]:
        if not self.path.exists():
            return []
        return [str(n) for n, _ in pyogrio.list_layers(self.path)]

    def read(self, layer: str) -> pd.DataFrame:
        return read_layer(self.path, layer, check=False)

    def save_layer(self, layer: str, frame: pd.DataFrame, *, append: bool = False) -> None:
        write_layer(frame, self.path, layer, append=append)

    def exclusive(self) -> AbstractContextManager[Any]:
        return nullcontext()  # one writer: the command line publishing


def _workspace(workspace: str | os.PathLike | Workspace) -> Workspace:
    if isinstance(workspace, str | os.PathLike):
        return _File(Path(workspace))
    return workspace


def _name(ws: Workspace) -> str:
    """The workspace as messages name it: its file."""
    return str(getattr(ws, "path", ws))


def versions(workspace: str | os.PathLike | Workspace) -> pd.DataFrame:
    """The published versions of a workspace (a path or a store): ``version``,
    ``published_at``, ``n_units``, ``note``, and for versions published since these
    were recorded ``area`` (a redraw of one area) and ``restored_from``; empty when
    none was published.

    Examples
    --------
    Nothing published at first, then the first grid:

    >>> import tempfile
    >>> from gridkit.synth.ops import grid_units
    >>> tmp = tempfile.TemporaryDirectory()
    >>> ws = f"{tmp.name}/ws.gpkg"
    >>> versions(ws).empty
    True
    >>> _ = publish(grid_units(2, 1), ws, note="first grid", validate=False)
    >>> versions(ws)[["version", "n_units", "note"]].values.tolist()
    [[1, 2, 'first grid']]
    >>> tmp.cleanup()
    """
    ws = _workspace(workspace)
    if VERSIONS_LAYER not in ws.layers():
        return pd.DataFrame(columns=["version", "published_at", "n_units", "note"])
    table = ws.read(VERSIONS_LAYER)
    if "restored_from" in table.columns:  # read back as floats where none was restored
        table["restored_from"] = pd.to_numeric(table["restored_from"]).astype("Int64")
    return table


def read_version(
    workspace: str | os.PathLike | Workspace, version: int | None = None
) -> gpd.GeoDataFrame:
    """Units of a published version (the one in force when ``version`` is None).

    Examples
    --------
    Two versions published; the one in force is the second:

    >>> import tempfile
    >>> from gridkit.synth.ops import grid_units
    >>> tmp = tempfile.TemporaryDirectory()
    >>> ws = f"{tmp.name}/ws.gpkg"
    >>> _ = publish(grid_units(2, 1), ws, validate=False)
    >>> _ = publish(grid_units(3, 1), ws, validate=False)
    >>> len(read_version(ws)), len(read_version(ws, 1))
    (3, 2)
    >>> read_version(ws, 7)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gridkit.errors.GridkitError: .../ws.gpkg: no version 7.
    Hint: Published: 1, 2.
    >>> tmp.cleanup()
    """
    ws = _workspace(workspace)
    table = versions(ws)
    if table.empty:
        raise GridkitError(
            f"{_name(ws)}: no version has been published.",
            hint="Publish one with `gridkit publish UNITS --workspace W`.",
        )
    version = int(table["version"].max()) if version is None else int(version)
    if version not in set(table["version"].astype(int)):
        raise GridkitError(
            f"{_name(ws)}: no version {version}.",
            hint=f"Published: {', '.join(map(str, table['version']))}.",
        )
    units = ws.read(HISTORY_LAYER)
    units = units[units["version"].astype(int) == version].reset_index(drop=True)
    return check_layer(units, "units", source=f"{_name(ws)} version {version}")


def publishable(
    units: gpd.GeoDataFrame,
    *,
    validate: bool = True,
    validate_options: Mapping[str, Any] | None = None,
) -> gpd.GeoDataFrame:
    """``units`` checked for publishing (contract, and ``gridkit.validate_units`` when
    ``validate``); :func:`publish` runs it first, callers may run it beforehand.

    Examples
    --------
    >>> from gridkit.synth.ops import grid_units
    >>> len(publishable(grid_units(2, 2), validate=False))
    4
    >>> try:
    ...     publishable(grid_units(2, 2).drop(columns="unit_id"))
    ... except InvalidLayerError as exc:
    ...     print(exc.message)
    units to publish, layer 'units' is missing column(s) unit_id.
    """
    units = check_layer(units, "units", source="units to publish")
    if validate:
        report = validate_units(units, **dict(validate_options or {}))
        if not report.ok:
            raise InvalidLayerError(
                "The units are not valid; nothing was published.\n" + str(report),
                hint="Fix the problems (gridkit validate) or publish with validate=False.",
                problems=[p.message for p in report.errors],
            )
    return units


#: a draft removing more than this share of the units in force needs ``confirm=True``
MAX_REMOVED_SHARE = 0.2
#: report statuses of cases no longer open (as the coverage map counts them)
CLOSED_STATUSES = ("resolved", "verified", "closed", "rejected")


class ConfirmationRequiredError(GridkitError):
    """A draft the guard (:func:`confirm_reasons`) stops: publish it with ``confirm=True``
    after reading its :class:`Preview` (``.preview``)."""

    def __init__(self, preview: Preview) -> None:
        super().__init__(
            "This draft needs confirmation; nothing was published: "
            + "; ".join(preview.reasons)
            + ".",
            hint="Read the preview (dry run) and publish again with confirm=true, or "
            "publish a redraw of one area (area=ADMIN_CODE).",
        )
        self.preview = preview


class VersionWriteError(GridkitError):
    """Writing a version failed on the workspace's side (a disk, a lock, a file): not
    the draft's fault. The message names the workspace; a service logs it and answers
    without it."""


def confirm_reasons(
    old: pd.DataFrame,
    new: pd.DataFrame,
    lineage: pd.DataFrame,
    *,
    max_removed_share: float = MAX_REMOVED_SHARE,
) -> list[str]:
    """The publishing guard: why replacing ``old`` by ``new`` needs a confirmation.

    A unit in force is *removed* when the lineage gives it no successor (no unit of
    its family, water or community, overlaps it in the draft). The draft needs
    ``confirm=True`` when it removes more than ``max_removed_share`` of the units in
    force, or removes units of a family (river and water units vs community grids)
    of which it has none: a river grid posted for a community grid, or the reverse.

    Parameters
    ----------
    old, new
        The units in force and the draft (columns ``unit_id`` and ``kind``).
    lineage
        The lineage from ``diff_units(old, new)``.
    max_removed_share
        Share of the units in force a draft may remove without confirmation.

    Returns
    -------
    list of str
        Empty when the draft may be published as it is; else one sentence per reason.

    Examples
    --------
    >>> from gridkit.synth.ops import grid_units
    >>> grid = grid_units(5, 2, river_rows=1)  # 5 river units, 5 community grids
    >>> confirm_reasons(grid, grid, diff_units(grid, grid).lineage)
    []
    >>> rivers = grid[grid["kind"] == "river_reach"]
    >>> for reason in confirm_reasons(grid, rivers, diff_units(grid, rivers).lineage):
    ...     print(reason)
    it removes 5 of the 10 units in force (50 %, more than 20 %)
    it removes 5 community units and has none of that kind
    """
    removed_ids = lineage.loc[lineage["relation"] == "removed", "old_id"]
    removed = old["unit_id"].astype(str).isin(removed_ids.astype(str)).to_numpy()
    reasons = []
    n_old, n_removed = len(old), int(removed.sum())
    if n_old and n_removed / n_old > max_removed_share:
        reasons.append(
            f"it removes {n_removed:,} of the {n_old:,} units in force "
            f"({n_removed / n_old:.0%}, more than {max_removed_share:.0%})".replace("%", " %")
        )
    old_family, new_families = _family(old), set(_family(new).tolist())
    for water, name in ((True, "river and water"), (False, "community")):
        gone = removed & (old_family == water)
        if gone.any() and water not in new_families:
            reasons.append(f"it removes {int(gone.sum()):,} {name} units and has none of that kind")
    return reasons


@dataclass
class Preview:
    """What publishing a draft would do (:func:`preview`); nothing is written.

    Attributes
    ----------
    version
        The version in force (0: none published; the ``units`` layer, if any, is the
        grid in force).
    units
        The grid that would be in force: the draft, or for a redraw of one area the
        units in force outside it with the draft's units inside it.
    diff
        Against the grid in force (None when there is none).
    area
        The area redrawn (an admin code), None for the whole grid.
    reasons
        Why it needs ``confirm=True`` (:func:`confirm_reasons`); empty when it does not.
    staffing
        Units and staffed units before and after: ``units_before``,
        ``staffed_before``, ``units_after``, ``staffed_after`` (units keeping their id
        and worker), ``proposed_after`` (more units :func:`carry_over` would staff),
        ``workers_before`` and ``workers_after`` (workers with a unit in the grid).
    affected
        Units in force that would disappear (their id is not in the new grid) and have
        a worker or open cases: ``unit_id``, ``relation``, ``workers``, ``open_reports``.

    Examples
    --------
    >>> import tempfile
    >>> from gridkit.synth.ops import grid_units
    >>> tmp = tempfile.TemporaryDirectory()
    >>> ws = f"{tmp.name}/ws.gpkg"
    >>> _ = publish(grid_units(4, 1), ws, validate=False)
    >>> p = preview(grid_units(1, 1), ws, validate=False)
    >>> p.needs_confirm, p.to_dict()["changes"]["old_units"]["removed"]
    (True, 3)
    >>> tmp.cleanup()
    """

    version: int
    units: gpd.GeoDataFrame
    diff: Diff | None
    area: str | None
    reasons: list[str]
    staffing: dict[str, Any]
    affected: pd.DataFrame

    @property
    def needs_confirm(self) -> bool:
        """Whether publishing it needs ``confirm=True``."""
        return bool(self.reasons)

    def to_dict(self, *, limit: int = 100) -> dict[str, Any]:
        """Plain JSON-ready values: the first ``limit`` affected units and their count."""
        affected = self.affected.head(limit)
        s = self.staffing
        return {
            "version_in_force": self.version,
            "area": self.area,
            "n_units": len(self.units),
            "changes": None if self.diff is None else self.diff.summary,
            "summary": None if self.diff is None else str(self.diff),
            "needs_confirm": self.needs_confirm,
            "reasons": list(self.reasons),
            "staffing": {
                **s,
                "share_before": _share(s["staffed_before"], s["units_before"]),
                "share_after": _share(s["staffed_after"], s["units_after"]),
            },
            "affected_units": len(self.affected),
            "affected_open_reports": int(self.affected["open_reports"].sum()),
            "affected": [
                {
                    "unit_id": str(r.unit_id),
                    "relation": str(r.relation),
                    "workers": list(r.workers),
                    "open_reports": int(r.open_reports),
                }
                for r in affected.itertuples()  # at most `limit` rows
            ],
        }

    def __str__(self) -> str:
        d = self.to_dict()
        st = d["staffing"]
        lines = [
            d["summary"] or f"{d['n_units']:,} units (no grid in force)",
            f"staffed units: {st['staffed_before']:,}/{st['units_before']:,} "
            f"({st['share_before']:.0%}) -> {st['staffed_after']:,}/{st['units_after']:,} "
            f"({st['share_after']:.0%}); {st['proposed_after']:,} more by carry-over",
            f"workers with units: {st['workers_before']:,} -> {st['workers_after']:,}",
            f"units removed with a worker or open cases: {d['affected_units']:,} "
            f"({d['affected_open_reports']:,} open cases)",
        ]
        lines += [f"needs confirmation: {r}" for r in self.reasons]
        return "\n".join(lines)


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _in_force(ws: Workspace) -> tuple[int, gpd.GeoDataFrame | None]:
    """The version in force and its units; an unversioned ``units`` layer is in force
    too (a workspace built before anything was published)."""
    table = versions(ws)
    if not table.empty:
        version = int(table["version"].max())
        return version, read_version(ws, version).drop(columns="version")
    if "units" in ws.layers():
        units = ws.read("units")
        if len(units):
            return 0, check_layer(units, "units", source=f"{_name(ws)} units")
    return 0, None


def _redraw_of_area(
    draft: gpd.GeoDataFrame, in_force: gpd.GeoDataFrame | None, area: str, ws: Workspace
) -> gpd.GeoDataFrame:
    """The grid in force with the units of ``area`` replaced by the draft's."""
    if in_force is None:
        raise InvalidLayerError(
            f"{_name(ws)}: no grid in force to redraw an area of.",
            hint="Publish the whole grid first (without area).",
        )
    outside = ~codes.in_scope(draft["admin_code"], area).to_numpy()
    if outside.any():
        raise InvalidLayerError(
            f"A redraw of area {area} may only hold units of that area; "
            f"{int(outside.sum())} lie outside it: "
            f"{format_rows(draft.loc[outside, 'unit_id'])}. Nothing was published.",
            hint="Remove them from the upload, or publish the whole grid (without area).",
        )
    kept = in_force[~codes.in_scope(in_force["admin_code"], area).to_numpy()]
    clash = draft["unit_id"].astype(str).isin(kept["unit_id"].astype(str)).to_numpy()
    if clash.any():
        raise InvalidLayerError(
            f"Unit ids of the redraw of area {area} are taken by units outside it: "
            f"{format_rows(draft.loc[clash, 'unit_id'])}.",
            hint="Unit ids embed their area's code: give the new units ids of the area.",
        )
    kept = kept.to_crs(draft.crs) if draft.crs is not None else kept
    out = pd.concat([kept, draft], ignore_index=True)
    return gpd.GeoDataFrame(out, geometry=draft.geometry.name, crs=draft.crs)


def _staffing_and_affected(
    ws: Workspace, old: gpd.GeoDataFrame | None, new: gpd.GeoDataFrame, diff: Diff | None
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Staffing before and after, and the disappearing units with workers or cases."""
    layers = set(ws.layers())
    old_ids = pd.Index([] if old is None else old["unit_id"].astype(str))
    new_ids = pd.Index(new["unit_id"].astype(str))
    assign = pd.DataFrame(columns=["unit_id", "worker_id"])
    if "assignments" in layers:
        assign = ws.read("assignments")
        if "valid_to" in assign.columns:
            ended = pd.to_datetime(assign["valid_to"], utc=True, errors="coerce")
            assign = assign[ended.isna() | (ended > pd.Timestamp.now(tz="UTC"))]
    unit_ids = assign["unit_id"].astype(str)
    assigned = pd.Index(assign["unit_id"].dropna().astype(str).unique())
    proposed = 0
    if diff is not None and len(assign):
        carried = carry_over(assign, diff.lineage).assignments["unit_id"].astype(str)
        proposed = int(new_ids.isin(carried).sum() - new_ids.isin(assigned).sum())
    staffing = {
        "units_before": len(old_ids),
        "staffed_before": int(old_ids.isin(assigned).sum()),
        "units_after": len(new_ids),
        "staffed_after": int(new_ids.isin(assigned).sum()),
        "proposed_after": max(proposed, 0),
        # workers left without a unit: they lose their place (and their scope) in the grid
        "workers_before": int(assign.loc[unit_ids.isin(old_ids), "worker_id"].nunique()),
        "workers_after": int(assign.loc[unit_ids.isin(new_ids), "worker_id"].nunique()),
    }
    gone = old_ids[~old_ids.isin(new_ids)]
    workers = assign.assign(unit_id=assign["unit_id"].astype(str))
    workers = workers[workers["unit_id"].isin(gone)].groupby("unit_id")["worker_id"]
    per_unit = pd.DataFrame(
        {"workers": workers.agg(lambda w: sorted(set(map(str, w)))), "open_reports": 0}
    )
    if "reports" in layers:
        rep = ws.read("reports")
        if {"unit_id", "status"} <= set(rep.columns):
            open_ = rep[~rep["status"].astype(str).isin(CLOSED_STATUSES)]
            counts = open_["unit_id"].dropna().astype(str).value_counts()
            counts = counts[counts.index.isin(gone)]
            per_unit = per_unit.reindex(per_unit.index.union(counts.index))
            per_unit["open_reports"] = counts.reindex(per_unit.index).fillna(0).astype(int)
    per_unit["workers"] = [w if isinstance(w, list) else [] for w in per_unit["workers"]]
    relation = pd.Series("removed", index=per_unit.index, dtype=object)
    if diff is not None:
        first = diff.lineage.dropna(subset=["old_id"]).drop_duplicates("old_id")
        relation = first.set_index("old_id")["relation"].reindex(per_unit.index).fillna("removed")
    affected = per_unit.assign(relation=relation).rename_axis("unit_id").reset_index()
    return staffing, affected[["unit_id", "relation", "workers", "open_reports"]]


def preview(
    units: gpd.GeoDataFrame,
    workspace: str | os.PathLike | Workspace,
    *,
    area: str | None = None,
    validate: bool = True,
    validate_options: Mapping[str, Any] | None = None,
    max_removed_share: float = MAX_REMOVED_SHARE,
) -> Preview:
    """What publishing ``units`` to ``workspace`` would do; nothing is written.

    Parameters
    ----------
    units
        The draft: the whole grid, or with ``area`` the units of that area only.
    workspace
        A workspace GeoPackage or a store.
    area
        An admin code: a redraw of that area only. The units in force inside it are
        replaced by the draft, every other unit is kept with its id; a draft unit
        outside the area is refused (:class:`~gridkit.errors.InvalidLayerError`).
    validate, validate_options
        As for :func:`publishable` (the grid that would be in force is checked).
    max_removed_share
        The guard's threshold (:func:`confirm_reasons`).

    Returns
    -------
    Preview
        The diff, the staffing before and after, the units removed with workers or
        open cases, and why it needs a confirmation.

    Examples
    --------
    A redraw of one district keeps the rest of the city as it is:

    >>> import tempfile, pandas as pd
    >>> from gridkit.synth.ops import grid_units
    >>> tmp = tempfile.TemporaryDirectory()
    >>> ws = f"{tmp.name}/ws.gpkg"
    >>> city = pd.concat([grid_units(2, 1, admin_code="430202001"),
    ...                   grid_units(2, 1, x0=113.2, admin_code="430203001")])
    >>> _ = publish(city, ws, validate=False)
    >>> redraw = grid_units(1, 1, cell_deg=0.01, admin_code="430202001")
    >>> p = preview(redraw, ws, area="430202", validate=False)
    >>> print(p.diff)
    4 old units -> 3 new units: 2 unchanged, 2 merged; 283 households change unit
    >>> sorted(p.units["unit_id"])
    ['430202001000000', '430203001000000', '430203001000001']
    >>> tmp.cleanup()
    """
    draft = check_layer(units, "units", source="units to publish")
    draft = draft.drop(columns="version", errors="ignore")
    ws = _workspace(workspace)
    version, in_force = _in_force(ws)
    if area is not None:
        if not str(area).isdigit() or codes.level(str(area)) is None:
            raise InvalidLayerError(
                f"area={area!r} is not an admin code.", hint="Give one like 430202 or 430202001."
            )
        area = str(codes.normalise(str(area)))
    grid = draft if area is None else _redraw_of_area(draft, in_force, area, ws)
    grid = publishable(grid, validate=validate, validate_options=validate_options)
    diff = None if in_force is None else diff_units(in_force, grid)
    reasons = (
        []
        if in_force is None or diff is None
        else confirm_reasons(in_force, grid, diff.lineage, max_removed_share=max_removed_share)
    )
    staffing, affected = _staffing_and_affected(ws, in_force, grid, diff)
    return Preview(version, grid, diff, area, reasons, staffing, affected)


def publish(
    units: gpd.GeoDataFrame,
    workspace: str | os.PathLike | Workspace,
    *,
    note: str = "",
    published_at: pd.Timestamp | None = None,
    validate: bool = True,
    validate_options: Mapping[str, Any] | None = None,
    area: str | None = None,
    confirm: bool = False,
    max_removed_share: float = MAX_REMOVED_SHARE,
) -> tuple[int, Diff | None]:
    """Publish ``units`` as the next version of the grid in ``workspace``.

    Checks the units (contract, and ``gridkit.validate_units`` when ``validate``),
    diffs them against the grid in force, and writes: layer ``units`` (the version
    in force, with ``version`` set), ``unit_versions`` (every published version),
    ``lineage`` (appended, with the new ``version``) and ``versions``.

    Parameters
    ----------
    units
        The new grid, or with ``area`` the new units of that area.
    workspace
        A workspace GeoPackage, or a store (:func:`gridkit.store.open_store`): then the
        version is written under the store's one writer (the units are checked before
        taking it), and the store serves the new grid at once.
    note
        What changed and why.
    area
        An admin code: publish a redraw of that area only; the rest of the grid is
        kept with its ids (see :func:`preview`).
    confirm
        Publish even when the guard (:func:`confirm_reasons`) stops the draft: it
        removes more than ``max_removed_share`` of the units in force, or units of a
        kind it has none of. Without it such a draft raises
        :class:`ConfirmationRequiredError` carrying the :class:`Preview`.

    Returns
    -------
    (version, diff)
        The new version number and the diff against the grid in force (None when
        there was none).

    Raises
    ------
    InvalidLayerError
        The units are not valid, or a redraw of an area holds units outside it.
    ConfirmationRequiredError
        The draft needs ``confirm=True``; nothing was written.
    VersionWriteError
        Writing failed on the workspace's side; no version was recorded.

    Examples
    --------
    The first version into a file, the second through a store:

    >>> import tempfile
    >>> from gridkit.store import open_store
    >>> from gridkit.synth.ops import grid_units
    >>> tmp = tempfile.TemporaryDirectory()
    >>> ws = f"{tmp.name}/ws.gpkg"
    >>> publish(grid_units(2, 1), ws, note="first grid", validate=False)
    (1, None)
    >>> store = open_store(ws)  # a running service's store: it serves the new grid
    >>> version, diff = publish(grid_units(3, 1), store, validate=False)
    >>> version, diff.summary["n_new"], len(store.read("units"))
    (2, 3, 3)

    A draft dropping most of the grid is stopped until confirmed:

    >>> publish(grid_units(1, 1), store, validate=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gridkit.versions.ConfirmationRequiredError: This draft needs confirmation; ...
    >>> publish(grid_units(1, 1), store, validate=False, confirm=True)[0]
    3
    >>> tmp.cleanup()
    """
    return _publish(
        units,
        _workspace(workspace),
        note=note,
        when=published_at,
        options={
            "area": area,
            "validate": validate,
            "validate_options": validate_options,
            "max_removed_share": max_removed_share,
        },
        confirm=confirm,
    )


def _publish(
    units: gpd.GeoDataFrame,
    ws: Workspace,
    *,
    note: str,
    when: pd.Timestamp | None,
    options: dict[str, Any],
    confirm: bool,
    restored_from: int | None = None,
) -> tuple[int, Diff | None]:
    # checked before: a city's grid takes a while; then one writer from read to write
    p = preview(units, ws, **options)
    with ws.exclusive():
        table = versions(ws)  # another version came in meanwhile: preview it again
        if (int(table["version"].max()) if not table.empty else 0) != p.version:
            p = preview(units, ws, **options)
        if p.needs_confirm and not confirm:
            raise ConfirmationRequiredError(p)
        when = when if when is not None else pd.Timestamp.now(tz="UTC")
        extra = {"area": p.area, "restored_from": restored_from}
        return _write_version(ws, p, note=note, when=when, extra=extra)


def restore(
    workspace: str | os.PathLike | Workspace,
    version: int,
    *,
    note: str = "",
    confirm: bool = False,
    published_at: pd.Timestamp | None = None,
) -> tuple[int, Diff | None]:
    """Publish the units of an earlier ``version`` again, as a new version.

    The restored grid is diffed against the one in force (its lineage recorded like
    any other version's) and its row in ``versions`` says ``restored_from``. The guard
    applies as to :func:`publish` (``confirm``).

    Examples
    --------
    >>> import tempfile
    >>> from gridkit.synth.ops import grid_units
    >>> tmp = tempfile.TemporaryDirectory()
    >>> ws = f"{tmp.name}/ws.gpkg"
    >>> _ = publish(grid_units(4, 1), ws, validate=False)
    >>> _ = publish(grid_units(1, 1), ws, validate=False, confirm=True)  # oops
    >>> version, diff = restore(ws, 1)
    >>> version, len(read_version(ws)), diff.summary["new_units"]["added"]
    (3, 4, 3)
    >>> versions(ws)[["version", "restored_from"]].values.tolist()[-1]
    [3, 1]
    >>> tmp.cleanup()
    """
    ws = _workspace(workspace)
    units = read_version(ws, version).drop(columns="version")
    return _publish(
        units,
        ws,
        note=note or f"restored from version {int(version)}",
        when=published_at,
        options={"validate": False},  # it was checked when first published
        confirm=confirm,
        restored_from=int(version),
    )


def _append(ws: Workspace, layer: str, frame: pd.DataFrame, *, after: int) -> None:
    """Append rows to a versioned layer; rewrite it instead when the rows bring new
    columns (a layer's schema is fixed once written) or rows of a version after
    ``after`` are left over from a write that failed half-way."""
    if layer not in ws.layers():
        ws.save_layer(layer, frame)
        return
    existing = ws.read(layer)
    stale = (
        pd.to_numeric(existing["version"], errors="coerce").to_numpy() > after
        if "version" in existing.columns
        else np.zeros(len(existing), dtype=bool)
    )
    if stale.any() or set(frame.columns) - set(existing.columns):
        # as read back (a database's nullable integers may come as floats): typed again
        both = pd.concat([_typed(existing[~stale], layer), frame], ignore_index=True)
        if isinstance(frame, gpd.GeoDataFrame):
            both = gpd.GeoDataFrame(both, geometry=frame.geometry.name, crs=frame.crs)
        ws.save_layer(layer, both)
        return
    ws.save_layer(layer, frame, append=True)


def _typed(frame: pd.DataFrame, layer: str) -> pd.DataFrame:
    """A copy of ``frame`` with the integer columns of the contract as nullable
    integers (:func:`gridkit.layers.contract_ints`; ``unit_versions`` is typed as
    ``units``)."""
    return contract_ints(frame, "units" if layer == HISTORY_LAYER else layer).copy()


def _write_version(
    ws: Workspace, p: Preview, *, note: str, when: pd.Timestamp, extra: dict[str, Any]
) -> tuple[int, Diff | None]:
    """The next version written: history, lineage, units, and its row last (a version
    is published when its row is written; a failure before leaves the grid in force)."""
    table = versions(ws)
    previous = int(table["version"].max()) if not table.empty else 0
    version = previous + 1
    units = _typed(p.units, "units")
    units["version"] = version
    row = pd.DataFrame(
        {
            "version": [version],
            "published_at": [when],
            "n_units": [len(units)],
            "note": [note],
            "area": pd.array([extra["area"]], dtype="string"),
            "restored_from": pd.array([extra["restored_from"]], dtype="Int64"),
        }
    )
    try:
        _append(ws, HISTORY_LAYER, units, after=previous)
        if p.diff is not None:
            _append(ws, "lineage", p.diff.lineage.assign(version=version), after=previous)
        ws.save_layer("units", units)
        _append(ws, VERSIONS_LAYER, row, after=previous)
    except Exception as exc:  # the workspace's failure, not the draft's
        raise VersionWriteError(
            f"{_name(ws)}: writing version {version} failed ({type(exc).__name__}: {exc}).",
            hint="Check the workspace (disk space, permissions, other writers) and publish again.",
        ) from exc
    return version, p.diff
