"""Compliance map: patrol completion by unit, by worker and by river section."""

from __future__ import annotations

from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.maps.areas import aggregate, pick_level, switch_zoom
from gridkit.maps.base import (
    _esc,
    _names,
    _num,
    _pct,
    _polygons,
    _prepare,
    _require,
    _rows,
)
from gridkit.maps.context import Context
from gridkit.maps.options import MapOptions, resolve
from gridkit.maps.scene import Scene

__all__ = ["compliance_map"]

_COMPLIANCE_COLORS = dict(full="#1a9641", partial="#fdae61", low="#d7191c", no_data="#bdbdbd")
_CLASSES = ("full", "partial", "low", "no_data")


def _completion_class(done: pd.Series, required: pd.Series, compliant: pd.Series) -> pd.Series:
    share = (done / required.where(required > 0)).clip(upper=1.0)
    cls = np.where(
        required.fillna(0) <= 0,
        "no_data",
        np.where(compliant.fillna(False).astype(bool) | (share >= 1), "full",
                 np.where(share >= 0.5, "partial", "low")),
    )  # fmt: skip
    return pd.Series(cls, index=done.index)


def _selected(compliance: pd.DataFrame, *, level: str | None, period: str | None) -> pd.DataFrame:
    """The rows of ``level`` and ``period`` (where the frame has those columns), ids as text."""
    _require(compliance, ["unit_id", "worker_id", "required", "done"], "compliance", geometry=False)
    c = compliance
    if level is not None and "level" in c.columns:
        c = c[c["level"].astype(str) == level]
    if period is not None and "period" in c.columns:
        c = c[c["period"].astype(str) == period]
    c = c.assign(unit_id=c["unit_id"].astype(str), worker_id=c["worker_id"].astype(str))
    if "compliant" not in c.columns:
        c["compliant"] = c["done"] >= c["required"]
    return c


def _completion(c: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Required and done patrols summed over ``keys`` for display, with a colour class."""
    g = c.groupby(keys, sort=True)
    out = pd.DataFrame(
        {
            "required": g["required"].sum(),
            "done": g["done"].sum(),
            "compliant": g["compliant"].all(),
        }
    )
    out["cls"] = _completion_class(out["done"], out["required"], out["compliant"])
    return out


def _classes(df: pd.DataFrame) -> list[str]:
    return [_COMPLIANCE_COLORS[k] for k in df["cls"].fillna("no_data")]


def _unit_layer(
    u: gpd.GeoDataFrame, c: pd.DataFrame, names: dict[str, str], o: MapOptions
) -> folium.GeoJson:
    """Units coloured by completion; tooltips with workers, required and done."""
    L = o.L
    uj = u.join(_completion(c, ["unit_id"]), on="unit_id")
    unit_workers = c.groupby("unit_id")["worker_id"].agg(lambda s: sorted(set(s)))
    tips = [
        _rows(
            [
                (L["unit"], _esc(r.unit_id)),
                (
                    L["worker"],
                    ", ".join(_esc(names.get(w, w)) for w in unit_workers.get(r.unit_id, []))
                    or "—",
                ),
                (L["required"], _esc(_num(r.required))),
                (L["done"], _esc(_num(r.done))),
                (L["completion"], _esc(_pct(r.done, r.required))),
            ]
        )
        for r in uj.itertuples(index=False)
    ]
    return _polygons(u, name=L["units"], colors=_classes(uj), tips=tips, precision=o.precision)


def _worker_layer(
    u: gpd.GeoDataFrame, c: pd.DataFrame, names: dict[str, str], o: MapOptions
) -> folium.GeoJson | None:
    """Each unit of each worker, coloured by that worker's completion (hidden at first)."""
    L = o.L
    pairs = c[["unit_id", "worker_id"]].drop_duplicates()
    wu = u.merge(pairs, on="unit_id", how="inner")
    if not len(wu):
        return None
    wu = wu.join(_completion(c, ["worker_id"]), on="worker_id")
    n_units = pairs.groupby("worker_id").size()
    tips = [
        _rows(
            [
                (L["worker"], _esc(names.get(r.worker_id, r.worker_id))),
                (L["unit"], _esc(r.unit_id)),
                (L["units_count"], _esc(int(n_units.get(r.worker_id, 0)))),
                (L["completion"], _esc(_pct(r.done, r.required))),
            ]
        )
        for r in wu.itertuples(index=False)
    ]
    return _polygons(
        wu, name=L["workers"], colors=_classes(wu), tips=tips, show=False, precision=o.precision
    )


def _section_layer(u: gpd.GeoDataFrame, c: pd.DataFrame, o: MapOptions) -> folium.GeoJson | None:
    """River sections (river units of one river in one admin area) by completion."""
    if not {"parent_id", "admin_code"} <= set(u.columns):
        return None
    river = u["kind"].astype(str).eq("river_reach") if "kind" in u.columns else True
    ru = u[river & u["parent_id"].notna()]
    if not len(ru):
        return None
    keys = ["parent_id", "admin_code"]
    cu = c.merge(ru[["unit_id", *keys]], on="unit_id")
    # display rounding can make neighbouring units touch imperfectly: union valid parts
    # only, so a section outline never fails to draw
    fixed = ru.set_geometry(shapely.make_valid(np.asarray(ru.geometry.array)))
    sec = fixed.dissolve(by=keys, as_index=False)[[*keys, "geometry"]]
    sec = sec.join(_completion(cu, keys), on=keys)
    L = o.L
    tips = [
        _rows(
            [
                (L["section"], f"{_esc(r.parent_id)} · {_esc(r.admin_code)}"),
                (L["completion"], _esc(_pct(r.done, r.required))),
            ]
        )
        for r in sec.itertuples(index=False)
    ]
    return _polygons(
        sec, name=L["sections"], colors=_classes(sec), tips=tips, show=False,
        precision=o.precision,
    )  # fmt: skip


def compliance_map(
    units: gpd.GeoDataFrame,
    compliance: pd.DataFrame,
    *,
    level: str | None = None,
    workers: pd.DataFrame | None = None,
    context: Context | None = None,
    search: bool = True,
    options: MapOptions | None = None,
    **overrides: Any,
) -> folium.Map:
    """Map of patrol compliance by unit, by worker and by river section.

    At city and county zoom the villages (or townships) are coloured by the share of
    their required patrols done. Three unit layers (one shown, two in the layer
    control): units coloured by completion
    (``done / required``; compliant / ≥50 % / <50 % / nothing required), the units of
    each worker coloured by that worker's completion, and river sections (the units
    of one river inside one admin area, ``parent_id`` × ``admin_code``) coloured by the
    section's completion.

    Parameters
    ----------
    units
        ``units`` layer.
    compliance
        As returned by ``patrol_compliance``: ``unit_id``, ``worker_id``, ``required``,
        ``done``, ``compliant``, ``last_patrol``, ``days_overdue``; optionally ``level``
        and ``period`` columns.
    level
        Keep only rows of this level (``city``/``county``/``township``/``village``)
        when the frame has a ``level`` column.
    workers
        ``workers`` layer, for names instead of ids (only ``worker_id``, ``name`` are used).
    context, search, options, **overrides
        As in :func:`~gridkit.maps.coverage_map`. The ``period`` option is the title
        line and also selects rows when the frame has a ``period`` column.

    Returns
    -------
    folium.Map
        Three layers of completion: units, workers' units, river sections.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd
    >>> from shapely import box
    >>> from gridkit.maps import map_html
    >>> units = gpd.GeoDataFrame({"unit_id": ["U1", "U2"]},
    ...     geometry=[box(113.10, 27.80, 113.11, 27.81), box(113.11, 27.80, 113.12, 27.81)],
    ...     crs=4326)
    >>> rows = pd.DataFrame({"unit_id": ["U1", "U2"], "worker_id": ["W1", "W1"],
    ...                      "required": [4, 4], "done": [4, 1]})
    >>> page = map_html(compliance_map(units, rows, period="2026-03", lang="en", tiles=None))
    >>> "Patrol compliance" in page, "25%" in page, "2026-03" in page
    (True, True, True)
    """
    o = resolve(options, overrides)
    L = o.L
    _require(units, ["unit_id"], "units", geometry=True)
    c = _selected(compliance, level=level, period=o.period)
    names = _names(workers)
    u = _prepare(units, o).reset_index(drop=True)
    u["unit_id"] = u["unit_id"].astype(str)
    scene = Scene.start(o, [u], context)
    unit_layer = _unit_layer(u, c, names, o)
    scene.add("units", unit_layer)
    for key, layer in (
        ("units", _worker_layer(u, c, names, o)),
        ("units", _section_layer(u, c, o)),
    ):
        if layer is not None:
            scene.add(key, layer)
    drawn = set(_completion(c, ["unit_id"])["cls"].reindex(u["unit_id"]).fillna("no_data"))
    _areas(scene, u, c)
    if search:
        b = np.round(u.geometry.bounds.to_numpy(), 5).tolist()
        people = c.groupby("unit_id")["worker_id"].agg(lambda s: " · ".join(
            sorted({names.get(w, w) for w in s})))  # fmt: skip
        scene.search = [
            [f"{i} · {people[i]}" if i in people.index else i, bb[1], bb[0], bb[3], bb[2]]
            for i, bb in zip(u["unit_id"], b, strict=True)
        ]
    heading = L["completion"] + (f" · {L['level']}: {level}" if level else "")
    items = [(_COMPLIANCE_COLORS[k], L[k], "box") for k in _CLASSES if k in drawn]
    return scene.finish("compliance", [(heading, items, "units workers sections")])


def _areas(scene: Scene, u: gpd.GeoDataFrame, c: pd.DataFrame) -> None:
    """Patrols done / required per village or township, shown at low zoom."""
    if "admin_code" not in u.columns:
        return
    level = pick_level(u["admin_code"])
    if level is None:
        return
    L = scene.o.L
    per_unit = c.groupby("unit_id")[["required", "done"]].sum()
    per_unit["done"] = np.minimum(per_unit["done"], per_unit["required"])
    values = per_unit.reindex(u["unit_id"]).fillna(0).reset_index(drop=True)
    a = aggregate(u, values, level, scene.context)
    a["compliant"] = a["done"] >= a["required"]
    cls = _completion_class(a["done"], a["required"], a["compliant"])
    tips = [
        _rows([(L[f"admin_{level}"].rstrip("界"), _esc(n)), (L["units_n"], _esc(t)),
               (L["required"], _esc(_num(q))), (L["done"], _esc(_num(d))),
               (L["completion"], _esc(_pct(d, q)))])
        for n, t, q, d in zip(a["name"], a["n_units"], a["required"], a["done"], strict=True)
    ]  # fmt: skip
    layer = _polygons(
        a, name=L[f"areas_{level}"], colors=[_COMPLIANCE_COLORS[k] for k in cls], tips=tips,
        pops=tips, show=False, precision=scene.o.precision,
    )  # fmt: skip
    scene.add("areas", layer)
    scene.config["switch"] = {"zoom": switch_zoom(u), "low": "areas", "high": "units"}
    items = [(_COMPLIANCE_COLORS[k], L[k], "box") for k in _CLASSES if k in set(cls)]
    scene.extra_legend.append((f"{L['completion']} · {L[f'areas_{level}']}", items, "areas"))
