"""The chief's own record of a patrol: the 看/查/交 checklist and the paper ledger (台账).

A patrol carries its item results in ``checklist`` (JSON: ``{"outfalls": {"result":
"problem", "note": "...", "photo": "...", "lon": ..., "lat": ...}}``); the items, their
step (看 look / 查 check) and labels live in ``patrol_rules.toml``.
:func:`checklist_results` reads them into one row per item; :func:`patrol_problems`
hands each ``problem`` over (交) as a report of the item's category, source
``patrol``, linked to the patrol by ``patrol_id``, through
:func:`gridkit.ops.reports.intake` so that it enters the case workflow like any other.

Paper records: :func:`read_ledger` reads a ledger workbook (date, chief, section,
duration, items found) into patrols marked ``source = "ledger"``, unverified and
without a track; :func:`ledger_frame` writes patrols back in the ledger's layout.

Examples
--------
>>> [(i["key"], i["zh"]) for i in load_patrol_rules().checklist[:2]]
[('water_colour', '水体颜色'), ('smell', '水体气味')]
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import WGS84
from gridkit.errors import InputFileError, InvalidLayerError
from gridkit.ops.patrols import PatrolRules, load_patrol_rules
from gridkit.ops.reports import ReportChange, ReportRules, intake
from gridkit.ops.times import utc_series

__all__ = [
    "LEDGER_COLUMNS",
    "RESULTS",
    "checklist_results",
    "ledger_frame",
    "patrol_problems",
    "read_ledger",
]

#: the results an item may have: ok, problem, not applicable
RESULTS = ("ok", "problem", "na")
#: the paper ledger's columns (台账), Chinese header -> patrol column
LEDGER_COLUMNS = {
    "日期": "date",
    "河长": "chief",
    "河段": "section",
    "时长(分钟)": "duration_min",
    "发现问题": "items",
    "备注": "notes",
}
_STEP_ZH = {"look": "看", "check": "查"}


def _rules(rules: PatrolRules | str | Path | None) -> PatrolRules:
    return rules if isinstance(rules, PatrolRules) else load_patrol_rules(rules)


def _parse(text: object, pid: str) -> dict:
    if isinstance(text, dict):
        return text
    if text is None or (not isinstance(text, str) and pd.isna(text)) or text == "":
        return {}  # no checklist (None, NaN or pandas' NA)
    try:
        value = json.loads(str(text))
    except json.JSONDecodeError as exc:
        raise InvalidLayerError(
            f"patrols: checklist of patrol {pid!r} is not JSON ({exc.msg} at {exc.pos}).",
            hint='Write {"outfalls": {"result": "problem", "note": "..."}}.',
        ) from None
    if not isinstance(value, dict):
        raise InvalidLayerError(f"patrols: checklist of patrol {pid!r} is not a JSON object.")
    return value


def checklist_results(
    patrols: pd.DataFrame, *, rules: PatrolRules | str | Path | None = None
) -> pd.DataFrame:
    """One row per patrol and checklist item recorded.

    Returns
    -------
    pandas.DataFrame
        ``patrol_id``, ``item``, ``step`` (look/check), ``label_zh``, ``label_en``,
        ``category``, ``result`` (ok/problem/na), ``note``, ``photo``, ``lon``, ``lat``.

    Raises
    ------
    InvalidLayerError
        A checklist that is not JSON, an unknown item or result, naming the patrol.

    Examples
    --------
    >>> p = pd.DataFrame({"patrol_id": ["P1"], "checklist": [
    ...     '{"outfalls": {"result": "problem", "note": "暗管排污"}, "smell": "ok"}']})
    >>> checklist_results(p)[["item", "step", "label_zh", "result"]].values.tolist()
    [['outfalls', 'check', '入河排污口', 'problem'], ['smell', 'look', '水体气味', 'ok']]
    """
    rules = _rules(rules)
    items = {i["key"]: i for i in rules.checklist}
    rows = []
    col = patrols["checklist"] if "checklist" in patrols else pd.Series(None, patrols.index)
    # a loop over patrols' JSON texts: parsing is per text, there is no array form
    for pid, text in zip(patrols["patrol_id"].astype(str), col, strict=True):
        for key, value in _parse(text, pid).items():
            got = value if isinstance(value, dict) else {"result": value}
            if key not in items or got.get("result") not in RESULTS:
                raise InvalidLayerError(
                    f"patrols: patrol {pid!r} has checklist item {key!r} = "
                    f"{got.get('result')!r}, not understood.",
                    hint=f"Items: {', '.join(items)}; results: {', '.join(RESULTS)}.",
                )
            it = items[key]
            rows.append(
                {
                    "patrol_id": pid,
                    "item": key,
                    "step": it["step"],
                    "label_zh": it.get("zh"),
                    "label_en": it.get("en"),
                    "category": it.get("category"),
                    "result": got["result"],
                    "note": got.get("note"),
                    "photo": got.get("photo"),
                    "lon": got.get("lon"),
                    "lat": got.get("lat"),
                }
            )
    cols = ["patrol_id", "item", "step", "label_zh", "label_en", "category", "result"]
    return pd.DataFrame(rows, columns=[*cols, "note", "photo", "lon", "lat"])


def _where(problems: pd.DataFrame, patrols: pd.DataFrame) -> np.ndarray:
    """The point of each problem: its own lon/lat, else the middle of the patrol's
    track (None when the patrol has none either)."""
    lon = pd.to_numeric(problems["lon"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(problems["lat"], errors="coerce").to_numpy(dtype=float)
    pts = shapely.points(lon, lat)
    own = np.isfinite(lon) & np.isfinite(lat)
    if isinstance(patrols, gpd.GeoDataFrame) and patrols.geometry.name in patrols:
        tracks = patrols.to_crs(WGS84).set_index(patrols["patrol_id"].astype(str)).geometry
        g = np.asarray(tracks.reindex(problems["patrol_id"]).array, dtype=object)
        mid = shapely.line_interpolate_point(g, 0.5, normalized=True)
        pts = np.where(own, pts, mid)
    return np.where(own | ~shapely.is_missing(pts), pts, None)


def patrol_problems(
    patrols: pd.DataFrame,
    *,
    units: gpd.GeoDataFrame | None = None,
    existing: pd.DataFrame | None = None,
    rules: PatrolRules | str | Path | None = None,
    report_rules: ReportRules | str | Path | None = None,
    at: object = None,
) -> ReportChange:
    """Hand over (交) each ``problem`` of the patrols' checklists as a report.

    Each becomes a report of its item's category, source ``patrol``, reported when the
    patrol ended, by the patrol's worker, at the item's own point (``lon``/``lat``) or
    the middle of the track, carrying ``patrol_id`` and the ``photo`` as evidence,
    through :func:`gridkit.ops.reports.intake` (ids, units, duplicates, first event).
    A patrol's problems already handed over (a report with its ``patrol_id`` and
    ``checklist_item`` in ``existing``) are not handed over twice.

    Examples
    --------
    >>> from gridkit.synth.people import chief_demo
    >>> units, chiefs, patrols = chief_demo()
    >>> patrols.loc[0, "checklist"] = (
    ...     '{"outfalls": {"result": "problem", "note": "暗管排污", "photo": "p1.jpg"},'
    ...     ' "floating": {"result": "ok"}}')
    >>> reports, events = patrol_problems(patrols, units=units, at="2026-05-06T02:00Z")
    >>> reports[["category", "source", "patrol_id", "checklist_item"]].values.tolist()
    [['illegal_discharge', 'patrol', 'P-CAR', 'outfalls']]
    >>> len(patrol_problems(patrols, units=units, existing=reports).reports)
    1
    """
    res = checklist_results(patrols, rules=rules)
    res = res[res["result"] == "problem"].reset_index(drop=True)
    if existing is not None and len(existing) and "patrol_id" in existing:
        done = set(
            zip(
                existing["patrol_id"].astype(str),
                existing.get("checklist_item", pd.Series("", existing.index)).astype(str),
                strict=True,
            )
        )
        res = res[[(p, i) not in done for p, i in zip(res["patrol_id"], res["item"], strict=True)]]
    p = patrols.set_index(patrols["patrol_id"].astype(str))
    ended = utc_series(p["ended_at"]).reindex(res["patrol_id"]).to_numpy()
    new = gpd.GeoDataFrame(
        {
            "category": res["category"].to_numpy(),
            "source": "patrol",
            "description": (
                "[" + res["step"].map(_STEP_ZH) + "] " + res["label_zh"] + ": "
            ).to_numpy()
            + res["note"].fillna("").astype(str).to_numpy(),
            "reported_at": ended,
            "reporter_id": p["worker_id"].astype(str).reindex(res["patrol_id"]).to_numpy(),
            "patrol_id": res["patrol_id"].to_numpy(),
            "checklist_item": res["item"].to_numpy(),
            "evidence": res["photo"].to_numpy(),
        },
        geometry=_where(res, patrols),
        crs=WGS84,
    )
    if existing is not None:  # new rows continue the index of the reports taken in
        start = len(existing)
        new.index = pd.RangeIndex(start, start + len(new))
        existing = existing.reset_index(drop=True)
    if not len(new):
        old = existing if existing is not None else new
        return intake(new.iloc[:0], units=units, existing=old, rules=report_rules, at=at)
    return intake(new, units=units, existing=existing, rules=report_rules, at=at)


# --------------------------------------------------------------------------- paper ledger


def ledger_frame(patrols: pd.DataFrame, river_chiefs: pd.DataFrame, *, tz: str) -> pd.DataFrame:
    """Patrols in the paper ledger's layout (:data:`LEDGER_COLUMNS`, Chinese headers):
    date (local), chief (``chief_id``), section (``river_id@admin_code``), duration in
    minutes, items found (the checklist's problems, by label), notes.

    Examples
    --------
    >>> from gridkit.synth.people import chief_demo
    >>> _, chiefs, patrols = chief_demo()
    >>> ledger_frame(patrols.iloc[1:], chiefs, tz="Asia/Shanghai").to_dict("records")
    ... # doctest: +NORMALIZE_WHITESPACE
    [{'日期': '2026-05-07', '河长': 'RC-V', '河段': 'R1@430202001001', '时长(分钟)': 60,
      '发现问题': '', '备注': ''}]
    """
    ch = river_chiefs.set_index(river_chiefs["chief_id"].astype(str))
    cid = patrols["chief_id"].astype(str)
    start = utc_series(patrols["started_at"])
    minutes = (utc_series(patrols["ended_at"]) - start) / pd.Timedelta(minutes=1)
    found = checklist_results(patrols)
    found = found[found["result"] == "problem"].groupby("patrol_id")["label_zh"].agg("、".join)
    found = found.astype(object)
    return pd.DataFrame(
        {
            "日期": start.dt.tz_convert(tz).dt.strftime("%Y-%m-%d").to_numpy(),
            "河长": cid.to_numpy(),
            "河段": (
                ch["river_id"].astype(str).reindex(cid) + "@" + ch["admin_code"].reindex(cid)
            ).to_numpy(),
            "时长(分钟)": minutes.round().astype("int64").to_numpy(),
            "发现问题": patrols["patrol_id"]
            .astype(str)
            .map(found)
            .astype(object)
            .fillna("")
            .to_numpy(),
            "备注": patrols.get("notes", pd.Series("", patrols.index)).fillna("").to_numpy(),
        }
    )


def _ledger_problems(path: str, table: pd.DataFrame, river_chiefs: pd.DataFrame) -> list[str]:
    """What is wrong with a ledger table, row by row (spreadsheet row numbers)."""
    known = set(river_chiefs["chief_id"].astype(str))
    rows = np.arange(len(table)) + 2  # the header is row 1
    date = pd.to_datetime(table["日期"].astype(str), errors="coerce", format="mixed")
    dur = pd.to_numeric(table["时长(分钟)"], errors="coerce")
    checks = (
        (date.isna().to_numpy(), "日期 is not a date (write 2026-05-07)"),
        (~table["河长"].astype(str).isin(known).to_numpy(), "河长 is no chief_id of the workspace"),
        ((dur.isna() | (dur <= 0)).to_numpy(), "时长(分钟) is not a positive number"),
    )
    return [f"{path}: row {r}: {text}" for bad, text in checks for r in rows[bad][:5].tolist()]


def read_ledger(
    path: str | Path,
    river_chiefs: pd.DataFrame,
    *,
    rules: PatrolRules | str | Path | None = None,
    first_id: int = 1,
) -> gpd.GeoDataFrame:
    """Read a paper ledger workbook (first sheet, :data:`LEDGER_COLUMNS`) into patrols.

    Each row becomes a patrol of the chief's worker for that appointment, ``source =
    "ledger"``, ``verified = False``, no track, starting at 09:00 local on the date and
    lasting the duration; items found (labels or keys separated by 、 , ;) become
    ``problem`` results of its checklist.

    Raises
    ------
    InputFileError
        Missing columns, a bad date, an unknown chief or duration, naming the row.

    Examples
    --------
    >>> import tempfile
    >>> from gridkit.synth.people import chief_demo
    >>> _, chiefs, patrols = chief_demo()
    >>> with tempfile.TemporaryDirectory() as d:
    ...     ledger_frame(patrols.iloc[1:], chiefs, tz="Asia/Shanghai").to_excel(
    ...         f"{d}/台账.xlsx", index=False)
    ...     back = read_ledger(f"{d}/台账.xlsx", chiefs)
    >>> back[["patrol_id", "worker_id", "chief_id", "source", "verified"]].values.tolist()
    [['L000001', 'W-V', 'RC-V', 'ledger', False]]
    """
    rules = _rules(rules)
    table = pd.read_excel(path, sheet_name=0, dtype=object)
    missing = [c for c in LEDGER_COLUMNS if c not in table.columns and c != "备注"]
    if missing:
        raise InputFileError(
            f"{path}: the ledger has no column {', '.join(missing)}.",
            hint=f"A ledger has the columns {', '.join(LEDGER_COLUMNS)} (first sheet).",
        )
    table = table.dropna(how="all").reset_index(drop=True)
    problems = _ledger_problems(str(path), table, river_chiefs)
    if problems:
        raise InputFileError(
            "; ".join(problems[:10]),
            hint="Fix these rows of the ledger (河长 takes the chief_id, e.g. RC00012).",
        )
    ch = river_chiefs.set_index(river_chiefs["chief_id"].astype(str))
    cid = table["河长"].astype(str)
    day = pd.to_datetime(table["日期"].astype(str), format="mixed").dt.normalize()
    start = (day + pd.Timedelta(hours=9)).dt.tz_localize(rules.timezone).dt.tz_convert("UTC")
    minutes = pd.to_numeric(table["时长(分钟)"])
    return gpd.GeoDataFrame(
        {
            "patrol_id": [f"L{first_id + i:06d}" for i in range(len(table))],
            "worker_id": ch["worker_id"].astype(str).reindex(cid).to_numpy(),
            "started_at": start.to_numpy(),
            "ended_at": (start + pd.to_timedelta(minutes, unit="min")).to_numpy(),
            "notes": table.get("备注", pd.Series(None, table.index)).to_numpy(),
            "mode": None,
            "source": "ledger",
            "verified": False,
            "chief_id": cid.to_numpy(),
            "checklist": [
                _found(v, rules, str(path), r + 2) for r, v in enumerate(table["发现问题"])
            ],
        },
        geometry=[None] * len(table),
        crs=WGS84,
    ).astype({"started_at": "datetime64[us, UTC]", "ended_at": "datetime64[us, UTC]"})


def _found(text: object, rules: PatrolRules, path: str, row: int) -> str | None:
    """The checklist JSON of the items a ledger row found (labels or keys)."""
    if text is None or (isinstance(text, float) and np.isnan(text)) or not str(text).strip():
        return None
    by_label = {i["zh"]: i["key"] for i in rules.checklist} | {
        i["key"]: i["key"] for i in rules.checklist
    }
    names = [s.strip() for s in pd.Series([str(text)]).str.split(r"[、,，;；]").iloc[0]]
    unknown = [n for n in names if n and n not in by_label]
    if unknown:
        raise InputFileError(
            f"{path}: row {row}: 发现问题 names no checklist item: {', '.join(unknown)}.",
            hint=f"Use the items' labels: {'、'.join(by_label)}.",
        )
    return json.dumps({by_label[n]: {"result": "problem"} for n in names if n}, ensure_ascii=False)
