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

from gridkit.crs import local_metric_crs
from gridkit.errors import GridkitError, InvalidLayerError
from gridkit.io import read_layer, write_layer
from gridkit.layers import WATER_KINDS, check_layer
from gridkit.validate.units import validate_units

__all__ = [
    "CarryOver",
    "Diff",
    "Workspace",
    "carry_over",
    "diff_units",
    "publish",
    "publishable",
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
    ``published_at``, ``n_units``, ``note``; empty when none was published.

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
    return ws.read(VERSIONS_LAYER)


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


def publish(
    units: gpd.GeoDataFrame,
    workspace: str | os.PathLike | Workspace,
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

    Parameters
    ----------
    --The first version into a file, the second through a store:

    workspace
        A workspace GeoPackage, or a store (:func:`gridkit.store.open_store`): then the
        version is written under the store's one writer (the units are checked before
        taking it), and the store serves the new grid at once.

    Returns
    -------
    (version, diff)
        The new version number and the diff against the previous one (None for the
        first version).

    Examples
    --------
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
    >>> tmp.cleanup()
    """
    units = publishable(units, validate=validate, validate_options=validate_options)
    ws = _workspace(workspace)
    when = published_at if published_at is not None else pd.Timestamp.now(tz="UTC")
    # checked before: a city's grid takes a while; then one writer from read to write
    with ws.exclusive():
        return _write_version(ws, units, note=note, when=when)


def _write_version(
    ws: Workspace, units: gpd.GeoDataFrame, *, note: str, when: pd.Timestamp
) -> tuple[int, Diff | None]:
    """The next version written: lineage against the one in force, units, history, row."""
    table = versions(ws)
    previous = int(table["version"].max()) if not table.empty else 0
    version = previous + 1
    units = units.copy()
    units["version"] = version
    diff = None
    if previous:
        diff = diff_units(read_version(ws, previous), units)
        ws.save_layer("lineage", diff.lineage.assign(version=version), append=True)
    ws.save_layer("units", units)
    ws.save_layer(HISTORY_LAYER, units, append=True)
    row = pd.DataFrame(
        {"version": [version], "published_at": [when], "n_units": [len(units)], "note": [note]}
    )
    ws.save_layer(VERSIONS_LAYER, row, append=True)
    return version, diff
