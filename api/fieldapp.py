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

import functools
import gzip
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from api import cases
from api.auth import Caller, Principal, require
from api.errors import ApiError
from api.models import PatrolIn, ReportProps
from api.responses import GEOJSON, JSON, json_response
from api.service import Service, Svc
from gridkit import codes
from gridkit.geojson import to_geojson
from gridkit.ops.access import case_roles, may
from gridkit.ops.cases import overdue
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


@router.get("/app", include_in_schema=False)
def app_root() -> Response:
    return RedirectResponse("/app/", status_code=308)


@router.get("/app/", include_in_schema=False)
def app_index(request: Request) -> Response:
    return _shell_file("index.html", request)


@router.get("/app/api/me", summary="The key's holder and the vocabularies the app shows")
def me(caller: Caller, service: Svc) -> Response:
    """Who the key belongs to (name, role, worker, scope), the report categories
    (Chinese labels, domain, evidence needed) and sources, and the patrol checklist
    where the rules have one. The app signs in with this and keeps it offline."""
    require(caller, *cases.ACTING)
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
    # the 看/查/交 checklist is a river chief's (their sections), not a grid worker's
    person = caller.person
    chief = bool(person.sections or person.section_units or person.admin)
    checklist = load_patrol_rules().checklist if chief else ()
    body = {
        "name": caller.name,
        "role": caller.role,
        "worker_id": caller.worker_id,
        "scope": caller.scope,
        "title": service.settings.title,
        "categories": categories,
        "sources": dict(rules.sources),
        "checklist": [dict(item) for item in checklist],
        # what this server's request bodies take (fields other issues add as they land)
        "accepts": {
            "patrol_checklist": "checklist" in PatrolIn.model_fields,
            "patrol_mode": "mode" in PatrolIn.model_fields,
            "report_patrol": "patrol_id" in ReportProps.model_fields,
        },
    }
    return json_response(body, media_type=JSON, **{"Cache-Control": "no-store"})


@router.get(
    "/app/api/area",
    summary="The unit outlines around the caller, for the app's offline map",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}},
)
def area(caller: Caller, service: Svc) -> Response:
    """The caller's own units (``mine: true``) and the others of their admin areas; a
    key with no worker gets the units of its scope. At most 2,000 outlines, to ~1 m."""
    require(caller, *cases.ACTING)
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
def my_cases(caller: Caller, service: Svc, limit: CaseLimit = 200) -> Response:
    """Open cases that are the caller's: where their appointments give them a role
    (grid worker of the unit who verifies, department staff, dispatcher, supervisor;
    :func:`gridkit.ops.access.case_roles`) or that they reported. Overdue first, then
    by deadline; each with the steps the caller may take now
    (``POST /reports/{id}/actions``)."""
    require(caller, *cases.ACTING)
    reports = service.layer("reports")
    if reports is None or reports.empty:
        return json_response({"cases": [], "matched": 0}, media_type=JSON)
    rules = report_rules()
    reports = reports.reset_index(drop=True)
    is_open = reports["status"].astype("string").isin(list(rules.open_statuses))
    mine = _mine(caller, reports) | _reported_by(service, caller, reports)
    keep = is_open.fillna(False).to_numpy(dtype=bool) & mine.to_numpy(dtype=bool)
    keep &= cases.sees_cases(reports, caller)
    picked = reports[keep]
    late = overdue(picked, rules=rules)
    due = pd.to_datetime(picked["due_at"], utc=True, errors="coerce")
    order = pd.DataFrame({"late": ~late, "due": due, "id": picked["report_id"].astype(str)})
    order = order.sort_values(["late", "due", "id"], na_position="last")
    rows = picked.loc[order.index[:limit]]
    body = {
        "cases": _listed(rows, late.loc[rows.index], caller, rules),
        "matched": len(picked),
        "now": pd.Timestamp.now(tz="UTC").isoformat(),
    }
    return json_response(body, media_type=JSON, **{"Cache-Control": "no-store"})


#: stages where a case waits on the centre (dispatchers and supervisors act)
CENTRE_STAGES = ("collected", "opened", "returned", "verified")


def _mine(caller: Principal, reports: pd.DataFrame) -> pd.Series:
    """Which cases the caller's appointments make theirs (vectorised over the layer,
    :func:`gridkit.ops.access.case_roles`): their department's cases, the cases of the
    units they work or whose section they chair (they verify), the cases assigned to
    them, and where they dispatch or supervise, those waiting on the centre (not every
    open case of the area)."""
    person = caller.person
    roles = case_roles(reports, person)
    status = reports["status"].astype("string")
    hit = roles["department"] | (roles["dispatcher"] & status.isin(CENTRE_STAGES).fillna(False))
    units = person.units | person.section_units
    if units and "unit_id" in reports.columns:
        hit |= reports["unit_id"].astype("string").isin(list(units)).fillna(False)
    if caller.worker_id and "assignee_id" in reports.columns:
        hit |= reports["assignee_id"].astype("string").eq(caller.worker_id).fillna(False)
    return hit.astype(bool)


def _reported_by(service: Service, caller: Principal, reports: pd.DataFrame) -> pd.Series:
    """Which cases the caller reported (their ``collect`` event), aligned to ``reports``."""
    if not caller.worker_id:
        return pd.Series(False, index=reports.index)
    reporters = service.cached("app_reporters", ("report_events",), lambda: _reporters(service))
    return reports["report_id"].map(reporters).eq(caller.worker_id).fillna(False).astype(bool)


def _reporters(service: Service) -> pd.Series:
    """Who reported each case (the actor of its intake event), by report id; kept per
    version of the events (one pass over them, not one per request)."""
    events = service.layer("report_events")
    if events is None or "actor_id" not in events.columns:
        return pd.Series(dtype="string")
    intake = events["from_status"].isna()
    if "action" in events.columns:
        intake |= events["action"].astype("string").eq("collect").fillna(False)
    first = events.loc[intake, ["report_id", "actor_id"]].drop_duplicates("report_id")
    return first.set_index("report_id")["actor_id"].astype("string")


#: columns of a case the app shows (no reporter contact: the phone is not the place)
CASE_COLUMNS = (
    "report_id", "category", "description", "status", "unit_id", "admin_code", "due_at",
    "reported_at", "paused_at", "lead_department_id", "assignee_id", "returns",
    "extensions", "reworks", "escalation_level",
)  # fmt: skip


def _listed(rows: pd.DataFrame, late: pd.Series, caller: Principal, rules: Any) -> list[dict]:
    """Cases as the app shows them, each with the steps the caller may take now."""
    plain = pd.DataFrame(rows[[c for c in CASE_COLUMNS if c in rows.columns]]).astype(object)
    plain = plain.where(plain.notna(), None)
    lon, lat = _coordinates(rows)
    steps = [a for a in rules.actions.values() if "system" not in a.by]
    out = []
    # one dict per listed case (at most `limit`, 500): the answer itself, not a hot path
    for i, (idx, rec) in enumerate(plain.iterrows()):
        item = {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in rec.items()}
        item["lon"], item["lat"] = lon[i], lat[i]
        item["overdue"] = bool(late.loc[idx])
        paused = item.get("paused_at") is not None
        item["actions"] = [
            {"action": a.name, "label_zh": a.label_zh, "reason": a.reason}
            for a in steps
            if item["status"] in a.from_
            and not (a.name == "pause" and paused)
            and not (a.name == "resume" and not paused)
            and may(caller.person, a.name, rec.to_dict()) is None
        ]
        out.append(item)
    return out


def _coordinates(rows: pd.DataFrame) -> tuple[list[float | None], list[float | None]]:
    """Longitude and latitude of each case's point (None without one), as stored."""
    geom = getattr(rows, "geometry", None)
    if geom is None:
        return [None] * len(rows), [None] * len(rows)

    def column(values: pd.Series) -> list[float | None]:
        rounded = values.round(6).astype(object)
        return rounded.where(rounded.notna(), None).tolist()

    return column(geom.x), column(geom.y)


@router.get("/app/{name}", include_in_schema=False)
def app_file(name: str, request: Request) -> Response:
    return _shell_file(name, request)


@functools.lru_cache(maxsize=len(SHELL))
def _shell_bytes(name: str) -> tuple[bytes, bytes]:
    """A file of the shell as sent, and gzipped (done once: the files do not change
    while serving). The page has its stylesheet inlined: on a slow network each request
    costs a round trip (~0.56 s on "slow 4G") and the page cannot paint before its CSS;
    app.css stays a file of its own to edit (no build step)."""
    data = (STATIC / name).read_bytes()
    if name == "index.html":
        css = (STATIC / "app.css").read_text(encoding="utf-8")
        link = '<link rel="stylesheet" href="/app/app.css">'
        data = data.decode("utf-8").replace(link, f"<style>\n{css}</style>").encode("utf-8")
    return data, gzip.compress(data, compresslevel=6, mtime=0)


def _shell_file(name: str, request: Request) -> Response:
    if name not in SHELL:
        raise ApiError(404, f"No file {name!r} in the field app.")
    # revalidated each start; the service worker keeps a copy for offline use
    headers = {"Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if name == "sw.js":
        headers.update({"Content-Security-Policy": SW_CSP, "Service-Worker-Allowed": "/"})
    raw, packed = _shell_bytes(name)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(packed, media_type=SHELL[name], headers=headers)
    return Response(raw, media_type=SHELL[name], headers=headers)
