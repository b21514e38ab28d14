"""The field app (issue 23): a small offline-first web app at ``/app`` for grid workers,
building heads and river chiefs on their phones.

The shell (HTML, our own JS and CSS, the service worker, the web app manifest) comes
from ``api/static/app/``; Leaflet for the small map from the XStatic package the map
pages use (``/assets/...``). Three JSON routes give the app what the rest of the API
does not: who the key is and the vocabularies (``/app/api/me``), the unit outlines
around the worker, cached on the phone (``/app/api/area``), and the caller's cases
with the actions they may take (``/app/api/cases``). Reports, photos, patrols and
case actions go to the API's own routes (``POST /reports``, ``/reports/{id}/evidence``,
``/patrols``, ``/reports/{id}/actions``), each with an ``Idempotency-Key``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query
from starlette.responses import FileResponse, RedirectResponse, Response

from api.auth import Caller, Principal, require
from api.errors import ApiError
from api.models import PatrolIn, ReportProps
from api.responses import GEOJSON, JSON, json_response
from api.service import Service, Svc
from gridkit import codes
from gridkit.geojson import to_geojson
from gridkit.ops.access import case_roles
from gridkit.ops.patrols import load_patrol_rules
from gridkit.ops.reports import report_rules

router = APIRouter(tags=["field app"])

STATIC = Path(__file__).parent / "static" / "app"
#: the files of the shell, by the name they are served at under /app/, with their type
SHELL = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "sw.js": "text/javascript; charset=utf-8",
    "manifest.webmanifest": "application/manifest+json",
    "icon.svg": "image/svg+xml",
}
#: the service worker's own policy: it fetches from this app only (the default for
#: non-HTML answers, ``sandbox``, would stop it)
SW_CSP = "default-src 'self'; object-src 'none'; base-uri 'none'"
#: most unit outlines sent to a phone (its own units and their admin areas')
AREA_MAX_UNITS = 2000
#: decimals of the outlines on the phone: ~1 m, a third of the bytes of the default
AREA_PRECISION = 5
#: stages where a case is finished
FINISHED = frozenset({"closed", "rejected"})
#: actions a case may be offered (CASES: POST /reports/{id}/actions)
ACTIONS = (
    "open",
    "reject",
    "dispatch",
    "redispatch",
    "accept",
    "return",
    "extend",
    "pause",
    "resume",
    "report_back",
    "verify",
    "rework",
    "close",
    "reopen",
)
#: stages a dispatcher or supervisor acts on (their cases even when no one is named)
CENTRE_STAGES = frozenset({"collected", "opened", "returned", "verified", "reported"})


def _access() -> Any:
    """``gridkit.ops.access`` (issue 21, the case model) once it is there, else None:
    until then cases are listed without actions."""
    try:
        return importlib.import_module("gridkit.ops.access")
    except ImportError:
        return None


@router.get("/app", include_in_schema=False)
def app_root() -> Response:
    return RedirectResponse("/app/", status_code=308)


@router.get("/app/", include_in_schema=False)
def app_index() -> Response:
    return _shell_file("index.html")


@router.get("/app/api/me", summary="The key's holder and the vocabularies the app shows")
def me(caller: Caller, service: Svc) -> Response:
    """Who the key belongs to (name, role, worker, scope), the report categories
    (Chinese labels, domain, evidence needed) and sources, and the patrol checklist
    where the rules have one. The app signs in with this and keeps it offline."""
    require(caller, "worker", "supervisor", "admin", "dispatcher", "department")
    rules = report_rules()
    categories = [
        {
            "key": key,
            "label_zh": str(spec.get("label_zh", key)),
            "label_en": str(spec.get("label_en", key.replace("_", " ").capitalize())),
            "domain": str(spec.get("domain", "")),
            "evidence": list(rules.evidence(key)),
        }
        for key, spec in rules.categories.items()
    ]
    checklist = getattr(load_patrol_rules(), "checklist", None) or []
    body = {
        "name": caller.name,
        "role": caller.role,
        "worker_id": caller.worker_id,
        "scope": caller.scope,
        "title": service.settings.title,
        "categories": categories,
        "sources": dict(rules.sources),
        "checklist": [_plain(item) for item in checklist],
        # what this server's request bodies take (fields other issues add as they land)
        "accepts": {
            "patrol_checklist": "checklist" in PatrolIn.model_fields,
            "patrol_mode": "mode" in PatrolIn.model_fields,
            "report_patrol": "patrol_id" in ReportProps.model_fields,
        },
        "case_actions": _access() is not None,
    }
    return json_response(body, media_type=JSON, **{"Cache-Control": "no-store"})


def _plain(item: object) -> dict[str, Any]:
    """A checklist item as JSON (a mapping or a dataclass of the rules)."""
    if isinstance(item, dict):
        return {str(k): v for k, v in item.items()}
    return {k: v for k, v in vars(item).items() if not k.startswith("_")}


@router.get(
    "/app/api/area",
    summary="The unit outlines around the caller, for the app's offline map",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}},
)
def area(caller: Caller, service: Svc) -> Response:
    """The caller's own units (``mine: true``) and the others of their admin areas; a
    key with no worker gets the units of its scope. At most 2,000 outlines, to ~1 m."""
    require(caller, "worker", "supervisor", "admin", "dispatcher", "department")
    units = service.layer("units")
    if units is None or units.empty:
        return json_response(b'{"type":"FeatureCollection","features":[]}')
    mine = _own_units(service, caller)
    in_scope = codes.in_scope(units["admin_code"], caller.scope) if caller.scope else True
    own = units["unit_id"].isin(mine)
    if mine:
        near = units["admin_code"].isin(units.loc[own, "admin_code"].unique())
        keep = (own | near) & in_scope
    else:
        keep = pd.Series(in_scope, index=units.index) & True
    picked = units.loc[keep, ["unit_id", "kind", "admin_code", units.geometry.name]]
    picked = picked.assign(mine=picked["unit_id"].isin(mine))
    picked = picked.sort_values("mine", ascending=False, kind="stable").head(AREA_MAX_UNITS)
    body = to_geojson(picked, id_col="unit_id", precision=AREA_PRECISION)
    return Response(body, media_type=GEOJSON, headers={"Cache-Control": "private, no-cache"})


def _own_units(service: Service, caller: Principal) -> list[str]:
    """The units the caller's worker is assigned to now."""
    assignments = service.layer("assignments")
    if not caller.worker_id or assignments is None:
        return []
    rows = assignments[assignments["worker_id"].astype(str) == caller.worker_id]
    now = pd.Timestamp.now(tz="UTC")
    for col, keep in (("valid_from", lambda t: t <= now), ("valid_to", lambda t: t > now)):
        if col in rows.columns:
            t = pd.to_datetime(rows[col], utc=True, errors="coerce")
            rows = rows[t.isna() | keep(t)]
    return rows["unit_id"].astype(str).unique().tolist()


CaseLimit = Annotated[int, Query(ge=1, le=500, description="Most cases listed.")]


@router.get("/app/api/cases", summary="The caller's open cases, overdue first")
def cases(caller: Caller, service: Svc, limit: CaseLimit = 200) -> Response:
    """Open cases that are the caller's: assigned to them, reported by them, of their
    departments, or (dispatchers, supervisors) waiting on the centre in their scope.
    Overdue first, then by deadline; each with the actions the caller may take now
    (``POST /reports/{id}/actions``)."""
    require(caller, "worker", "supervisor", "admin", "dispatcher", "department")
    reports = service.layer("reports")
    if reports is None or reports.empty:
        return json_response({"cases": [], "matched": 0}, media_type=JSON)
    status = reports["status"].astype(str)
    in_scope = codes.in_scope(reports["admin_code"], caller.scope) if caller.scope else True
    open_ = ~status.isin(FINISHED) & in_scope
    picked = reports[open_ & _mine(service, caller, reports, status)]
    now = pd.Timestamp.now(tz="UTC")
    due = _times(picked, "due_at")
    paused = _times(picked, "paused_at").notna()
    overdue = due.notna() & (due < now) & ~paused
    order = pd.DataFrame({"late": ~overdue, "due": due, "at": _times(picked, "reported_at")})
    order = order.sort_values(["late", "due", "at"], ascending=[True, True, False])
    rows = picked.loc[order.index[:limit]]
    listed = _listed(rows, overdue.loc[rows.index], caller)
    return json_response(
        {"cases": listed, "matched": len(picked), "now": now.isoformat()}, media_type=JSON
    )


def _times(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df.columns:
        return pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns, UTC]")
    return pd.to_datetime(df[col], utc=True, errors="coerce")


def _mine(service: Service, caller: Principal, reports: pd.DataFrame, status: pd.Series):
    """Which reports are the caller's (vectorised over the layer), by the roles their
    appointments give them (:func:`gridkit.ops.access.case_roles`): their department's
    cases, the cases of the units they work (to verify), those waiting on the centre
    where they dispatch, and those they reported."""
    me = caller.worker_id
    person = caller.person
    roles = case_roles(reports, person)
    hit = roles["department"] | (roles["dispatcher"] & status.isin(CENTRE_STAGES))
    units = person.units | person.section_units
    if units and "unit_id" in reports.columns:
        hit |= reports["unit_id"].astype("string").isin(list(units)).fillna(False)
    if me and "assignee_id" in reports.columns:
        hit |= (reports["assignee_id"].astype("string") == me).fillna(False)
    events = service.layer("report_events") if me else None
    if events is not None and "actor_id" in events.columns:
        collected = events["from_status"].isna() & (events["actor_id"].astype(str) == me)
        hit |= reports["report_id"].isin(events.loc[collected, "report_id"])
    return hit.astype(bool)


def _listed(rows: pd.DataFrame, overdue: pd.Series, caller: Principal) -> list[dict]:
    """Cases as the app shows them (no reporter contact: the phone is not the place)."""
    access = _access()
    person = getattr(caller, "person", None)
    cols = [
        c
        for c in (
            "report_id",
            "category",
            "description",
            "status",
            "unit_id",
            "due_at",
            "reported_at",
            "paused_at",
            "lead_department_id",
            "assignee_id",
            "returns",
            "extensions",
            "reworks",
        )
        if c in rows.columns
    ]
    plain = pd.DataFrame(rows[cols]).astype(object)
    plain = plain.where(plain.notna(), None)
    geom = rows.geometry if hasattr(rows, "geometry") else None
    out = []
    # one dict per listed case (at most `limit`): the answer itself, not a hot loop
    for i, (idx, rec) in enumerate(plain.iterrows()):
        item = {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in rec.items()}
        point = None if geom is None else geom.iloc[i]
        if point is not None and not point.is_empty:
            item["lon"], item["lat"] = round(point.x, 6), round(point.y, 6)
        item["overdue"] = bool(overdue.loc[idx])
        item["actions"] = (
            [a for a in ACTIONS if access.may(person, a, rows.loc[idx])]
            if access is not None and person is not None
            else []
        )
        out.append(item)
    return out


@router.get("/app/{name}", include_in_schema=False)
def app_file(name: str) -> Response:
    return _shell_file(name)


def _shell_file(name: str) -> Response:
    if name not in SHELL:
        raise ApiError(404, f"No file {name!r} in the field app.")
    headers = {"Cache-Control": "no-cache"}  # revalidated; the service worker keeps a copy
    if name == "sw.js":
        headers.update({"Content-Security-Policy": SW_CSP, "Service-Worker-Allowed": "/"})
    return FileResponse(STATIC / name, media_type=SHELL[name], headers=headers)
