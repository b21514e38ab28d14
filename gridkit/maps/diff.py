"""Diff map: two grid versions with changed units highlighted."""

from __future__ import annotations

from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit.maps.base import _esc, _polygons, _prepare, _require, _rows
from gridkit.maps.context import Context
from gridkit.maps.options import MapOptions, resolve
from gridkit.maps.scene import Scene

__all__ = ["diff_map"]

_RELATION_COLORS = {
    "unchanged": "#d9d9d9",
    "modified": "#fdae61",
    "split": "#2c7bb6",
    "merged": "#7b3294",
    "added": "#1a9641",
    "removed": "#d7191c",
}


def diff_map(
    old_units: gpd.GeoDataFrame,
    new_units: gpd.GeoDataFrame,
    lineage: pd.DataFrame,
    *,
    context: Context | None = None,
    search: bool = True,
    options: MapOptions | None = None,
    **overrides: Any,
) -> folium.Map:
    """Map of two grid versions with changed units highlighted.

    New units are coloured by how they came about (unchanged, modified, split, merged,
    added); removed old units are drawn in red; the old version's outlines are a layer
    to switch on.

    Parameters
    ----------
    old_units, new_units
        The two ``units`` layers.
    lineage
        ``lineage`` (``old_id``, ``new_id``, ``relation``, ``share``) as returned by
        ``diff_units``.
    context, search, options, **overrides
        As in :func:`~gridkit.maps.coverage_map`.

    Returns
    -------
    folium.Map
        The new units by change, the removed ones in red, the old outlines to switch on.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd
    >>> from shapely import box
    >>> from gridkit.maps import map_html
    >>> old = gpd.GeoDataFrame({"unit_id": ["U1"]}, geometry=[box(113.1, 27.8, 113.12, 27.81)],
    ...                        crs=4326)
    >>> new = gpd.GeoDataFrame({"unit_id": ["U1a", "U1b"]},
    ...     geometry=[box(113.10, 27.80, 113.11, 27.81), box(113.11, 27.80, 113.12, 27.81)],
    ...     crs=4326)
    >>> lineage = pd.DataFrame({"old_id": ["U1", "U1"], "new_id": ["U1a", "U1b"],
    ...                         "relation": ["split", "split"]})
    >>> "Split (2)" in map_html(diff_map(old, new, lineage, lang="en", tiles=None))
    True
    """
    o = resolve(options, overrides)
    L = o.L
    _require(old_units, ["unit_id"], "units", geometry=True)
    _require(new_units, ["unit_id"], "units", geometry=True)
    _require(lineage, ["old_id", "new_id", "relation"], "lineage", geometry=False)
    lin = lineage.copy()
    old = _prepare(old_units, o).reset_index(drop=True)
    new = _prepare(new_units, o).reset_index(drop=True)
    order = {
        k: i for i, k in enumerate(("removed", "added", "merged", "split", "modified", "unchanged"))
    }

    rel_new: dict[str, str] = {}
    from_old: dict[str, list[str]] = {}
    for oid, nid, rel in zip(
        lin["old_id"], lin["new_id"], lin["relation"].astype(str), strict=True
    ):
        if nid is None or pd.isna(nid):
            continue
        nid = str(nid)
        if nid not in rel_new or order.get(rel, 9) < order.get(rel_new[nid], 9):
            rel_new[nid] = rel
        if oid is not None and not pd.isna(oid):
            from_old.setdefault(nid, []).append(str(oid))
    removed = set(lin.loc[lin["relation"].astype(str) == "removed", "old_id"].dropna().astype(str))

    nids = new["unit_id"].astype(str)
    rels = [rel_new.get(n, "added") for n in nids]
    tips = [
        _rows(
            [
                (L["unit"], _esc(n)),
                (L["relation"], _esc(L.get(r, r))),
                (L["old_ids"], ", ".join(_esc(x) for x in from_old.get(n, [])[:10]) or "—"),
            ]
        )
        for n, r in zip(nids, rels, strict=True)
    ]
    scene = Scene.start(o, [old, new], context)
    m = scene.m
    _polygons(
        old,
        name=L["old_units"],
        colors=["#ffffff"] * len(old),
        tips=[_rows([(L["old_units"], _esc(x))]) for x in old["unit_id"]],
        dashed=[True] * len(old),
        show=False,
        fill_opacity=0.0,
        precision=o.precision,
    ).add_to(m)
    _polygons(
        new,
        name=L["new_units"],
        colors=[_RELATION_COLORS.get(r, "#bdbdbd") for r in rels],
        tips=tips,
        precision=o.precision,
    ).add_to(m)
    gone = old[old["unit_id"].astype(str).isin(removed)]
    if len(gone):
        _polygons(
            gone,
            name=L["removed_units"],
            colors=[_RELATION_COLORS["removed"]] * len(gone),
            tips=[_rows([(L["unit"], _esc(x)), (L["relation"], _esc(L["removed"]))])
                  for x in gone["unit_id"]],
            fill_opacity=0.45,
            precision=o.precision,
        ).add_to(m)  # fmt: skip
    counts = pd.Series(rels).value_counts()
    items = [
        (
            _RELATION_COLORS[k],
            f"{L[k]} ({int(counts.get(k, 0)) if k != 'removed' else len(gone)})",
            "box",
        )
        for k in ("unchanged", "modified", "split", "merged", "added", "removed")
        if (counts.get(k, 0) if k != "removed" else len(gone))
    ]
    if search:
        b = np.round(new.geometry.bounds.to_numpy(), 5).tolist()
        scene.search = [[str(i), q[1], q[0], q[3], q[2]] for i, q in zip(nids, b, strict=True)]
    return scene.finish("diff", [(L["relation"], items)])
