"""River chiefs' map and signboards (河长公示牌).

:func:`chiefs_map` colours each river section (the river units of one river inside
one admin area) by its chief's compliance at a chosen level, marks the sections
without a chief at that level, and pops up the chief (name, level; phone only when
the caller may see it). :func:`signboard_html` is the printable river-chief signboard
of a section: the section, its chiefs at each level, the office's phone and the link
(and QR code, when a QR library is installed) to the residents' report page.
"""

from __future__ import annotations

import html
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit import codes
from gridkit.maps.base import _base_map, _esc, _finish, _polygons, _prepare, _require, _rows
from gridkit.maps.options import MapOptions, resolve

__all__ = ["chiefs_map", "signboard_html"]

_COLORS = {"met": "#1a9641", "partial": "#fdae61", "missed": "#d7191c", "none": "#bdbdbd"}
_LABELS = {
    "zh": {
        "title": "河长巡河履职",
        "met": "达标",
        "partial": "部分达标",
        "missed": "未巡河",
        "none": "该级无河长",
        "chief": "河长",
        "level": "层级",
        "section": "河段",
        "rules": "巡河要求",
        "phone": "电话",
        "sections": "河段",
        "no_chief": "无河长河段",
    },
    "en": {
        "title": "River chiefs' patrols",
        "met": "compliant",
        "partial": "partly",
        "missed": "no patrol",
        "none": "no chief at this level",
        "chief": "Chief",
        "level": "Level",
        "section": "Section",
        "rules": "Rules",
        "phone": "Phone",
        "sections": "Sections",
        "no_chief": "Sections without a chief",
    },
}
_LEVEL_ZH = {
    "province": "省级",
    "city": "市级",
    "county": "县级",
    "township": "乡级",
    "village": "村级",
    "general": "总河长",
}


def _sections(units: gpd.GeoDataFrame, level: str) -> gpd.GeoDataFrame:
    """River sections at ``level``: the river units of each river dissolved per area of
    that level (``river_id``, ``admin_code``, geometry)."""
    river = units["kind"].astype(str).eq("river_reach") if "kind" in units else True
    ru = units[river & units["parent_id"].notna()]
    area = codes.ancestor(ru["admin_code"].astype(str), level)
    ru = ru.assign(river_id=ru["parent_id"].astype(str), area=area.to_numpy())
    ru = ru[ru["area"].notna()]
    ru = ru.set_geometry(shapely.make_valid(np.asarray(ru.geometry.array)))
    sec = ru.dissolve(by=["river_id", "area"], as_index=False)[["river_id", "area", "geometry"]]
    return sec.rename(columns={"area": "admin_code"})


def _state(c: pd.DataFrame) -> pd.DataFrame:
    """Per appointment: all rules met, some patrols, none."""
    g = c.groupby(["river_id", "admin_code"])
    out = pd.DataFrame(
        {
            "ok": g["compliant"].all(),
            "done": g["done"].sum(),
            "rules": g["rule"].agg(lambda s: ", ".join(sorted(set(s)))),
            "worker_id": g["worker_id"].first(),
            "name": g["name"].first() if "name" in c else g["worker_id"].first(),
        }
    )
    out["state"] = np.where(out["ok"], "met", np.where(out["done"] > 0, "partial", "missed"))
    return out


def chiefs_map(
    units: gpd.GeoDataFrame,
    compliance: pd.DataFrame,
    *,
    level: str,
    workers: pd.DataFrame | None = None,
    show_phone: bool = False,
    options: MapOptions | None = None,
    **overrides: Any,
) -> folium.Map:
    """Map of river sections coloured by their chief's compliance at ``level``.

    Parameters
    ----------
    units
        ``units`` layer (river units: ``parent_id`` = river, ``admin_code``).
    compliance
        :func:`gridkit.ops.chiefs.chief_compliance` rows (``river_id``, ``admin_code``,
        ``level``, ``rule``, ``done``, ``compliant``, ``worker_id``, ``name``).
    level
        ``province``, ``city``, ``county``, ``township`` or ``village``.
    workers
        ``workers`` layer, for phones (shown only with ``show_phone``: supervisors).
    options, **overrides
        As in :func:`~gridkit.maps.coverage_map`.

    Examples
    --------
    >>> import pandas as pd
    >>> from gridkit.maps import map_html
    >>> from gridkit.synth.people import chief_demo
    >>> units, chiefs, _ = chief_demo()  # two village sections, one with a chief
    >>> rows = pd.DataFrame({"chief_id": ["RC-V"], "worker_id": ["W-V"],
    ...     "name": ["<script>x()</script>"], "level": ["village"],
    ...     "admin_code": ["430202001001"], "river_id": ["R1"],
    ...     "rule": ["1/week"], "done": [3], "compliant": [False]})
    >>> page = map_html(chiefs_map(units, rows, level="village", lang="en", tiles=None))
    >>> "partly" in page, "no chief at this level" in page, "<script>x()" in page
    (True, True, False)
    """
    o = resolve(options, overrides)
    lang = "zh" if o.lang == "zh" else "en"
    L = _LABELS[lang]
    if o.title is None:
        o = o.merged(
            title=f"{L['title']} · {_LEVEL_ZH.get(level, level) if lang == 'zh' else level}"
        )
    _require(units, ["unit_id", "parent_id", "admin_code"], "units", geometry=True)
    c = compliance[compliance["level"].astype(str) == level]
    c = c.assign(river_id=c["river_id"].astype(str), admin_code=c["admin_code"].astype(str))
    sec = _prepare(_sections(units, level), o).reset_index(drop=True)
    sec = sec.join(_state(c), on=["river_id", "admin_code"])
    sec["state"] = sec["state"].fillna("none")
    phones = (
        workers.drop_duplicates("worker_id").set_index("worker_id")["phone"].astype(str)
        if show_phone and workers is not None and "phone" in workers
        else pd.Series(dtype=str)
    )
    tips, pops = [], []
    for r in sec.itertuples(index=False):  # one popup per section: text, not geometry
        rows = [(L["section"], f"{_esc(r.river_id)} · {_esc(r.admin_code)}")]
        if r.state != "none":
            rows += [
                (L["chief"], _esc(r.name)),
                (L["level"], _esc(_LEVEL_ZH.get(level, level) if lang == "zh" else level)),
                (L["rules"], f"{_esc(r.rules)}: {_esc(L[r.state])}"),
            ]
            if show_phone and r.worker_id in phones.index:
                rows.append((L["phone"], _esc(phones[r.worker_id])))
        else:
            rows.append((L["chief"], _esc(L["none"])))
        tips.append(_rows(rows[:2]))
        pops.append(_rows(rows))
    m = _base_map(o, [sec], len(sec))
    _polygons(
        sec,
        name=L["sections"],
        colors=[_COLORS[s] for s in sec["state"]],
        tips=tips,
        pops=pops,
        dashed=(sec["state"] == "none").tolist(),
        precision=o.precision,
    ).add_to(m)
    items = [(_COLORS[k], L[k], "box") for k in ("met", "partial", "missed", "none")]
    return _finish(m, o, "compliance", [(L["chief"], items)])


def _qr_svg(url: str) -> str | None:
    """A QR code of ``url`` as inline SVG when ``segno`` is installed, else None."""
    try:
        import segno  # optional: not a dependency of gridkit
    except ImportError:
        return None
    return segno.make(url, error="m").svg_inline(scale=4)


def signboard_html(
    river_name: str,
    section: str,
    chiefs: pd.DataFrame,
    *,
    office_phone: str,
    report_url: str | None = None,
    duties: str = "负责河段的管理和保护，组织开展巡河，协调解决河段存在的问题。",
) -> str:
    """The river-chief signboard (河长公示牌) of a section as a printable page (A4).

    Parameters
    ----------
    river_name, section
        The river and the section's name (its area), as printed.
    chiefs
        The section's chiefs: ``level`` and ``name`` (one per level, general first);
        a chief's own phone is never printed, the office's is.
    office_phone
        The river-chief office's public phone (河长办电话).
    report_url
        The residents' report page; printed, and as a QR code when ``segno`` is
        installed.

    Examples
    --------
    >>> import pandas as pd
    >>> page = signboard_html("湘江", "荷塘区<段>", pd.DataFrame(
    ...     {"level": ["village", "county", "general"], "name": ["李四", "张三", "王五"]}),
    ...     office_phone="0731-12345678", report_url="https://example.org/report")
    >>> "河长公示牌" in page, "荷塘区&lt;段&gt;" in page, page.index("总河长") < page.index("县级")
    (True, True, True)
    """
    order = {
        lv: i
        for i, lv in enumerate(["general", "province", "city", "county", "township", "village"])
    }
    c = chiefs.assign(_o=chiefs["level"].map(order).fillna(99)).sort_values("_o")
    rows = "".join(
        f"<tr><th>{html.escape(_LEVEL_ZH.get(str(r.level), str(r.level)))}"
        f"{'' if r.level == 'general' else '河长'}</th><td>{html.escape(str(r.name))}</td></tr>"
        for r in c.itertuples(index=False)
    )
    qr = _qr_svg(report_url) if report_url else None
    link = (
        f'<div class="report">扫码或访问 举报投诉：<br><span>{html.escape(report_url)}</span>'
        f"{qr or ''}</div>"
        if report_url
        else ""
    )
    return f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>河长公示牌 · {html.escape(section)}</title>
<style>
@page {{ size: A4; margin: 12mm; }}
body {{ font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; margin: 0; }}
.board {{ border: 6px solid #0b5394; padding: 10mm; color: #0b5394; }}
h1 {{ text-align: center; font-size: 32pt; margin: 0 0 6mm; letter-spacing: 6pt; }}
h2 {{ text-align: center; font-size: 18pt; margin: 0 0 6mm; }}
table {{ width: 100%; border-collapse: collapse; font-size: 15pt; margin-bottom: 6mm; }}
th, td {{ border: 1px solid #0b5394; padding: 3mm; text-align: left; }}
th {{ width: 35%; background: #eaf1fb; }}
.duties, .phone, .report {{ font-size: 13pt; margin: 3mm 0; }}
.report span {{ font-family: monospace; }}
</style></head>
<body><div class="board">
<h1>河长公示牌</h1>
<h2>{html.escape(river_name)} · {html.escape(section)}</h2>
<table>{rows}</table>
<div class="duties">河长职责：{html.escape(duties)}</div>
<div class="phone">监督电话（河长办）：{html.escape(office_phone)}</div>
{link}
</div></body></html>
"""
