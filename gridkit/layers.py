"""The data contract: every layer's columns, geometry and ids, and one check for all.

:data:`LAYERS` describes each layer of the design's contract. :func:`check_layer`
checks a (Geo)DataFrame against it and raises one :class:`InvalidLayerError` that lists
every problem found, naming the source, the layer and the offending row ids.

Examples
--------
>>> import geopandas as gpd
>>> from shapely import LineString
>>> rivers = gpd.GeoDataFrame({"river_id": ["R1"], "name": ["湘江"]},
...                           geometry=[LineString([(113.0, 27.8), (113.1, 27.9)])], crs=4326)
>>> check_layer(rivers, "rivers").shape
(1, 3)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.errors import GridkitWarning, InvalidLayerError, format_rows

__all__ = [
    "CHIEF_LEVELS",
    "CHIEF_ROLES",
    "LAYERS",
    "PATROL_MODES",
    "WATER_KINDS",
    "Column",
    "LayerSpec",
    "check_layer",
    "contract_ints",
    "layer_spec",
]

LEVELS = ("province", "city", "county", "township", "village")
#: levels of river chiefs: the admin levels and the general chief (总河长) of an area.
CHIEF_LEVELS = (*LEVELS, "general")
#: roles in the river_chiefs table: only ``chief`` carries a patrol duty; the river police
#: chief (河道警长), civilian chief (民间河长) and cleaner (保洁员) report but are not assessed.
CHIEF_ROLES = ("chief", "police", "civilian", "cleaner")
#: how a patrol went (declared per patrol); each has its plausibility in patrol_rules.toml.
PATROL_MODES = ("foot", "bike", "boat", "car", "drone")
#: unit kinds of the water family (reaches, water bodies); the rest are community grids.
#: The two families are separate layers of management: a river may cross a community.
WATER_KINDS = ("river_reach", "water_body")
POLY = ("Polygon", "MultiPolygon")
LINE = ("LineString", "MultiLineString")


@dataclass(frozen=True)
class Column:
    """One column of a layer: name, kind of values and what is allowed.

    Examples
    --------
    >>> kind = layer_spec("units").columns[1]
    >>> kind.name, kind.kind, kind.nullable, kind.choices
    ('kind', 'str', False, ('river_reach', 'water_body', 'community_grid'))
    >>> Column("depth_m", "float", nullable=True).required
    True
    """

    name: str
    kind: str  # str, int, float, bool, datetime
    required: bool = True
    nullable: bool = False
    private: bool = False
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class LayerSpec:
    """A layer of the data contract.

    ``required`` lists the columns a layer must have, ``private`` the ones the API
    hides from readers without the right to see them.

    Examples
    --------
    >>> wells = LayerSpec(
    ...     "wells",
    ...     (Column("well_id", "str"), Column("phone", "str", required=False, private=True)),
    ...     ("Point",),
    ...     id="well_id",
    ... )
    >>> wells.required, wells.private
    (['well_id'], ['phone'])
    """

    name: str
    columns: tuple[Column, ...]
    geometry: tuple[str, ...] | None  # allowed geometry types; None = attribute table
    id: str | None = None
    geometry_nullable: bool = False
    private_geometry: bool = False
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def private(self) -> list[str]:
        return [c.name for c in self.columns if c.private]

    def column(self, name: str) -> Column | None:
        """The column called ``name`` (None when the layer has no such column).

        Examples
        --------
        >>> layer_spec("reports").column("due_at").nullable, layer_spec("units").column("x")
        (True, None)
        """
        return next((c for c in self.columns if c.name == name), None)


def _c(name: str, kind: str = "str", **kw) -> Column:
    return Column(name, kind, **kw)


_REPORT_STATUS = (
    "collected",
    "opened",
    "dispatched",
    "handling",
    "reported_back",
    "verified",
    "closed",
    "returned",
    "rejected",
    # the first wave's statuses, read as collected, dispatched, handling, reported_back
    "reported",
    "assigned",
    "in_progress",
    "resolved",
)
#: posts at the centre and in departments (the ``staff`` layer)
_POSTS = ("dispatcher", "supervisor", "department")

LAYERS: dict[str, LayerSpec] = {
    s.name: s
    for s in [
        LayerSpec(
            "admin_areas",
            (
                _c("admin_code"),
                _c("name"),
                _c("level", choices=LEVELS),
                _c("parent_code", nullable=True),
            ),
            POLY,
            id="admin_code",
            description="administrative areas, province to village",
        ),
        LayerSpec("rivers", (_c("river_id"), _c("name", nullable=True)), LINE, id="river_id"),
        LayerSpec(
            "water_bodies",
            (
                _c("water_body_id"),
                _c("name", nullable=True),
                _c("kind", choices=("reservoir", "lake", "pond")),
            ),
            POLY,
            id="water_body_id",
        ),
        LayerSpec(
            "communities",
            (_c("community_id"), _c("name"), _c("admin_code")),
            POLY,
            id="community_id",
        ),
        LayerSpec(
            "buildings",
            (
                _c("building_id"),
                _c("households", "int", nullable=True),
            ),
            (*POLY, "Point"),
            id="building_id",
        ),
        LayerSpec(
            "reaches",
            (
                _c("reach_id"),
                _c("river_id"),
                _c("admin_code"),
                _c("seq", "int"),
                _c("length_m", "float"),
                _c("boundary", "bool"),
            ),
            ("LineString",),
            id="reach_id",
        ),
        LayerSpec(
            "units",
            (
                _c("unit_id"),
                _c("kind", choices=("river_reach", "water_body", "community_grid")),
                _c("parent_id", nullable=True),
                _c("reach_id", required=False, nullable=True),
                _c("admin_code"),
                _c("bank", required=False, nullable=True, choices=("both", "left", "right")),
                _c("households", "int", required=False, nullable=True),
                _c("length_m", "float", required=False, nullable=True),
                _c("area_m2", "float", required=False, nullable=True),
                _c("version", "int", required=False, nullable=True),
            ),
            ("Polygon",),
            id="unit_id",
        ),
        LayerSpec(
            "lineage",
            (
                _c("old_id", nullable=True),
                _c("new_id", nullable=True),
                _c(
                    "relation",
                    choices=("unchanged", "modified", "split", "merged", "added", "removed"),
                ),
                _c("share", "float", nullable=True),
            ),
            None,
        ),
        LayerSpec(
            "workers",
            (
                _c("worker_id"),
                _c("name"),
                _c("role", choices=("grid_worker", "building_head")),
                _c("level", choices=LEVELS),
                _c("admin_code"),
                _c("capacity", "float"),
                _c("phone", nullable=True, private=True),
            ),
            ("Point",),
            id="worker_id",
            geometry_nullable=True,
            private_geometry=True,
        ),
        LayerSpec(
            "river_chiefs",
            (
                _c("chief_id"),
                _c("worker_id"),
                _c("level", choices=CHIEF_LEVELS),
                # a general chief (总河长) holds an area, no river
                _c("river_id", nullable=True),
                _c("admin_code"),
                _c("role", required=False, nullable=True, choices=CHIEF_ROLES),
                # explicit reaches (comma-separated reach ids) instead of the whole section
                _c("reach_ids", required=False, nullable=True),
                _c("valid_from", "datetime", required=False, nullable=True),
                _c("valid_to", "datetime", required=False, nullable=True),
            ),
            None,
            id="chief_id",
            description="river chiefs' appointments: a row per chief and section",
        ),
        LayerSpec(
            "assignments",
            (
                _c("unit_id"),
                _c("worker_id"),
                _c("role", required=False),
                _c("valid_from", "datetime", required=False, nullable=True),
                _c("valid_to", "datetime", required=False, nullable=True),
            ),
            None,
        ),
        LayerSpec(
            "departments",
            (
                _c("department_id"),
                _c("name"),
                _c("admin_code"),
                _c("categories"),
                # who handles (分级处置); missing or empty: a bureau
                _c(
                    "handler_type",
                    required=False,
                    nullable=True,
                    choices=(
                        "property_company",
                        "community_committee",
                        "township_office",
                        "bureau",
                    ),
                ),
            ),
            None,
            id="department_id",
            description="handlers: bureaus, township offices, community committees, "
            "property companies, each serving an admin code at any level",
        ),
        LayerSpec(
            "patrols",
            (
                _c("patrol_id"),
                _c("worker_id"),
                _c("started_at", "datetime"),
                _c("ended_at", "datetime"),
                _c("notes", required=False, nullable=True),
                _c("mode", required=False, nullable=True, choices=PATROL_MODES),
                # app (a GPS track) or ledger (a paper record: unverified, no track)
                _c("source", required=False, nullable=True, choices=("app", "ledger")),
                _c("verified", "bool", required=False, nullable=True),
                # the appointment patrolled (paper records name it; tracks are matched)
                _c("chief_id", required=False, nullable=True),
                # the 看/查/交 item results as JSON: {"outfall": {"result": "problem", ...}}
                _c("checklist", required=False, nullable=True),
            ),
            LINE,
            id="patrol_id",
            geometry_nullable=True,
            private_geometry=True,
        ),
        LayerSpec(
            "patrol_points",
            (
                _c("patrol_id"),
                _c("t", "datetime"),
                _c("accuracy_m", "float", nullable=True),
            ),
            ("Point",),
            private_geometry=True,
        ),
        LayerSpec(
            "reports",
            (
                _c("report_id"),
                _c("category"),
                _c("description", nullable=True),
                _c("source"),
                _c("status", choices=_REPORT_STATUS),
                _c("unit_id", nullable=True),
                _c("assignee_id", nullable=True),
                _c("lead_department_id", nullable=True),
                _c("reported_at", "datetime"),
                _c("due_at", "datetime", nullable=True),
                _c("resolved_at", "datetime", nullable=True),
                _c("duplicate_of", nullable=True),
                _c("reporter_contact", nullable=True, private=True),
                _c("opened_at", "datetime", required=False, nullable=True),
                _c("closed_at", "datetime", required=False, nullable=True),
                _c("paused_at", "datetime", required=False, nullable=True),
            ),
            ("Point",),
            id="report_id",
            geometry_nullable=True,
        ),
        LayerSpec(
            "report_events",
            (
                _c("report_id"),
                _c("at", "datetime"),
                _c("actor_id", nullable=True),
                _c("from_status", nullable=True),
                _c("to_status"),
                _c("note", nullable=True),
                _c("evidence", nullable=True),
                _c("action", required=False, nullable=True),
                _c("due_at", "datetime", required=False, nullable=True),
            ),
            None,
        ),
        LayerSpec(
            "staff",
            (
                _c("worker_id"),
                _c("post", choices=_POSTS),
                _c("admin_code", nullable=True),
                _c("department_id", required=False, nullable=True),
                _c("valid_from", "datetime", required=False, nullable=True),
                _c("valid_to", "datetime", required=False, nullable=True),
            ),
            None,
        ),
        # issue 22 (residents): callbacks, building heads and their records, inspection
        # targets, the hotline's review queue
        LayerSpec(
            "callbacks",
            (
                _c("callback_id"),
                _c("report_id"),
                _c("at", "datetime"),
                _c(
                    "result",
                    choices=("satisfied", "basically_satisfied", "dissatisfied", "unreachable"),
                ),
                _c("caller_id", required=False, nullable=True),
                _c("note", required=False, nullable=True),
            ),
            None,
            id="callback_id",
            description="回访: the reporter called back after a case closed",
        ),
        LayerSpec(
            "building_heads",
            (
                _c("building_id"),
                _c("worker_id"),
                _c("stairwell", required=False, nullable=True),
                _c("valid_from", "datetime", required=False, nullable=True),
                _c("valid_to", "datetime", required=False, nullable=True),
            ),
            None,
            description="楼栋长: building heads appointed per building (or stairwell)",
        ),
        LayerSpec(
            "head_records",
            (
                _c("record_id"),
                _c("worker_id"),
                _c("building_id"),
                _c("kind", choices=("visit", "note", "fix", "report")),
                _c("at", "datetime"),
                _c("note", required=False, nullable=True),
                _c("report_id", required=False, nullable=True),
            ),
            None,
            id="record_id",
            description="巡记做报: a building head's visits, household notes, fixes, reports",
        ),
        LayerSpec(
            "inspection_targets",
            (
                _c("target_id"),
                _c("name"),
                _c("kind"),
                _c("frequency_days", "float"),
                _c("admin_code"),
                _c("unit_id", required=False, nullable=True),
            ),
            ("Point",),
            id="target_id",
            description="九小场所: places inspected on a schedule",
        ),
        LayerSpec(
            "ticket_review",
            (
                _c("ticket_system"),
                _c("ticket_id"),
                _c("reason", choices=("address", "category")),
                _c("address", required=False, nullable=True),
                _c("confidence", "float", required=False, nullable=True),
            ),
            None,
            description="hotline tickets left for a person (uncertain place, unknown category)",
        ),
    ]
}


def layer_spec(layer: str) -> LayerSpec:
    """The :class:`LayerSpec` of a contract layer, with a clear error for unknown names.

    Examples
    --------
    >>> spec = layer_spec("units")
    >>> spec.id, spec.geometry, spec.required
    ('unit_id', ('Polygon',), ['unit_id', 'kind', 'parent_id', 'admin_code'])
    >>> layer_spec("roads")
    Traceback (most recent call last):
    ...
    gridkit.errors.InvalidLayerError: Unknown layer 'roads'.
    Hint: Contract layers are: admin_areas, rivers, water_bodies, communities, ...
    """
    try:
        return LAYERS[layer]
    except KeyError:
        raise InvalidLayerError(
            f"Unknown layer {layer!r}.",
            hint=f"Contract layers are: {', '.join(LAYERS)}.",
        ) from None


_NULLS = {
    "str": lambda n, index: pd.Series(None, index=index, dtype=object),
    "int": lambda n, index: pd.Series(pd.array([pd.NA] * n, dtype="Int64"), index=index),
    "float": lambda n, index: pd.Series(np.full(n, np.nan), index=index),
    "bool": lambda n, index: pd.Series(pd.array([pd.NA] * n, dtype="boolean"), index=index),
    "datetime": lambda n, index: pd.Series(pd.DatetimeIndex([pd.NaT] * n, tz="UTC"), index=index),
}


def _with_absent(
    df: pd.DataFrame, spec: LayerSpec, require: object
) -> tuple[pd.DataFrame, set[str]]:
    """Add the contract columns a frame lacks as typed nulls: an absent nullable column
    is a column of nulls (a hotline export has no ``assignee_id``, say), and so is any
    column outside ``require`` when the caller names the columns it uses."""
    absent = [
        c
        for c in spec.columns
        if c.required and (c.nullable or require is not None) and c.name not in df.columns
    ]
    if not absent:
        return df, set()
    out = df.copy()
    for col in absent:
        out[col.name] = _NULLS[col.kind](len(df), df.index)
    if isinstance(out, gpd.GeoDataFrame) and out._geometry_column_name in out.columns:
        geom = out._geometry_column_name  # keep the geometry last, as files have it
        out = out[[c for c in out.columns if c != geom] + [geom]]
    return out, {c.name for c in absent}


def _kind_problem(values: pd.Series, kind: str) -> np.ndarray:
    """Boolean mask of non-null values that are not of ``kind``."""
    notna = values.notna().to_numpy()
    if not notna.any():  # all null (an absent nullable column): nothing to check
        return notna
    if kind == "str":
        if pd.api.types.is_string_dtype(values.dtype) and not pd.api.types.is_object_dtype(
            values.dtype
        ):
            return np.zeros(len(values), dtype=bool)
        ok = values.map(lambda v: isinstance(v, str), na_action="ignore").fillna(True)
        return notna & ~ok.to_numpy(dtype=bool)
    if kind == "int":
        if pd.api.types.is_integer_dtype(values.dtype):
            return np.zeros(len(values), dtype=bool)
        num = pd.to_numeric(values, errors="coerce")
        bad = num.isna().to_numpy() | ~np.isclose(num.fillna(0) % 1, 0)
        return notna & bad
    if kind == "float":
        if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(
            values.dtype
        ):
            return notna & ~np.isfinite(values.to_numpy(dtype=float, na_value=0.0))
        num = pd.to_numeric(values, errors="coerce")
        return notna & num.isna().to_numpy()
    if kind == "bool":
        if pd.api.types.is_bool_dtype(values.dtype):
            return np.zeros(len(values), dtype=bool)
        ok = values.isin([True, False, 0, 1]).to_numpy()
        return notna & ~ok
    if kind == "datetime":
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            return np.zeros(len(values), dtype=bool)
        parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
        return notna & parsed.isna().to_numpy()
    raise AssertionError(f"unknown kind {kind}")


def _row_labels(df: pd.DataFrame, spec: LayerSpec, mask: np.ndarray) -> list[object]:
    """Ids of the masked rows; the index label (``index 7``) where there is no id."""
    index = [f"index {i}" for i in df.index[mask]]
    if spec.id and spec.id in df.columns:
        ids = df.loc[mask, spec.id]
        return [i if pd.notna(i) else x for i, x in zip(ids, index, strict=True)]
    return index


def check_layer(
    df: pd.DataFrame,
    layer: str,
    *,
    source: str | None = None,
    repair: bool = False,
    require: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Check a layer against the data contract and return it (repaired if asked).

    Parameters
    ----------
    df
        The layer: a GeoDataFrame, or a DataFrame for attribute tables.
    layer
        Contract layer name (``"units"``, ``"rivers"``, ...).
    source
        File name for messages.
    repair
        Repair invalid geometries with ``shapely.make_valid`` (keeping the parts of
        the layer's geometry type) and warn with the repaired row ids, instead of
        raising.
    require
        The columns the caller uses, when fewer than the contract requires (a map of
        reports needs ``report_id``, ``category`` and ``status``): only these must be
        present, and other absent contract columns are read as nulls.

    Returns
    -------
    The same frame, or a copy with the absent nullable columns added as typed nulls
    (an absent nullable column is a column of nulls) and invalid geometries repaired if
    asked. The index is preserved.

    Raises
    ------
    InvalidLayerError
        Listing every problem: empty layer, missing columns, wrong value kinds,
        unknown categories, null ids, duplicate ids, wrong or missing geometry,
        invalid geometry, non-finite coordinates.

    Examples
    --------
    A good layer comes back as it was; a bad one is refused with every problem and
    the offending ids:

    >>> from gridkit.synth.ops import grid_units
    >>> units = grid_units(2, 2)
    >>> check_layer(units, "units") is units
    True
    >>> bad = units.assign(kind=["river_reach", "canal", "community_grid", "community_grid"])
    >>> bad.loc[3, "unit_id"] = bad.loc[2, "unit_id"]
    >>> try:
    ...     check_layer(bad, "units", source="units.gpkg")
    ... except InvalidLayerError as e:
    ...     print(e.message)
    ...     print(e.rows)
    units.gpkg, layer 'units' has 2 problem(s):
      - column 'kind' has unknown value(s) canal in rows 430202001000001; allowed: ...
      - duplicate unit_id values: 430202001000002
    ['430202001000001', '430202001000002']

    Nullable columns may be absent; required ones may not:

    >>> checked = check_layer(units.drop(columns="parent_id"), "units")
    >>> bool(checked["parent_id"].isna().all()), list(checked.columns[-2:])
    (True, ['parent_id', 'geometry'])
    >>> check_layer(units.drop(columns="kind"), "units", require=["unit_id"]).shape
    (4, 10)
    >>> check_layer(units.drop(columns="kind"), "units")
    Traceback (most recent call last):
    ...
    gridkit.errors.InvalidLayerError: layer 'units' is missing column(s) kind.
    Hint: Columns present: unit_id, parent_id, reach_id, admin_code, ...
    """
    spec = layer_spec(layer)
    where = f"{source}, layer {layer!r}" if source else f"layer {layer!r}"
    problems: list[str] = []
    bad_rows: list[object] = []

    if len(df) == 0:
        raise InvalidLayerError(
            f"{where} is empty.",
            hint="Check the file and layer name; an empty layer cannot be processed.",
        )
    if require is None:
        needed = [c for c in spec.required if not spec.column(c).nullable]
    else:
        needed = [c for c in dict.fromkeys(require) if spec.column(c) is not None]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        have = [c for c in df.columns if c != getattr(df, "_geometry_column_name", None)]
        raise InvalidLayerError(
            f"{where} is missing column(s) {', '.join(missing)}.",
            hint=f"Columns present: {', '.join(map(str, have)) or 'none'}. Rename or add "
            f"the missing columns (see the data contract for {layer!r}).",
            problems=[f"missing column {c}" for c in missing],
        )
    df, added = _with_absent(df, spec, require)

    for col in spec.columns:
        if col.name not in df.columns or col.name in added:
            continue
        values = df[col.name]
        nulls = values.isna().to_numpy()
        # empty values matter in the columns the caller uses (all, unless it says which)
        if not col.nullable and nulls.any() and (require is None or col.name in needed):
            rows = _row_labels(df, spec, nulls)
            problems.append(f"column {col.name!r} has empty values in rows {format_rows(rows)}")
            bad_rows += rows
        wrong = _kind_problem(values, col.kind)
        if wrong.any():
            rows = _row_labels(df, spec, wrong)
            problems.append(
                f"column {col.name!r} must hold {col.kind} values; rows {format_rows(rows)} "
                f"do not (e.g. {values[wrong].iloc[0]!r})"
            )
            bad_rows += rows
        if col.choices is not None:
            unknown = values.notna().to_numpy() & ~values.isin(col.choices).to_numpy()
            if unknown.any():
                rows = _row_labels(df, spec, unknown)
                found = sorted(map(str, pd.unique(values[unknown])))[:5]
                problems.append(
                    f"column {col.name!r} has unknown value(s) {', '.join(found)} in rows "
                    f"{format_rows(rows)}; allowed: {', '.join(col.choices)}"
                )
                bad_rows += rows

    if spec.id and spec.id in df.columns:
        dup = df[spec.id].duplicated(keep=False).to_numpy() & df[spec.id].notna().to_numpy()
        if dup.any():
            ids = sorted(map(str, pd.unique(df.loc[dup, spec.id])))
            problems.append(f"duplicate {spec.id} values: {format_rows(ids)}")
            bad_rows += ids

    if spec.geometry is not None:
        df = _check_geometry(df, spec, where, problems, bad_rows, repair=repair)

    if problems:
        raise InvalidLayerError(
            f"{where} has {len(problems)} problem(s):\n  - " + "\n  - ".join(problems),
            hint="Fix the listed rows in the source data"
            + (
                " (invalid geometries can be repaired with repair=True / --repair)."
                if any("invalid geometry" in p for p in problems)
                else "."
            ),
            problems=problems,
            rows=bad_rows,
        )
    return df


def _check_geometry(
    df: pd.DataFrame,
    spec: LayerSpec,
    where: str,
    problems: list[str],
    bad_rows: list[object],
    *,
    repair: bool,
) -> pd.DataFrame:
    if not isinstance(df, gpd.GeoDataFrame) or df._geometry_column_name not in df.columns:
        problems.append(f"no geometry column (expected {'/'.join(spec.geometry)})")
        return df
    geoms = np.asarray(df.geometry.array)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any() and not spec.geometry_nullable:
        rows = _row_labels(df, spec, missing)
        problems.append(f"rows {format_rows(rows)} have no geometry")
        bad_rows += rows
    present = ~missing
    types = shapely.get_type_id(geoms)
    names = np.array(
        [
            "Point",
            "LineString",
            "LinearRing",
            "Polygon",
            "MultiPoint",
            "MultiLineString",
            "MultiPolygon",
            "GeometryCollection",
        ],
        dtype=object,
    )
    type_names = np.where(types >= 0, names[np.clip(types, 0, 7)], None)
    wrong = present & ~np.isin(type_names, spec.geometry)
    if wrong.any():
        rows = _row_labels(df, spec, wrong)
        found = sorted(set(type_names[wrong]))
        problems.append(
            f"rows {format_rows(rows)} have geometry type {', '.join(found)}; "
            f"{spec.name} must be {' or '.join(spec.geometry)}"
        )
        bad_rows += rows
    coords, owner = shapely.get_coordinates(geoms, include_z=True, return_index=True)
    finite = np.isfinite(coords[:, :2]).all(axis=1)
    coords_ok = np.bincount(owner[~finite], minlength=len(geoms)) == 0
    if (~coords_ok).any():
        rows = _row_labels(df, spec, ~coords_ok)
        problems.append(f"rows {format_rows(rows)} have non-finite (NaN/inf) coordinates")
        bad_rows += rows
    invalid = present & coords_ok & ~shapely.is_valid(geoms)
    if invalid.any():
        if repair:
            df = _repair(df, spec, invalid, where)
        else:
            rows = _row_labels(df, spec, invalid)
            reasons = shapely.is_valid_reason(geoms[invalid])
            problems.append(f"rows {format_rows(rows)} have invalid geometry (first: {reasons[0]})")
            bad_rows += rows
    return df


def _repair(df: gpd.GeoDataFrame, spec: LayerSpec, invalid: np.ndarray, where: str):
    geoms = np.asarray(df.geometry.array).copy()
    fixed = shapely.make_valid(geoms[invalid])
    want_dim = {"Point": 0, "LineString": 1, "Polygon": 2}[spec.geometry[0].replace("Multi", "")]
    # make_valid may return collections (e.g. a bow-tie polygon plus a line): keep the
    # parts of the layer's dimension so the type contract still holds.
    parts, index = shapely.get_parts(fixed, return_index=True)
    keep = shapely.get_dimensions(parts) == want_dim
    merged = np.full(len(fixed), None, dtype=object)
    if keep.any():
        grouped = (
            pd.Series(list(parts[keep]))
            .groupby(index[keep])
            .agg(lambda s: shapely.union_all(np.asarray(s)))
        )
        merged[grouped.index.to_numpy()] = grouped.to_numpy()
    geoms[invalid] = merged
    rows = _row_labels(df, spec, invalid)
    warnings.warn(
        f"{where}: repaired {int(invalid.sum())} invalid geometries with make_valid "
        f"(rows {format_rows(rows)}).",
        GridkitWarning,
        stacklevel=3,
    )
    out = df.copy()
    out[df._geometry_column_name] = gpd.GeoSeries(geoms, index=df.index, crs=df.crs)
    return out


def contract_ints(frame: pd.DataFrame, layer: str) -> pd.DataFrame:
    """``frame`` with the integer columns of ``layer``'s contract (``households``,
    ``version``, ...) as nullable integers (``Int64``): a GeoPackage or a database
    gives an integer column with gaps as floats (river units have no households), which
    a store's integer column refuses and GeoJSON would show as ``253.0``. A column
    holding something not whole is left as it is (the contract's check names it); so is
    a frame of a layer outside the contract. The frame itself is not changed.

    Examples
    --------
    >>> units = pd.DataFrame({"unit_id": ["a", "b"], "households": [253.0, np.nan]})
    >>> contract_ints(units, "units")["households"].tolist()
    [253, <NA>]
    >>> contract_ints(units.assign(households=[2.5, 1.0]), "units")["households"].tolist()
    [2.5, 1.0]
    """
    spec = LAYERS.get(layer)
    if spec is None:
        return frame
    ints = {}
    for col in spec.columns:
        if col.kind != "int" or col.name not in frame.columns:
            continue
        values = frame[col.name]
        if pd.api.types.is_integer_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
            continue
        number = pd.to_numeric(values, errors="coerce")
        if number.isna().sum() != values.isna().sum():
            continue  # not numbers: left for the contract's check to name
        whole = number.dropna().to_numpy(dtype=float)
        if not np.isfinite(whole).all() or (whole % 1 != 0).any() or (abs(whole) >= 2**53).any():
            continue
        ints[col.name] = number.round().astype("Int64")
    return frame.assign(**ints) if ints else frame
