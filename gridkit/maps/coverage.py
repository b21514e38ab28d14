"""Coverage map: grid units by assigned worker or by patrol recency, open reports in popups."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any, Literal

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import WGS84
from gridkit.errors import GridkitError, InvalidLayerError
from gridkit.maps.areas import aggregate, pick_level, switch_zoom
from gridkit.maps.base import (
    MAX_LEGEND_ITEMS,
    PALETTE,
    Legend,
    _esc,
    _fmt_time,
    _names,
    _polygons,
    _prepare,
    _require,
    _rows,
    _text,
)
from gridkit.maps.context import Context
from gridkit.maps.options import MapOptions, resolve
from gridkit.maps.scene import Scene
from gridkit.maps.symbols import category_styles
from gridkit.webmap import staffed_class

__all__ = ["coverage_map"]

_UNASSIGNED = "#7b3294"
_RECENCY_COLORS = {"in_time": "#1a9641", "overdue": "#fdae61", "never": "#d7191c"}
_CLOSED = {"resolved", "verified", "closed", "rejected"}
_MAX_POPUP_REPORTS = 10


def _current_assignments(assignments: pd.DataFrame) -> dict[str, list[str]]:
    """Worker ids per unit id of the assignments in force (no ``valid_to``)."""
    _require(assignments, ["unit_id", "worker_id"], "assignments", geometry=False)
    a = assignments
    if "valid_to" in a.columns:
        a = a[a["valid_to"].isna()]  # an ended assignment carries valid_to
    pairs = pd.DataFrame({"u": a["unit_id"].astype(str), "w": a["worker_id"].astype(str)})
    return pairs.groupby("u", sort=False)["w"].agg(list).to_dict()


def _recency(compliance: pd.DataFrame) -> pd.DataFrame:
    """Per unit, for its colour and tooltip: status (in_time/overdue/never), last
    patrol, days overdue and workers, read off ``patrol_compliance`` rows."""
    _require(
        compliance, ["unit_id", "worker_id", "compliant", "last_patrol"], "compliance",
        geometry=False,
    )  # fmt: skip
    c = compliance.assign(
        unit_id=compliance["unit_id"].astype(str),
        _ok=compliance["compliant"].fillna(False).astype(bool),
        _never=compliance["last_patrol"].isna(),
    )
    if "days_overdue" not in c.columns:
        c["days_overdue"] = np.nan
    g = c.groupby("unit_id", sort=False)
    out = pd.DataFrame(
        {
            "all_ok": g["_ok"].all(),
            "never": g["_never"].all(),
            "last_patrol": g["last_patrol"].max(),
            "days_overdue": g["days_overdue"].max(),
        }
    )
    staffed = c[c["worker_id"].notna()]
    workers = staffed.groupby("unit_id")["worker_id"].agg(lambda s: sorted(set(s.astype(str))))
    out["workers"] = [workers.get(uid, []) for uid in out.index]
    out["status"] = np.where(out["all_ok"], "in_time", np.where(out["never"], "never", "overdue"))
    return out


def _report_item(rec: Any) -> str:
    desc = _text(getattr(rec, "description", None))
    desc = desc if len(desc) <= 120 else desc[:119] + "…"
    when = _fmt_time(getattr(rec, "reported_at", None))
    return (
        f"<li><b>{_esc(rec.category)}</b> · {_esc(rec.status)} · {_esc(when)} "
        f"<small>{_esc(rec.report_id)}</small><br>{_esc(desc)}</li>"
    )


def _open_reports_popups(
    ids: pd.Series, reports: pd.DataFrame | None, L: dict[str, str]
) -> list[str]:
    """Escaped popup HTML per unit listing its open reports (by their ``unit_id``)."""
    empty = f"<i>{html.escape(L['no_open_reports'])}</i>"
    heads = [f"<b>{html.escape(L['unit'])}</b> {_esc(u)}" for u in ids]
    if reports is None or len(reports) == 0:
        return [f"{h}<br>{empty}" for h in heads]
    _require(reports, ["report_id", "category", "status"], "reports", geometry=False)
    if "unit_id" not in reports.columns:
        raise InvalidLayerError(
            "reports have no unit_id column: a map lists reports by the unit holding them.",
            hint="Join them to the units first: gridkit.locate(reports, units) adds unit_id.",
            problems=["missing column 'unit_id'"],
        )
    r = reports[~reports["status"].astype(str).isin(_CLOSED) & reports["unit_id"].notna()]
    if "reported_at" in r.columns:
        r = r.sort_values("reported_at", ascending=False)
    r = r.assign(unit_id=r["unit_id"].astype(str))
    counts = r.groupby("unit_id").size()
    shown = r.groupby("unit_id").head(_MAX_POPUP_REPORTS)
    items = pd.Series([_report_item(x) for x in shown.itertuples(index=False)], dtype=object)
    by_unit = items.groupby(shown["unit_id"].to_numpy()).agg("".join)
    out = []
    for u, head in zip(ids, heads, strict=True):
        if u not in by_unit.index:
            out.append(f"{head}<br>{empty}")
            continue
        more = int(counts[u]) - min(int(counts[u]), _MAX_POPUP_REPORTS)
        tail = f"<li>{html.escape(L['more'].format(n=more))}</li>" if more > 0 else ""
        out.append(
            f"{head}<br><b>{html.escape(L['open_reports'])}</b> ({counts[u]})"
            f'<ul style="margin:2px 0;padding-left:16px">{by_unit[u]}{tail}</ul>'
        )
    return out


def _mode(color_by: str, rec: pd.DataFrame | None) -> str:
    mode = ("recency" if rec is not None else "status") if color_by == "auto" else color_by
    if mode == "recency" and rec is None:
        raise GridkitError(
            "color_by='recency' needs the compliance frame.",
            hint="Pass compliance=patrol_compliance(...), or color_by='worker'.",
        )
    if mode not in ("status", "worker", "recency"):
        raise GridkitError(
            f"Unknown color_by {color_by!r}.", hint="Use 'status', 'recency' or 'worker'."
        )
    return mode


def _patrol_pairs(rec: dict[str, dict], uid: str, L: dict[str, str]) -> tuple[str, list]:
    """Recency status of a unit (rows of :func:`_recency` by unit id) and its tooltip lines."""
    r = rec.get(uid)
    if r is None:
        return "never", [(L["last_patrol"], _esc(L["never_patrolled"]))]
    pairs = [(L["last_patrol"], _esc(_fmt_time(r["last_patrol"]) or L["never_patrolled"]))]
    if pd.notna(r["days_overdue"]) and r["days_overdue"] > 0:
        pairs.append((L["days_overdue"], _esc(f"{r['days_overdue']:.0f}")))
    return str(r["status"]), pairs


_OTHER_WORKERS = "#bdbdbd"
_STATUS_COLOR = "#1a9641"
_STAFFED_COLORS = {"staffed_all": "#1a9641", "staffed_most": "#fdae61", "staffed_low": "#d7191c"}


def _legend(
    mode: str, wcolor: dict[str, str], names: dict[str, str], n_unassigned: int,
    drawn: set[str], L: dict,
) -> Legend:  # fmt: skip
    """Legend of what is drawn: each entry's colour is on the map (``drawn``)."""
    items: list[tuple[str, str, str]]
    if mode == "recency":
        heading = L["last_patrol"]
        items = [(_RECENCY_COLORS[k], L[k], "box") for k in ("in_time", "overdue", "never")]
    elif mode == "status":
        heading = L["status_worker"]
        items = [(_STATUS_COLOR, L["staffed"], "box")]
    else:
        heading = L["worker"]
        workers = list(wcolor)
        items = [(wcolor[w], names.get(w, w), "box") for w in workers[:MAX_LEGEND_ITEMS]]
        if len(workers) > MAX_LEGEND_ITEMS:
            rest = len(workers) - MAX_LEGEND_ITEMS
            items.append((_OTHER_WORKERS, L["more_workers"].format(n=rest), "box"))
    items = [i for i in items if i[0] in drawn]
    if n_unassigned:
        items.append((_UNASSIGNED, f"{L['unassigned']} ({n_unassigned})", "dash"))
    return [(heading, items, "units")]


def _colors(mode: str, worker_of: list, status: list, wcolor: dict[str, str]) -> list[str]:
    if mode == "recency":
        return [_UNASSIGNED if not w else _RECENCY_COLORS[s or "never"]
                for w, s in zip(worker_of, status, strict=True)]  # fmt: skip
    if mode == "status":
        return [_STATUS_COLOR if w else _UNASSIGNED for w in worker_of]
    return [wcolor[w[0]] if w else _UNASSIGNED for w in worker_of]


def _areas(scene: Scene, u: gpd.GeoDataFrame, staffed: np.ndarray, context) -> None:
    """Share of units staffed per village or township, shown at low zoom."""
    if "admin_code" not in u.columns:
        return
    level = pick_level(u["admin_code"])
    if level is None:
        return
    L = scene.o.L
    values = pd.DataFrame({"staffed": staffed.astype(int)})
    a = aggregate(u, values, level, context)
    share = a["staffed"] / a["n_units"]
    cls = staffed_class(share.to_numpy())
    tips = [
        _rows([(L[f"level_{level}"], _esc(n)), (L["units_n"], _esc(t)),
               (L["staffed"], _esc(s)), (L["share_staffed"], _esc(f"{r:.0%}"))])
        for n, t, s, r in zip(a["name"], a["n_units"], a["staffed"], share, strict=True)
    ]  # fmt: skip
    layer = _polygons(
        a, name=L[f"areas_{level}"], colors=[_STAFFED_COLORS[c] for c in cls], tips=tips,
        pops=tips, show=False, precision=scene.o.precision,
    )  # fmt: skip
    scene.add("areas", layer)
    scene.config["switch"] = {"zoom": switch_zoom(u), "low": "areas", "high": "units"}
    scene.extra_legend.append(
        (f"{L['share_staffed']} · {L[f'areas_{level}']}",
         [(_STAFFED_COLORS[k], L[k], "box") for k in _STAFFED_COLORS if k in set(cls)],
         "areas")
    )  # fmt: skip


def _search(u: gpd.GeoDataFrame, ids: pd.Series, worker_of: list, names: dict) -> list:
    """Search entries: unit id, its name and its workers' names, with its bounds."""
    b = np.round(u.geometry.bounds.to_numpy(), 5)
    title = ids.to_numpy(dtype=object)
    if "name" in u.columns:
        title = title + " " + u["name"].fillna("").astype(str).to_numpy(dtype=object)
    people = [" · ".join(names.get(w, w) for w in ws) for ws in worker_of]
    return [
        [f"{t} · {p}" if p else t, bb[1], bb[0], bb[3], bb[2]]
        for t, p, bb in zip(title, people, b.tolist(), strict=True)
    ]


def coverage_map(
    units: gpd.GeoDataFrame,
    *,
    assignments: pd.DataFrame | None = None,
    compliance: pd.DataFrame | None = None,
    reports: pd.DataFrame | None = None,
    workers: pd.DataFrame | None = None,
    color_by: Literal["auto", "status", "worker", "recency"] = "auto",
    context: Context | None = None,
    categories: Mapping[str, Mapping[str, object]] | None = None,
    search: bool = True,
    options: MapOptions | None = None,
    **overrides: Any,
) -> folium.Map:
    """Map of grid units coloured by status: staffed or not, patrolled in time or not.

    Units without a worker stand out (purple, dashed outline). Tooltips show the unit
    code, its worker(s) and the last patrol; popups list the unit's open reports. At
    city and county zoom the villages (or townships) are coloured by the share of their
    units that have a worker; people appear in tooltips and in the search box.

    Parameters
    ----------
    units
        ``units`` layer (``unit_id``, ``admin_code``, ... and Polygon geometry).
    assignments
        ``assignments`` (``unit_id``, ``worker_id``); rows with a ``valid_to`` are
        ended and ignored.
    compliance
        Per-unit patrol state as returned by ``patrol_compliance`` (``unit_id``,
        ``worker_id``, ``compliant``, ``last_patrol``, ``days_overdue``, ...).
    reports
        ``reports`` joined to the units (with ``unit_id``, as ``gridkit.locate`` gives
        and the stored reports layer has); open ones (not
        resolved/verified/closed/rejected) are listed in the popup of their unit.
    workers
        ``workers`` layer, for names instead of ids (only ``worker_id``, ``name`` are used).
    color_by
        ``"status"`` (staffed / not), ``"recency"`` (in time / overdue / never; needs
        ``compliance``), ``"worker"`` (a colour for each of the first 15 workers, grey
        for the others) or ``"auto"`` (recency when compliance is given, else status).
    context
        Admin outlines, rivers and water drawn around the units
        (:class:`~gridkit.maps.Context`); none by default.
    categories
        Report categories of the rules (``report_rules().categories``): popups and
        search name them in the page's language.
    search
        A search box for unit ids, names, workers, open case ids and place names.
    options
        Title, language, basemap, assets... (:class:`~gridkit.maps.MapOptions`);
        the default title is "网格覆盖" / "Grid coverage".
    **overrides
        Any :class:`~gridkit.maps.MapOptions` field as a keyword
        (``lang="en"``, ``tiles=None``), applied over ``options``.

    Returns
    -------
    folium.Map
        Units coloured by worker or recency, with the open reports in popups.

    Raises
    ------
    InvalidLayerError
        When a layer lacks a needed column (reports without ``unit_id``: locate them).
    UnknownOptionError
        For a keyword that is not a map option.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd
    >>> from shapely import box
    >>> from gridkit.maps import MapOptions, map_html
    >>> units = gpd.GeoDataFrame(
    ...     {"unit_id": ["430202001-001", "430202001-002"], "admin_code": ["430202001"] * 2},
    ...     geometry=[box(113.10, 27.80, 113.11, 27.81), box(113.11, 27.80, 113.12, 27.81)],
    ...     crs=4326)
    >>> a = pd.DataFrame({"unit_id": ["430202001-001"], "worker_id": ["W1"]})
    >>> page = map_html(coverage_map(units, assignments=a, options=MapOptions(lang="en"),
    ...                              tiles=None))
    >>> "cdn" in page, "No grid worker (1)" in page, "Has a grid worker" in page
    (False, True, True)
    """
    o = resolve(options, overrides)
    L = o.L
    _require(units, ["unit_id"], "units", geometry=True)
    u = _prepare(units, o).reset_index(drop=True)
    ids = u["unit_id"].astype(str)
    names = _names(workers)
    assigned = _current_assignments(assignments) if assignments is not None else {}
    rec = _recency(compliance) if compliance is not None else None
    if rec is not None and assignments is None:
        assigned = {k: list(v) for k, v in rec["workers"].items() if v}
    mode = _mode(color_by, rec)
    worker_of = [sorted(set(assigned.get(i, []))) for i in ids]
    all_workers = sorted({w for ws in worker_of for w in ws})
    wcolor = {w: PALETTE[k % len(PALETTE)] if k < MAX_LEGEND_ITEMS else _OTHER_WORKERS
              for k, w in enumerate(all_workers)}  # fmt: skip
    tips, status = _tips(u, ids, worker_of, names, rec, L)
    colors = _colors(mode, worker_of, status, wcolor)
    unassigned = [not w for w in worker_of]
    if reports is not None and categories is not None and "category" in reports.columns:
        styles = category_styles(categories, list(reports["category"].astype(str).unique()),
                                 lang=o.lang)  # fmt: skip
        reports = reports.assign(category=reports["category"].astype(str).map(
            lambda k: styles[k].label))  # fmt: skip
    pops = _open_reports_popups(ids, reports, L)
    scene = Scene.start(o, [u], context)
    layer = _polygons(
        u, name=L["units"], colors=colors, tips=tips, pops=pops, dashed=unassigned,
        precision=o.precision,
    )  # fmt: skip
    scene.add("units", layer)
    _areas(scene, u, ~np.array(unassigned, dtype=bool), context)
    if search:
        scene.search = _search(u, ids, worker_of, names) + _case_entries(reports, L)
    legend = _legend(mode, wcolor, names, sum(unassigned), set(colors), L)
    return scene.finish("coverage", legend)


def _tips(u, ids, worker_of, names, rec, L) -> tuple[list[str], list]:
    """Tooltip per unit (code, admin area, workers, last patrol) and recency status."""
    admin = u["admin_code"].tolist() if "admin_code" in u.columns else None
    rec_rows = rec.to_dict("index") if rec is not None else {}
    tips, status = [], []
    for i, uid in enumerate(ids):
        ws = worker_of[i]
        pairs = [(L["unit"], _esc(uid))]
        if admin is not None:
            pairs.append((L["admin_code"], _esc(admin[i])))
        who = ", ".join(_esc(names.get(w, w)) for w in ws)
        pairs.append((L["worker"], who or f"<i>{html.escape(L['unassigned'])}</i>"))
        st = None
        if rec is not None:
            st, more = _patrol_pairs(rec_rows, uid, L)
            pairs += more
        status.append(st)
        tips.append(_rows(pairs))
    return tips, status


def _case_entries(reports: pd.DataFrame | None, L: dict) -> list:
    """Search entries for the open cases with a point: case id and category."""
    if reports is None or not len(reports) or not isinstance(reports, gpd.GeoDataFrame):
        return []
    r = reports[~reports["status"].astype(str).isin(_CLOSED)]
    r = r[~shapely.is_missing(r.geometry.array) & ~r.geometry.is_empty]
    if r.crs is not None and not r.crs.equals(WGS84):
        r = r.to_crs(WGS84)
    x, y = np.round(r.geometry.x.to_numpy(), 5), np.round(r.geometry.y.to_numpy(), 5)
    text = r["report_id"].astype(str) + " · " + r["category"].astype(str)
    return [[t, b, a, b, a] for t, a, b in zip(text, x.tolist(), y.tolist(), strict=True)]
