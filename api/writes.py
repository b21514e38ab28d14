"""Reports from the field (交办 lifecycle): submit, move along, add photos.

Routes check form, roles and scope; the work is done by gridkit
(``gridkit.ops.intake``, ``gridkit.ops.reports``) through the report writer
(:mod:`api.writer`, which takes reports arriving together in one batch) and the
store. A request carrying an ``Idempotency-Key`` header creates nothing twice: the key
is written in the same transaction as the report it created.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api import cases, evidence
from api.audit import private_read
from api.auth import Caller, Principal, require
from api.errors import ApiError
from api.models import (
    EvidenceForm,
    EvidenceKindQuery,
    IdemKey,
    ReportFeature,
    ReportIn,
    ReportPatch,
)
from api.responses import GEOJSON, JSON, encode, feature_of, json_response
from api.service import Service, Svc
from api.writer import Submission, actor, fingerprint, scoped_key
from gridkit import codes
from gridkit.ops.access import roles_for
from gridkit.ops.cases import action_for
from gridkit.ops.intake import known_admin_codes
from gridkit.ops.reports import (
    AssignmentError,
    check_assignment,
    expired_contacts,
    normalise_reports,
    purge_contacts,
    report_rules,
)

log = logging.getLogger("gridkit.api")

#: days after which a finished case's reporter contact is removed (unset: kept)
RETENTION_ENV = "GRIDKIT_CONTACT_RETENTION_DAYS"
RETENTION_EVERY_S = 6 * 3600


def retention_days() -> float | None:
    """The retention setting (``GRIDKIT_CONTACT_RETENTION_DAYS``), None when unset."""
    text = os.environ.get(RETENTION_ENV, "").strip()
    if not text:
        return None
    try:
        days = float(text)
    except ValueError:
        raise ValueError(f"{RETENTION_ENV}={text!r} is not a number of days.") from None
    if days < 0:
        raise ValueError(f"{RETENTION_ENV}={text!r}: give 0 or more days.")
    return days


def apply_retention(service: Service, days: float, *, at: object = None) -> list[str]:
    """Remove the reporters' contacts of cases finished more than ``days`` ago
    (:func:`gridkit.ops.reports.purge_contacts`), each with its audit event in the same
    transaction; the report ids cleared."""
    with service.write_lock:
        reports = service.layer("reports")
        if reports is None or "reporter_contact" not in reports.columns:
            return []
        events = service.layer("report_events")
        if not expired_contacts(reports, days=days, events=events, at=at).any():
            return []
        change = purge_contacts(reports, days=days, events=events, at=at)
        for rid, ev in change.events.groupby("report_id", sort=False):
            service.store.update(
                "reports",
                "report_id",
                str(rid),
                {"reporter_contact": None},
                append={"report_events": ev},
            )
    cleared = change.events["report_id"].astype(str).tolist()
    log.info(
        "retention: removed reporter contacts of %d case(s) finished over %g days ago",
        len(cleared),
        days,
    )
    return cleared


async def _retention_run(service: Service, days: float) -> None:
    try:
        await run_in_threadpool(apply_retention, service, days)
    except Exception:  # a failed run is retried at the next one, never silently
        log.exception("retention run failed")


async def _retention_loop(service: Service, days: float) -> None:
    while True:
        await asyncio.sleep(RETENTION_EVERY_S)
        await _retention_run(service, days)


@contextlib.asynccontextmanager
async def _retention(app: Any) -> AsyncIterator[None]:
    """At startup and every few hours: the contact retention, when it is set."""
    days = retention_days()
    task = None
    if days is not None:
        await _retention_run(app.state.service, days)  # before the first request
        task = asyncio.create_task(_retention_loop(app.state.service, days))
    try:
        yield
    finally:
        if task is not None:
            task.cancel()


router = APIRouter(tags=["field"], lifespan=_retention)


@router.post(
    "/reports",
    status_code=201,
    summary="Submit a problem report",
    response_class=Response,
    responses={201: {"content": {GEOJSON: {}}}},
)
async def post_report(
    body: ReportIn | ReportFeature,
    caller: Caller,
    service: Svc,
    idempotency_key: IdemKey = None,
) -> Response:
    """Locate, de-duplicate and hand over a report; 201 with the report as a Feature.

    Reports arriving together are processed and committed together (group commit):
    the answer comes once the report is on disk.
    """
    require(caller, *cases.ACTING)
    if isinstance(body, ReportFeature):
        props = body.properties.model_dump()
        coords = body.geometry.coordinates if body.geometry else None
    else:
        props = body.model_dump()
        lon, lat = props.pop("lon"), props.pop("lat")
        if (lon is None) != (lat is None):
            raise ApiError(400, "Give both lon and lat, or neither (address-only reports).")
        coords = [lon, lat] if lon is not None else None
    crs = props.pop("crs")
    if coords is None and not (props.get("admin_code") or props.get("unit_id")):
        raise ApiError(
            400,
            "A report needs a point (lon/lat) or, for address-only "
            "reports, an admin_code or unit_id chosen by hand.",
        )
    _check_vocabulary(props)
    if coords is None:  # may read layers: off the event loop
        await run_in_threadpool(_check_places, service, props)
    point = None if coords is None else (coords[0], coords[1])
    sub = Submission(
        props,
        point,
        crs,
        caller,
        scoped_key(caller, idempotency_key),
        fingerprint(props, point, crs) if idempotency_key else None,
    )
    _, _, replay, piece = await service.reports.submit_async(sub)  # type: ignore[union-attr]
    content = encode(piece, caller, "reports")
    if replay:
        return json_response(content, 201, **{"Idempotent-Replay": "true"})
    return json_response(content, 201, Location=f"/collections/reports/items/{piece.id}")


def _check_vocabulary(props: dict[str, Any]) -> None:
    rules = report_rules()
    if props["category"] not in rules.categories:
        raise ApiError(
            400,
            f"Unknown report category {props['category']!r}; known: {', '.join(rules.categories)}.",
        )
    if props["source"] not in rules.sources:
        raise ApiError(
            400,
            f"Unknown report source {props['source']!r}; known: {', '.join(rules.sources)}.",
        )


def _check_places(service: Service, props: dict[str, Any]) -> None:
    """An address-only report's hand-chosen unit and admin area must exist."""
    units, known = _known_places(service)
    unit, code = props.get("unit_id"), props.get("admin_code")
    if unit and units is not None and unit not in units:
        raise ApiError(422, f"No unit {unit!r} in the grid; choose a unit_id of the units layer.")
    # a code padded with zeros to 12 digits (430202000000) names the same area
    if code and known is not None and codes.normalise(code) not in known:
        raise ApiError(
            422,
            f"No admin area {code!r}: choose a code of the admin areas or of a unit's "
            "community, district or city.",
        )


def _known_places(service: Service) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """Unit ids, and admin codes (of admin areas, and every level above a unit's own
    code), cached per layer version; None where the layer is missing."""

    def build() -> tuple[frozenset[str] | None, frozenset[str] | None]:
        units, admin = service.layer("units"), service.layer("admin_areas")
        ids = None if units is None else frozenset(units["unit_id"].dropna().astype(str))
        return ids, known_admin_codes(units, admin)

    return service.cached("known_places", ("units", "admin_areas"), build)


@router.patch(
    "/reports/{report_id}",
    summary="Move a report along its lifecycle",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}},
)
def patch_report(report_id: str, body: ReportPatch, caller: Caller, service: Svc) -> Response:
    """The case moved to ``status`` by the action that leads there (``POST
    /reports/{id}/actions`` names the action itself); a supervisor may set the assignee."""
    require(caller, *cases.ACTING)
    reports = service.layer("reports")
    current = cases.visible_case(reports, report_id, caller)
    status = str(normalise_reports(current)["status"].iloc[0])
    action = action_for(status, body.status)
    if body.assignee_id is not None:
        require(caller, "supervisor", "dispatcher", "admin")
        _check_assignee(service, reports, report_id, body.assignee_id, caller)
        if body.status == status:  # only the assignee changes
            with service.write_lock:
                service.store.update(
                    "reports", "report_id", report_id, {"assignee_id": body.assignee_id}
                )
            row = cases.visible_case(service.layer("reports"), report_id, caller)
            return json_response(feature_of(row, caller, "reports"))
    if action is None:
        nexts = ", ".join(report_rules().transitions.get(status, ())) or "none"
        raise ApiError(409, f"Report {report_id} is {status!r}; it may go to: {nexts}.")
    # the new assignee with the step, in its transaction: both or neither
    return cases.take_action(
        service,
        caller,
        report_id,
        action,
        note=body.note,
        evidence=body.evidence,
        assignee_id=body.assignee_id,
    )


def _check_assignee(
    service: Service, reports: pd.DataFrame, report_id: str, assignee: str, caller: Principal
) -> None:
    """422 for an assignee who does not exist or cannot hold the case, 403 for one the
    caller may not choose (:func:`gridkit.ops.reports.check_assignment`)."""
    try:
        check_assignment(
            reports,
            report_id,
            assignee,
            workers=service.layer("workers"),
            by_role=caller.role,
            by_worker=caller.worker_id,
            by_scope=caller.scope,
        )
    except AssignmentError as exc:
        raise ApiError(403 if exc.reason == "not_yours" else 422, exc.message) from None


def report_of(service: Service, report_id: str, caller: Principal) -> pd.DataFrame:
    """The report's row as ``caller`` may add or read its photos: 404 when it does not
    exist or they may not see it, 403 unless they hold a role for the case (its
    department, its unit's worker, a dispatcher or supervisor of its area), are its
    assignee or reported it."""
    current = cases.visible_case(service.layer("reports"), report_id, caller)
    if roles_for(caller.person, current.iloc[0].to_dict()):
        return current
    assignee = current["assignee_id"].iloc[0] if "assignee_id" in current else None
    if caller.worker_id and not pd.isna(assignee) and assignee == caller.worker_id:
        return current
    events = service.layer("report_events")
    if events is not None and len(events):
        first = events[(events["report_id"] == report_id).to_numpy(dtype=bool, na_value=False)]
        if len(first) and first["actor_id"].iloc[0] == actor(caller):
            return current  # who reported it adds their photos of the problem
    raise ApiError(
        403,
        "You hold no role for this case (its department, its unit's worker, "
        "a dispatcher or supervisor of its area) and did not report it.",
    )


@router.post(
    "/reports/{report_id}/evidence",
    status_code=201,
    summary="Upload a before/after photo",
    response_class=Response,
    responses={201: {"content": {JSON: {}}}},
)
async def post_evidence(
    report_id: str,
    caller: Caller,
    service: Svc,
    photo: Annotated[UploadFile, File(description="JPEG, PNG or WebP, as taken.")],
    form: Annotated[EvidenceForm, Form()],
    kind_query: EvidenceKindQuery = None,
    idempotency_key: IdemKey = None,
) -> Response:
    """Store a photo of the case; listed by ``GET /reports/{id}/evidence``, counted by
    the lifecycle (only received photos count). Sending the same photo again, or
    retrying with the same ``Idempotency-Key``, stores nothing twice.

    A phone that queued the report offline names it as ``key:<the report's
    Idempotency-Key>`` (its own key; the server's id is not known yet)."""
    require(caller, *cases.ACTING)
    if report_id.startswith("key:"):  # the caller's report sent with that key
        reports = await run_in_threadpool(service.layer, "reports")
        stored = scoped_key(caller, report_id[4:])
        keys = None if reports is None else reports.get("idempotency_key")
        hit = [] if keys is None else reports.loc[keys.astype(str) == stored, "report_id"]
        if not len(hit):
            raise ApiError(
                404,
                f"No report of yours was sent with Idempotency-Key {report_id[4:]!r}; "
                "send the report first, then its photos.",
            )
        report_id = str(hit.iloc[0])
    settings = service.settings
    data = await photo.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise ApiError(413, f"Photos are limited to {settings.max_upload_bytes:,} bytes.")
    if form.kind and kind_query and form.kind != kind_query:
        raise ApiError(400, f"kind is {form.kind!r} in the form but {kind_query!r} in the URL.")
    kind = form.kind or kind_query or "after"
    ext, media, width, height = await run_in_threadpool(evidence.checked_image, data)
    row = {
        "report_id": report_id,
        "name": hashlib.sha256(data).hexdigest()[:32] + ext,
        "kind": kind,
        "media_type": media,
        "bytes": len(data),
        "width": width,
        "height": height,
        "uploaded_at": pd.Timestamp.now(tz="UTC"),
        "uploaded_by": actor(caller),
        "taken_at": None if form.taken_at is None else pd.Timestamp(form.taken_at),
        "lon": form.lon if form.lon is not None else float("nan"),
        "lat": form.lat if form.lat is not None else float("nan"),
        "idempotency_key": scoped_key(caller, idempotency_key),
    }
    stored, replay = await run_in_threadpool(_store_evidence, service, caller, row, data)
    body = {**evidence.listed(stored)[0], "evidence": f"{kind}:{stored['name'].iloc[0]}"}
    headers = {"Idempotent-Replay": "true"} if replay else {}
    return json_response(body, 201, media_type=JSON, **headers)


def _store_evidence(
    service: Service, caller: Principal, row: dict[str, Any], data: bytes
) -> tuple[pd.DataFrame, bool]:
    """Write the photo and its row (once): the row as stored, and whether it was there."""
    with service.write_lock:
        report_of(service, row["report_id"], caller)
        mine = evidence.of_report(service.layer(evidence.TABLE), row["report_id"])
        key = row["idempotency_key"]
        if key is not None:
            seen = mine[mine["idempotency_key"].astype(str) == key]
            if len(seen) and seen["name"].iloc[0] != row["name"]:
                raise ApiError(
                    422,
                    f"Idempotency-Key {key.split('/', 1)[1]!r} was used before for another "
                    "photo; use a new key for a new photo.",
                )
            if len(seen):
                return seen.iloc[[0]], True
        same = mine[(mine["name"] == row["name"]) & (mine["kind"] == row["kind"])]
        if len(same):
            return same.iloc[[0]], True
        where = evidence.folder(service.settings.evidence_root(), row["report_id"])
        where.mkdir(parents=True, exist_ok=True)
        (where / row["name"]).write_bytes(data)  # before its row: a listed file exists
        typed = evidence.frame(row)
        service.store.append(evidence.TABLE, typed)
        return typed, False


@router.get(
    "/reports/{report_id}/evidence",
    summary="The photos received for a report",
    response_class=Response,
    responses={200: {"content": {JSON: {}}}},
)
def list_evidence(report_id: str, caller: Caller, service: Svc) -> Response:
    """Every photo received for the case (kind, when and where taken, who sent it),
    oldest first; scoped as the report."""
    require(caller, *cases.ACTING)
    report_of(service, report_id, caller)
    rows = evidence.of_report(service.layer(evidence.TABLE), report_id)
    items = evidence.listed(rows)
    for item in items:
        item["href"] = f"/reports/{report_id}/evidence/{item['name']}"
    return json_response({"report_id": report_id, "evidence": items}, media_type=JSON)


@router.get(
    "/reports/{report_id}/evidence/{name}",
    summary="One photo of a report",
    response_class=Response,
    responses={200: {"content": {m: {} for m in evidence.MEDIA_TYPES.values()}}},
)
def get_evidence(
    report_id: str, name: str, caller: Caller, service: Svc, request: Request
) -> Response:
    """The photo itself, as received; scoped as the report."""
    require(caller, *cases.ACTING)
    report_of(service, report_id, caller)
    rows = evidence.of_report(service.layer(evidence.TABLE), report_id)
    if not evidence.NAME.match(name) or name not in set(rows["name"]):
        raise ApiError(404, f"No photo {name!r} for report {report_id!r}.")
    path = evidence.folder(service.settings.evidence_root(), report_id) / name
    if not path.is_file():
        raise ApiError(404, f"The photo {name!r} of report {report_id!r} is missing on disk.")
    media = evidence.MEDIA_TYPES["." + name.rsplit(".", 1)[1]]
    private_read(service, caller, evidence.TABLE, [f"{report_id}/{name}"], str(request.url.path))
    return Response(
        path.read_bytes(),
        media_type=media,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"},
    )
