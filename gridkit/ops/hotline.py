"""The 12345 hotline and other outside systems: tickets in, results back.

A ticket carries its source system's id (``ticket_id``, unique per ``ticket_system``:
``12345`` by default); a ticket sent again (the next day's export repeats open
tickets) is the same case, never a second one. Tickets with only an address are
placed offline by the workspace's gazetteer (:mod:`gridkit.ops.gazetteer`); the
uncertain ones, and tickets of a category the rules do not know, go to a review queue
instead of becoming cases.

- :func:`read_hotline_export` reads the hotline's daily CSV/XLSX export (Chinese
  headers such as 工单编号, 诉求类别, 诉求内容, 诉求地址, 来电时间, 联系电话);
- :func:`take_in_tickets` takes tickets in through :func:`gridkit.ops.reports.intake`;
- :func:`export_results` lists closed cases with their handling notes, for the
  hotline's own system.

Examples
--------
>>> import pandas as pd
>>> from gridkit.synth.ops import grid_units
>>> units = grid_units(2, 2)
>>> admin = pd.DataFrame({"admin_code": ["430202001"], "name": ["桂花街道"],
...                       "level": ["township"]})
>>> tickets = pd.DataFrame({"ticket_id": ["T1", "T2"], "category": ["路灯损坏", "噪音扰民"],
...                         "address": ["桂花街道文化路", "桂花街道"],
...                         "reported_at": ["2026-05-01T08:00Z", "2026-05-01T09:00Z"]})
>>> got = take_in_tickets(tickets, units=units, admin_areas=admin, at="2026-05-01T10:00Z")
>>> got.created, got.review["reason"].tolist()
(['R0000001'], ['category'])
>>> again = take_in_tickets(tickets.iloc[:1], reports=got.reports, units=units,
...                         admin_areas=admin)
>>> again.created, again.resent.to_dict("records")
([], [{'ticket_system': '12345', 'ticket_id': 'T1', 'report_id': 'R0000001'}])
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import WGS84
from gridkit.errors import GridkitError
from gridkit.io import read_table
from gridkit.ops.gazetteer import Gazetteer, match_addresses
from gridkit.ops.reports import EVENT_COLUMNS, ReportRules, intake, normalise_reports, report_rules
from gridkit.ops.times import LOCAL_TZ, utc_scalar, utc_series

__all__ = [
    "HOTLINE_COLUMNS",
    "HotlineError",
    "TicketIntake",
    "export_results",
    "hotline_tickets",
    "read_hotline_export",
    "take_in_requests",
    "take_in_tickets",
]

#: headers of hotline exports seen in practice, and the contract names they map to
HOTLINE_COLUMNS = {
    "工单编号": "ticket_id",
    "工单号": "ticket_id",
    "受理编号": "ticket_id",
    "诉求类别": "category",
    "问题分类": "category",
    "工单类别": "category",
    "诉求内容": "description",
    "问题描述": "description",
    "诉求地址": "address",
    "事发地址": "address",
    "地址": "address",
    "来电时间": "reported_at",
    "受理时间": "reported_at",
    "联系电话": "reporter_contact",
    "来电号码": "reporter_contact",
    "经度": "lon",
    "纬度": "lat",
    "来源系统": "ticket_system",
}
DEFAULT_SYSTEM = "12345"
REVIEW_COLUMNS = [
    "ticket_system",
    "ticket_id",
    "reason",
    "category",
    "address",
    "candidate",
    "admin_code",
    "confidence",
    "description",
    "reported_at",
]


class HotlineError(GridkitError, ValueError):
    """A hotline export cannot be read as tickets (no ticket ids, ...)."""


class TicketIntake(NamedTuple):
    """What :func:`take_in_tickets` did.

    ``reports``/``events``: the layer after intake and the new events (as
    :class:`gridkit.ops.reports.ReportChange`); ``created``: the new report ids;
    ``resent``: tickets already in the workspace (``ticket_system``, ``ticket_id``,
    ``report_id``), not taken in again; ``review``: tickets left for a person
    (``reason`` ``address`` or ``category``, the best candidate and its confidence).

    Examples
    --------
    >>> import pandas as pd
    >>> t = TicketIntake(pd.DataFrame(), pd.DataFrame(), ["R1"], pd.DataFrame(), pd.DataFrame())
    >>> t.created
    ['R1']
    """

    reports: gpd.GeoDataFrame
    events: pd.DataFrame
    created: list[str]
    resent: pd.DataFrame
    review: pd.DataFrame


def read_hotline_export(
    path: str | Path,
    *,
    sheet: str | None = None,
    encoding: str | None = None,
    columns: dict[str, str] | None = None,
) -> pd.DataFrame:
    """A hotline's CSV/XLSX export as tickets (Chinese headers mapped, lon/lat to points).

    Parameters
    ----------
    path
        The export (``.csv`` or ``.xlsx``).
    sheet
        The workbook sheet (default the first).
    encoding
        Text encoding of a CSV (e.g. ``gbk``; default UTF-8).
    columns
        More header renames, ``{"原表头": "ticket_id"}``, over :data:`HOTLINE_COLUMNS`.

    Returns
    -------
    geopandas.GeoDataFrame
        ``ticket_id`` (text), ``category``, ``description``, ``address``,
        ``reported_at``, ``reporter_contact``, ``ticket_system`` and points where the
        export has lon/lat (WGS84), else empty geometries.

    Raises
    ------
    HotlineError
        No ticket id column, or tickets without an id (their rows named).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> csv = pathlib.Path(tempfile.mkdtemp()) / "12345.csv"
    >>> _ = csv.write_text("工单编号,诉求类别,诉求地址,来电时间\\n"
    ...                    "0012,路灯损坏,西塘社区3栋,2026-05-01 08:00\\n", encoding="utf-8")
    >>> t = read_hotline_export(csv)
    >>> t[["ticket_id", "category", "address", "ticket_system"]].values.tolist()
    [['0012', '路灯损坏', '西塘社区3栋', '12345']]
    """
    raw = read_table(path, sheet, encoding=encoding)
    return hotline_tickets(raw, columns=columns, source=str(path))


def hotline_tickets(
    table: pd.DataFrame, *, columns: dict[str, str] | None = None, source: str = "export"
) -> gpd.GeoDataFrame:
    """A hotline export already read (a DataFrame with its own headers) as tickets: what
    :func:`read_hotline_export` does after reading the file.

    Examples
    --------
    >>> import pandas as pd
    >>> t = hotline_tickets(pd.DataFrame({"工单号": ["A1"], "问题分类": ["路灯损坏"],
    ...                                   "受理时间": ["2026-05-01 08:00"]}))
    >>> t[["ticket_id", "category"]].values.tolist(), str(t["reported_at"].iloc[0])
    ([['A1', '路灯损坏']], '2026-05-01 00:00:00+00:00')
    """
    mapping = {**HOTLINE_COLUMNS, **(columns or {})}
    raw = table
    df = raw.rename(columns={c: mapping[c] for c in raw.columns if c in mapping})
    if "ticket_id" not in df.columns:
        raise HotlineError(
            f"{source}: no ticket id column (columns: {', '.join(map(str, raw.columns))}).",
            hint="Name it 工单编号 or ticket_id, or pass columns={'原表头': 'ticket_id'}.",
        )
    ids = df["ticket_id"].astype("string").str.strip()
    missing = ids.isna() | (ids == "")
    if missing.any():
        rows = (np.flatnonzero(missing.to_numpy()) + 2).tolist()  # +2: header, 1-based
        raise HotlineError(
            f"{source}: rows {', '.join(map(str, rows[:20]))} have no ticket id.",
            hint="Every ticket needs its hotline id; remove or complete those rows.",
        )
    df["ticket_id"] = ids.astype(object)
    if "ticket_system" not in df.columns:
        df["ticket_system"] = DEFAULT_SYSTEM
    if "reported_at" in df.columns:
        # exports are in Beijing time unless they say otherwise
        df["reported_at"] = _local_times(df["reported_at"])
    geoms = None
    if {"lon", "lat"} <= set(df.columns):
        lon = pd.to_numeric(df.pop("lon"), errors="coerce").to_numpy(dtype=float)
        lat = pd.to_numeric(df.pop("lat"), errors="coerce").to_numpy(dtype=float)
        geoms = shapely.points(lon, lat)
        geoms[np.isnan(lon) | np.isnan(lat)] = None
    return gpd.GeoDataFrame(
        df, geometry=geoms if geoms is not None else [None] * len(df), crs=WGS84
    )


def _local_times(values: pd.Series) -> pd.Series:
    """Times of an export: Beijing time unless they carry an offset; UTC out."""
    t = pd.to_datetime(values, format="mixed", errors="coerce")
    if getattr(t.dt, "tz", None) is None:
        t = t.dt.tz_localize(LOCAL_TZ)
    return utc_series(t)


def _category_codes(category: pd.Series, rules: ReportRules) -> pd.Series:
    """Category codes from codes or Chinese labels (路灯损坏 -> street_light); None for
    a category the rules do not know."""
    by_label = {str(v.get("label_zh")): k for k, v in rules.categories.items()}
    text = category.astype("string").str.strip()
    code = text.where(text.isin(list(rules.categories)))
    return code.fillna(text.map(by_label)).astype(object).where(lambda s: s.notna(), None)


def _ticket_keys(df: pd.DataFrame, default_system: str) -> pd.Series:
    system = df["ticket_system"] if "ticket_system" in df.columns else None
    sys_ = (
        pd.Series(default_system, index=df.index)
        if system is None
        else system.astype("string").fillna(default_system)
    )
    return sys_.astype(str) + "\x1f" + df["ticket_id"].astype(str)


def _review_rows(df: pd.DataFrame, reason: str, match: pd.DataFrame | None) -> pd.DataFrame:
    out = pd.DataFrame(index=df.index, columns=REVIEW_COLUMNS, dtype=object)
    for col in ("ticket_system", "ticket_id", "category", "address", "description"):
        if col in df.columns:
            out[col] = df[col].astype(object)
    out["reported_at"] = df["reported_at"] if "reported_at" in df.columns else pd.NaT
    out["reason"] = reason
    if match is not None:
        out["candidate"] = match["name"].reindex(df.index)
        out["admin_code"] = match["admin_code"].reindex(df.index)
        out["confidence"] = match["confidence"].reindex(df.index)
    return out


def _placed(
    df: gpd.GeoDataFrame, gazetteer: Gazetteer | None, min_confidence: float
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Address-only tickets placed by the gazetteer: ``admin_code`` set (and the point of
    a matched building); the uncertain ones returned apart for review."""
    geoms = np.asarray(df.geometry.array)
    has_point = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    hand = pd.Series(False, index=df.index)
    for col in ("admin_code", "unit_id"):
        if col in df.columns:
            hand |= df[col].notna()
    todo = ~has_point & ~hand.to_numpy()
    if not todo.any():
        return df, _review_rows(df.iloc[:0], "address", None)
    addresses = df["address"] if "address" in df.columns else pd.Series(None, index=df.index)
    if gazetteer is None:
        return df[~todo], _review_rows(df[todo], "address", None)
    match = match_addresses(addresses[todo], gazetteer, min_confidence=min_confidence)
    ok = ~match["review"].to_numpy()
    sure = match[ok]
    df = df.copy()
    if "admin_code" not in df.columns:
        df["admin_code"] = None
    df["admin_code"] = df["admin_code"].astype(object)
    df.loc[sure.index, "admin_code"] = sure["admin_code"].to_numpy(dtype=object)
    df["place_confidence"] = np.nan
    df.loc[sure.index, "place_confidence"] = sure["confidence"].to_numpy()
    building = sure[sure["lon"].notna().to_numpy()]
    if len(building):
        df.loc[building.index, df.geometry.name] = shapely.points(
            building["lon"].to_numpy(float), building["lat"].to_numpy(float)
        )
    unsure = match.index[~ok]
    return df.drop(index=unsure), _review_rows(df.loc[unsure], "address", match)


def take_in_tickets(
    tickets: pd.DataFrame,
    *,
    reports: pd.DataFrame | None = None,
    units: gpd.GeoDataFrame | None = None,
    admin_areas: pd.DataFrame | None = None,
    communities: pd.DataFrame | None = None,
    buildings: pd.DataFrame | None = None,
    gazetteer: Gazetteer | None = None,
    rules: ReportRules | str | Path | None = None,
    at: object = None,
    min_confidence: float = 0.7,
    actor_id: str | None = None,
    source: str = "hotline",
) -> TicketIntake:
    """Take hotline tickets in as reports: once per ticket, placed, or left for review.

    Parameters
    ----------
    tickets
        ``ticket_id`` and ``category`` (a code or its Chinese label), optional
        ``ticket_system`` (default ``12345``), ``description``, ``address``,
        ``reported_at``, ``reporter_contact``, points (or ``admin_code``/``unit_id``
        chosen by hand).
    reports
        The workspace's reports: a ticket already there (same system and id) is
        ``resent``, and ids and duplicate links continue from them.
    units
        The units, to place points in units.
    admin_areas, communities, buildings
        Layers the gazetteer is built from (or pass ``gazetteer``).
    gazetteer
        A ready :class:`~gridkit.ops.gazetteer.Gazetteer`.
    rules
        Report rules (categories); default the packaged ones.
    at
        Intake time (UTC; default now).
    min_confidence
        Address matches below it go to review.
    actor_id
        Who took the tickets in (default ``hotline``).
    source
        The report ``source`` of tickets without one.

    Returns
    -------
    TicketIntake

    Examples
    --------
    See the module's example.
    """
    rules = report_rules(rules)
    df = tickets.copy()
    if not isinstance(df, gpd.GeoDataFrame):
        df = gpd.GeoDataFrame(df, geometry=[None] * len(df), crs=WGS84)
    elif df.crs is None:
        df = df.set_crs(WGS84)
    if "ticket_id" not in df.columns:
        raise HotlineError("tickets have no ticket_id column.", hint="Name the hotline's id.")
    df["ticket_id"] = df["ticket_id"].astype(str)
    if "ticket_system" not in df.columns:
        df["ticket_system"] = DEFAULT_SYSTEM
    df["ticket_system"] = df["ticket_system"].astype("string").fillna(DEFAULT_SYSTEM).astype(object)
    if "source" not in df.columns:
        df["source"] = source
    keys = _ticket_keys(df, DEFAULT_SYSTEM)
    df = df[~keys.duplicated().to_numpy()]  # a ticket twice in one export: once
    keys = keys.loc[df.index]
    old = normalise_reports(reports) if reports is not None else None
    resent = pd.DataFrame({"ticket_system": [], "ticket_id": [], "report_id": []}, dtype=object)
    if old is not None and "ticket_id" in old.columns and len(old):
        known = old[old["ticket_id"].notna().to_numpy()]
        known_keys = pd.Series(
            known["report_id"].to_numpy(), index=_ticket_keys(known, DEFAULT_SYSTEM).to_numpy()
        )
        known_keys = known_keys[~known_keys.index.duplicated()]
        seen = keys.isin(known_keys.index).to_numpy()
        resent = pd.DataFrame(
            {
                "ticket_system": df.loc[seen, "ticket_system"].to_numpy(dtype=object),
                "ticket_id": df.loc[seen, "ticket_id"].to_numpy(dtype=object),
                "report_id": known_keys.reindex(keys[seen]).to_numpy(dtype=object),
            }
        )
        df = df[~seen]
    got = take_in_requests(
        df,
        reports=old,
        units=units,
        admin_areas=admin_areas,
        communities=communities,
        buildings=buildings,
        gazetteer=gazetteer,
        rules=rules,
        at=at,
        min_confidence=min_confidence,
        actor_id=actor_id or source,
    )
    return got._replace(resent=resent)


def take_in_requests(
    requests: gpd.GeoDataFrame,
    *,
    reports: pd.DataFrame | None = None,
    units: gpd.GeoDataFrame | None = None,
    admin_areas: pd.DataFrame | None = None,
    communities: pd.DataFrame | None = None,
    buildings: pd.DataFrame | None = None,
    gazetteer: Gazetteer | None = None,
    rules: ReportRules | str | Path | None = None,
    at: object = None,
    min_confidence: float = 0.7,
    actor_id: str | None = None,
) -> TicketIntake:
    """Take requests from outside in (no ticket ids needed): categories from codes or
    labels, address-only ones placed by the gazetteer, the rest through
    :func:`gridkit.ops.reports.intake`; unknown categories and uncertain places are
    left for review (``resent`` is empty).

    Parameters are those of :func:`take_in_tickets`; ``requests`` need ``category``
    and ``source``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> from gridkit.synth.ops import grid_units
    >>> new = gpd.GeoDataFrame({"category": ["路灯损坏"], "source": ["resident"]},
    ...                        geometry=[Point(113.1025, 27.8025)], crs=4326)
    >>> got = take_in_requests(new, units=grid_units(2, 2), at="2026-05-01T08:00Z")
    >>> got.created, got.reports["unit_id"].tolist()
    (['R0000001'], ['430202001000000'])
    """
    rules = report_rules(rules)
    df = requests.copy()
    old = normalise_reports(reports) if reports is not None else None
    resent = pd.DataFrame({"ticket_system": [], "ticket_id": [], "report_id": []}, dtype=object)
    code = _category_codes(df["category"], rules)
    unknown = code.isna().to_numpy()
    review = [_review_rows(df[unknown], "category", None)]
    df = df[~unknown].assign(category=code[~unknown])
    if gazetteer is None and any(x is not None for x in (admin_areas, communities, buildings)):
        gazetteer = Gazetteer.from_layers(
            admin_areas=admin_areas, communities=communities, buildings=buildings
        )
    df, unsure = _placed(df, gazetteer, min_confidence)
    review.append(unsure)
    review_df = pd.concat(review, ignore_index=True)
    if not len(df):
        base = old if old is not None else normalise_reports(df)
        return TicketIntake(base, _no_events(), [], resent, review_df)
    change = intake(
        df.reset_index(drop=True),
        units=units,
        existing=old,
        rules=rules,
        at=at,
        actor_id=actor_id,
    )
    created = change.events["report_id"].astype(str).tolist()
    return TicketIntake(change.reports, change.events, created, resent, review_df)


def _no_events() -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in EVENT_COLUMNS}, dtype=object)


def export_results(
    reports: pd.DataFrame,
    events: pd.DataFrame | None = None,
    *,
    departments: pd.DataFrame | None = None,
    callbacks: pd.DataFrame | None = None,
    since: object = None,
    until: object = None,
    closed_status: str = "closed",
) -> pd.DataFrame:
    """Closed ticket cases with their handling notes, for the hotline's system.

    Parameters
    ----------
    reports
        The reports layer (tickets carry ``ticket_id``).
    events
        The ``report_events``: the handling notes, in time order, and when each case
        closed (the last event into ``closed_status``).
    departments
        To name the lead department.
    callbacks
        The ``callbacks`` layer: the latest answer per case is exported too.
    since, until
        Closed in this period only (UTC; either may be left open).
    closed_status
        The status of a finished case.

    Returns
    -------
    pandas.DataFrame
        ``ticket_system``, ``ticket_id``, ``report_id``, ``category``, ``status``,
        ``closed_at``, ``department``, ``handling`` (办理情况: the events' notes) and
        ``satisfaction`` (when a callback was recorded).

    Examples
    --------
    >>> import pandas as pd
    >>> reports = pd.DataFrame({"report_id": ["R1", "R2"], "ticket_id": ["T9", None],
    ...                         "ticket_system": ["12345", None], "category": ["sewage"] * 2,
    ...                         "status": ["closed", "closed"], "lead_department_id": ["D1"] * 2})
    >>> events = pd.DataFrame({"report_id": ["R1", "R1"],
    ...                        "at": pd.to_datetime(["2026-05-01", "2026-05-03"], utc=True),
    ...                        "to_status": ["handling", "closed"],
    ...                        "note": ["已疏通", "核查属实, 结案"]})
    >>> out = export_results(reports, events)
    >>> out[["ticket_id", "handling"]].values.tolist()
    [['T9', '已疏通; 核查属实, 结案']]
    """
    if "ticket_id" not in reports.columns:
        return pd.DataFrame(
            columns=[
                "ticket_system",
                "ticket_id",
                "report_id",
                "category",
                "status",
                "closed_at",
                "department",
                "handling",
                "satisfaction",
            ]
        )
    done = reports[(reports["ticket_id"].notna() & (reports["status"] == closed_status)).to_numpy()]
    out = pd.DataFrame(
        {
            "ticket_system": done.get("ticket_system", pd.Series(DEFAULT_SYSTEM, index=done.index))
            .fillna(DEFAULT_SYSTEM)
            .to_numpy(dtype=object),
            "ticket_id": done["ticket_id"].to_numpy(dtype=object),
            "report_id": done["report_id"].astype(str).to_numpy(dtype=object),
            "category": done["category"].to_numpy(dtype=object),
            "status": done["status"].to_numpy(dtype=object),
        }
    )
    out["closed_at"] = pd.NaT
    out["handling"] = None
    if events is not None and len(events):
        ev = events[events["report_id"].astype(str).isin(out["report_id"]).to_numpy()]
        ev = ev.assign(at=utc_series(ev["at"])).sort_values("at", kind="stable")
        closed = ev[(ev["to_status"] == closed_status).to_numpy()].groupby("report_id")["at"].max()
        notes = ev["note"].dropna().astype(str)
        handling = notes.groupby(ev.loc[notes.index, "report_id"].astype(str)).agg("; ".join)
        if len(closed):  # (an empty map would be typed float)
            out["closed_at"] = utc_series(out["report_id"].map(closed))
        if len(handling):
            out["handling"] = out["report_id"].map(handling)
    names = None
    if departments is not None:
        names = pd.Series(departments["name"].to_numpy(), index=departments["department_id"])
    lead = done.get("lead_department_id", pd.Series(None, index=done.index)).to_numpy(dtype=object)
    out["department"] = pd.Series(lead).map(names) if names is not None else lead
    out["satisfaction"] = None
    if callbacks is not None and len(callbacks):
        cb = callbacks.assign(at=utc_series(callbacks["at"])).sort_values("at")
        latest = cb.groupby(cb["report_id"].astype(str))["result"].last()
        out["satisfaction"] = out["report_id"].map(latest)
    t = utc_series(out["closed_at"])
    keep = np.ones(len(out), dtype=bool)
    if since is not None:
        keep &= (t >= utc_scalar(since, name="since")).to_numpy(dtype=bool, na_value=False)
    if until is not None:
        keep &= (t < utc_scalar(until, name="until")).to_numpy(dtype=bool, na_value=False)
    return out[keep].reset_index(drop=True)
