"""Open311 GeoReport v2 on gridkit's cases: services, request rows, status mapping.

The service (``api.open311``) speaks the wire format; the library decides what a
request is and what the public sees of it.

Status mapping (GeoReport knows ``open`` and ``closed``; ``status_notes`` tells the
stage, in Chinese and English):

================  ========  ==================================================
gridkit stage     Open311   status_notes
================  ========  ==================================================
collected 采集     open      已收到, 等待中心立案 / received, awaiting moderation
opened 立案        open      已立案 / accepted as a case
dispatched 派遣    open      已派遣至处置部门 / dispatched to the department
handling 处置      open      处置中 / being handled
reported_back 反馈 open      已处置, 待核查 / handled, awaiting verification
verified 核查      open      已核查, 待结案 / verified, awaiting closing
returned 退回      open      退回中心重新派遣 / returned to the centre for dispatch
closed 结案        closed    已办结 / closed
rejected 不予立案  closed    不予立案 / not accepted as a case
================  ========  ==================================================

(the stages of the first case model, ``reported``/``assigned``/``in_progress``/
``resolved``, map like ``collected``/``dispatched``/``handling``/``reported_back``).

A request awaiting moderation, or not accepted, is shown by its id or token only, and
by id without its description, media or address: residents' unmoderated text is not
published. No row ever carries the reporter's contact.

Examples
--------
>>> [s["service_code"] for s in services()][:3]
['encroachment', 'reclamation', 'illegal_discharge']
>>> STATUS["collected"][0], STATUS["rejected"][0]
('open', 'closed')
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import WGS84
from gridkit.errors import GridkitError
from gridkit.ops.hotline import TicketIntake, take_in_requests
from gridkit.ops.reports import ReportRules, report_rules
from gridkit.ops.times import LOCAL_TZ, utc_scalar, utc_series

__all__ = [
    "AWAITING",
    "STATUS",
    "GeoReportError",
    "check_attributes",
    "request_rows",
    "select_requests",
    "service_definition",
    "services",
    "take_in_request",
]

#: stage -> (Open311 status, status note)
STATUS: dict[str, tuple[str, str]] = {
    "collected": ("open", "已收到, 等待中心立案 / received, awaiting moderation by the centre"),
    "opened": ("open", "已立案 / accepted as a case"),
    "dispatched": ("open", "已派遣至处置部门 / dispatched to the department"),
    "handling": ("open", "处置中 / being handled"),
    "reported_back": ("open", "已处置, 待核查 / handled, awaiting verification"),
    "verified": ("open", "已核查, 待结案 / verified, awaiting closing"),
    "returned": ("open", "退回中心重新派遣 / returned to the centre for dispatch"),
    "closed": ("closed", "已办结 / closed"),
    "rejected": ("closed", "不予立案 / not accepted as a case"),
}
# the first case model's stages
STATUS.update(
    {
        "reported": STATUS["collected"],
        "assigned": STATUS["dispatched"],
        "in_progress": STATUS["handling"],
        "resolved": STATUS["reported_back"],
    }
)
#: stages awaiting moderation (立案): shown by id or token only
AWAITING = ("collected", "reported")
#: stages never published in lists, and shown by id without their content
UNPUBLISHED = (*AWAITING, "rejected")
#: sources a public list shows (the cases residents and the hotline brought)
PUBLIC_SOURCES = ("resident", "hotline", "media")
MAX_DAYS = 90
MAX_RESULTS = 1000
DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")


class GeoReportError(GridkitError, ValueError):
    """A GeoReport request that cannot be answered; ``status`` is the HTTP status."""

    def __init__(self, message: str, *, status: int = 400, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


def services(rules: ReportRules | str | Path | None = None) -> list[dict[str, Any]]:
    """The GeoReport service list: one service per report category of the rules.

    ``metadata`` is true for a category with ``attributes`` in the rules; ``group`` is
    its domain (river, community).

    Examples
    --------
    >>> s = services()[0]
    >>> s["service_code"], s["service_name"], s["type"], s["metadata"]
    ('encroachment', '侵占河道', 'realtime', False)
    """
    rules = report_rules(rules)
    return [
        {
            "service_code": code,
            "service_name": str(cat.get("label_zh", code)),
            "description": str(cat.get("description", cat.get("label_zh", code))),
            "metadata": bool(cat.get("attributes")),
            "type": "realtime",
            "keywords": ",".join(str(k) for k in cat.get("keywords", [])),
            "group": str(cat.get("domain", "")),
        }
        for code, cat in rules.categories.items()
    ]


def _attributes(code: str, rules: ReportRules) -> list[dict[str, Any]]:
    out = []
    for order, a in enumerate(rules.categories[code].get("attributes", []), start=1):
        values = a.get("values", [])
        out.append(
            {
                "variable": bool(a.get("variable", True)),
                "code": str(a["code"]),
                "datatype": str(a.get("datatype", "string")),
                "required": bool(a.get("required", False)),
                "datatype_description": str(a.get("datatype_description", "")),
                "order": int(a.get("order", order)),
                "description": str(a.get("description", a["code"])),
                "values": [{"key": str(v["key"]), "name": str(v["name"])} for v in values],
            }
        )
    return out


def _known(code: str, rules: ReportRules) -> None:
    if code not in rules.categories:
        raise GeoReportError(
            f"unknown service_code {code!r}; known: {', '.join(rules.categories)}.",
            status=404,
        )


def service_definition(code: str, rules: ReportRules | str | Path | None = None) -> dict[str, Any]:
    """The attributes of a service (category): its ``attributes`` table in the rules,
    e.g. ``[[categories.street_light.attributes]]`` with ``code``, ``datatype``,
    ``required``, ``description`` and ``values`` (``key``/``name``).

    Examples
    --------
    >>> service_definition("street_light")
    {'service_code': 'street_light', 'attributes': []}
    >>> service_definition("ufo")
    Traceback (most recent call last):
    ...
    gridkit.ops.georeport.GeoReportError: unknown service_code 'ufo'; known: ...
    """
    rules = report_rules(rules)
    _known(code, rules)
    return {"service_code": code, "attributes": _attributes(code, rules)}


def check_attributes(
    code: str, values: Mapping[str, Sequence[str]], rules: ReportRules | str | Path | None = None
) -> str | None:
    """The ``attribute[...]`` values of a request checked against the service
    definition: required ones present, list values among the keys, numbers numeric.
    Returns them as JSON text (None when there are none).

    Examples
    --------
    >>> check_attributes("street_light", {})
    >>> check_attributes("street_light", {"pole": ["A12"]})
    Traceback (most recent call last):
    ...
    gridkit.ops.georeport.GeoReportError: service street_light has no attribute 'pole'.
    """
    rules = report_rules(rules)
    _known(code, rules)
    defs = {a["code"]: a for a in _attributes(code, rules)}
    for name in values:
        if name not in defs:
            raise GeoReportError(f"service {code} has no attribute {name!r}.")
    for name, a in defs.items():
        got = list(values.get(name, []))
        if a["required"] and not any(v.strip() for v in got):
            raise GeoReportError(f"attribute[{name}] is required for service {code}.")
        keys = {v["key"] for v in a["values"]}
        if a["datatype"] in ("singlevaluelist", "multivaluelist") and any(
            v not in keys for v in got
        ):
            raise GeoReportError(
                f"attribute[{name}] must be one of {', '.join(sorted(keys))}.",
            )
        if a["datatype"] == "singlevaluelist" and len(got) > 1:
            raise GeoReportError(f"attribute[{name}] takes one value.")
        if a["datatype"] == "number" and got and pd.isna(pd.to_numeric(got[0], errors="coerce")):
            raise GeoReportError(f"attribute[{name}] must be a number.")
    present = {
        k: (v if defs[k]["datatype"] == "multivaluelist" else v[0]) for k, v in values.items() if v
    }
    return json.dumps(present, ensure_ascii=False) if present else None


def take_in_request(
    fields: Mapping[str, Any],
    point: shapely.Point | None,
    *,
    reports: pd.DataFrame | None = None,
    units: gpd.GeoDataFrame | None = None,
    admin_areas: pd.DataFrame | None = None,
    communities: pd.DataFrame | None = None,
    buildings: pd.DataFrame | None = None,
    rules: ReportRules | str | Path | None = None,
    at: object = None,
    min_confidence: float = 0.7,
    actor_id: str | None = None,
) -> TicketIntake:
    """One POSTed request taken in (:func:`gridkit.ops.hotline.take_in_requests`):
    ``fields`` are report columns (``category``, ``source``, ``description``,
    ``address``, ``media_url``, ``attributes``, ``reporter_contact``); ``point`` the
    placed WGS84 point, or None for an address only (placed by the gazetteer of the
    layers given).

    Raises
    ------
    GeoReportError
        An address the gazetteer cannot place surely (the reporter should give
        lat/long).

    Examples
    --------
    >>> from shapely import Point
    >>> from gridkit.synth.ops import grid_units
    >>> got = take_in_request({"category": "street_light", "source": "resident"},
    ...                       Point(113.1025, 27.8025), units=grid_units(2, 2),
    ...                       at="2026-05-01T08:00Z")
    >>> got.reports[["report_id", "status"]].values.tolist()
    [['R0000001', 'collected']]
    """
    frame = gpd.GeoDataFrame({k: [v] for k, v in fields.items()}, geometry=[point], crs=WGS84)
    got = take_in_requests(
        frame,
        reports=reports,
        units=units,
        admin_areas=admin_areas,
        communities=communities,
        buildings=buildings,
        rules=rules,
        at=at,
        min_confidence=min_confidence,
        actor_id=actor_id,
    )
    if len(got.review):
        row = got.review.iloc[0]
        if row["reason"] == "category":
            raise GeoReportError(f"unknown service_code {fields.get('category')!r}.", status=404)
        guess = "" if pd.isna(row["candidate"]) else f" (closest: {row['candidate']})"
        raise GeoReportError(
            f"address_string {fields.get('address')!r} could not be placed surely{guess}; "
            "send lat and long.",
        )
    return got


def _iso(t: pd.Series) -> pd.Series:
    """W3C times with their offset (Beijing time, +08:00); None where missing."""
    text = utc_series(t).dt.tz_convert(LOCAL_TZ).dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    text = text.str.slice(0, -2) + ":" + text.str.slice(-2)
    return text.astype(object).where(t.notna().to_numpy(), None)


def select_requests(
    reports: pd.DataFrame,
    *,
    ids: Sequence[str] | None = None,
    service_codes: Sequence[str] | None = None,
    start: object = None,
    end: object = None,
    status: Sequence[str] | None = None,
    public: bool = True,
    now: object = None,
) -> pd.DataFrame:
    """The reports a GET requests asks for (GeoReport's rules): by ``ids`` (any stage,
    the rest of the filters ignored), else requested in ``[start, end)`` (default the
    last 90 days; at most 90 days), of the ``service_codes`` and ``status``
    (open/closed); newest first, at most 1000. ``public`` lists only moderated cases
    of the public sources (residents, hotline, media).

    Examples
    --------
    >>> import pandas as pd
    >>> reports = pd.DataFrame({"report_id": ["R1", "R2"], "category": ["sewage"] * 2,
    ...     "source": ["resident"] * 2, "status": ["collected", "handling"],
    ...     "reported_at": pd.to_datetime(["2026-05-01", "2026-05-02"], utc=True)})
    >>> select_requests(reports, now="2026-05-10")["report_id"].tolist()
    ['R2']
    >>> select_requests(reports, ids=["R1"])["report_id"].tolist()
    ['R1']
    >>> select_requests(reports, start="2026-01-01", end="2026-05-01")
    Traceback (most recent call last):
    ...
    gridkit.ops.georeport.GeoReportError: start_date to end_date spans 120 days; at most 90.
    """
    if ids is not None:
        return reports[reports["report_id"].astype(str).isin(list(ids)).to_numpy()].head(
            MAX_RESULTS
        )
    bad = set(status or ()) - {"open", "closed"}
    if bad:
        raise GeoReportError(f"status must be open or closed, not {', '.join(sorted(bad))}.")
    t_end = utc_scalar(end, name="end_date") if end is not None else None
    t_start = utc_scalar(start, name="start_date") if start is not None else None
    if t_end is None:
        t_end = (t_start + pd.Timedelta(days=MAX_DAYS)) if t_start is not None else utc_scalar(now)
    if t_start is None:
        t_start = t_end - pd.Timedelta(days=MAX_DAYS)
    if t_end - t_start > pd.Timedelta(days=MAX_DAYS):
        days = (t_end - t_start).days
        raise GeoReportError(f"start_date to end_date spans {days} days; at most {MAX_DAYS}.")
    at = utc_series(reports["reported_at"])
    keep = ((at >= t_start) & (at < t_end)).to_numpy(dtype=bool, na_value=False).copy()
    stage = reports["status"].astype(str)
    if service_codes:
        keep &= reports["category"].isin(list(service_codes)).to_numpy()
    if status:
        open_closed = stage.map(lambda s: STATUS.get(s, ("open", ""))[0])
        keep &= open_closed.isin(list(status)).to_numpy()
    if public:
        keep &= ~stage.isin(UNPUBLISHED).to_numpy()
        keep &= reports["source"].isin(PUBLIC_SOURCES).to_numpy()
        if "duplicate_of" in reports.columns:
            keep &= reports["duplicate_of"].isna().to_numpy()
    newest = at[keep].sort_values(ascending=False, kind="stable").index[:MAX_RESULTS]
    return reports.loc[newest]


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    if name in df.columns:
        return df[name].astype(object).where(df[name].notna(), None)
    return pd.Series(None, index=df.index, dtype=object)


def request_rows(
    reports: pd.DataFrame,
    *,
    events: pd.DataFrame | None = None,
    departments: pd.DataFrame | None = None,
    rules: ReportRules | str | Path | None = None,
    withhold_unpublished: bool = True,
) -> list[dict[str, Any]]:
    """GeoReport request objects of ``reports`` (a selection), public fields only.

    Parameters
    ----------
    reports
        The reports to show.
    events
        ``report_events``: ``updated_datetime`` is the last event's time.
    departments
        ``agency_responsible`` is the lead department's name.
    rules
        For the service names.
    withhold_unpublished
        Requests awaiting moderation or rejected show no description, media or
        address (shown by id); False for the reporter's own view (by token).

    Returns
    -------
    list of dict
        ``service_request_id``, ``status``, ``status_notes``, ``service_name``,
        ``service_code``, ``description``, ``agency_responsible``, ``service_notice``,
        ``requested_datetime``, ``updated_datetime``, ``expected_datetime``,
        ``address``, ``address_id``, ``zipcode``, ``lat``, ``long``, ``media_url``.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd
    >>> from shapely import Point
    >>> reports = gpd.GeoDataFrame({"report_id": ["R1"], "category": ["sewage"],
    ...     "source": ["resident"], "status": ["collected"], "description": ["井盖冒水"],
    ...     "reporter_contact": ["13900000000"],
    ...     "reported_at": pd.to_datetime(["2026-05-01T00:00Z"])},
    ...     geometry=[Point(113.1, 27.8)], crs=4326)
    >>> row = request_rows(reports)[0]
    >>> row["status"], row["status_notes"][:11], row["description"], row["requested_datetime"]
    ('open', '已收到, 等待中心立案', None, '2026-05-01T08:00:00+08:00')
    >>> request_rows(reports, withhold_unpublished=False)[0]["description"]
    '井盖冒水'
    >>> "13900000000" in str(request_rows(reports))
    False
    """
    rules = report_rules(rules)
    if not len(reports):
        return []
    stage = reports["status"].astype(str)
    mapped = stage.map(lambda s: STATUS.get(s, ("open", s)))
    rid = reports["report_id"].astype(str)
    names = {k: str(v.get("label_zh", k)) for k, v in rules.categories.items()}
    agency = pd.Series(None, index=reports.index, dtype=object)
    if departments is not None and "lead_department_id" in reports.columns:
        by_id = pd.Series(departments["name"].to_numpy(), index=departments["department_id"])
        agency = reports["lead_department_id"].map(by_id).astype(object)
        agency = agency.where(agency.notna(), None)
    updated = pd.Series(pd.NaT, index=reports.index)
    if events is not None and len(events):
        mine = events[events["report_id"].astype(str).isin(set(rid)).to_numpy()]
        last = utc_series(mine["at"]).groupby(mine["report_id"].astype(str).to_numpy()).max()
        updated = rid.map(last)
    requested = reports["reported_at"]
    updated = updated.where(updated.notna(), requested)
    lat = lon = pd.Series(None, index=reports.index, dtype=object)
    if isinstance(reports, gpd.GeoDataFrame):
        geoms = np.asarray(
            reports.to_crs(WGS84).geometry.array if reports.crs else reports.geometry.array
        )
        ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        x = np.where(ok, shapely.get_x(geoms), np.nan)
        y = np.where(ok, shapely.get_y(geoms), np.nan)
        lon = pd.Series(np.round(x, 6), index=reports.index).astype(object).where(ok, None)
        lat = pd.Series(np.round(y, 6), index=reports.index).astype(object).where(ok, None)
    hidden = (
        stage.isin(UNPUBLISHED).to_numpy() if withhold_unpublished else np.zeros(len(reports), bool)
    )

    def shown(s: pd.Series) -> pd.Series:
        return s.where(~hidden, None)

    out = pd.DataFrame(
        {
            "service_request_id": rid.to_numpy(dtype=object),
            "status": mapped.map(lambda m: m[0]).to_numpy(dtype=object),
            "status_notes": mapped.map(lambda m: m[1]).to_numpy(dtype=object),
            "service_name": reports["category"].map(names).to_numpy(dtype=object),
            "service_code": reports["category"].astype(str).to_numpy(dtype=object),
            "description": shown(_col(reports, "description")).to_numpy(dtype=object),
            "agency_responsible": agency.to_numpy(dtype=object),
            "service_notice": None,
            "requested_datetime": _iso(requested).to_numpy(dtype=object),
            "updated_datetime": _iso(updated).to_numpy(dtype=object),
            "expected_datetime": _iso(_col(reports, "due_at")).to_numpy(dtype=object),
            "address": shown(_col(reports, "address")).to_numpy(dtype=object),
            "address_id": None,
            "zipcode": None,
            "lat": lat.to_numpy(dtype=object),
            "long": lon.to_numpy(dtype=object),
            "media_url": shown(_col(reports, "media_url")).to_numpy(dtype=object),
        }
    )
    return out.to_dict("records")
