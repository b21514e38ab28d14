"""Reports from the field (交办 lifecycle): submit, move along, add photos.

Routes check form, roles and scope; the work is done by gridkit
(``gridkit.ops.intake``, ``gridkit.ops.reports``) through the report writer
(:mod:`api.writer`, which takes reports arriving together in one batch) and the
store. A request carrying an ``Idempotency-Key`` header creates nothing twice: the key
is written in the same transaction as the report it created.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, File, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.auth import Caller, Principal, require
from api.errors import ApiError
from api.models import IdemKey, ReportFeature, ReportIn, ReportPatch
from api.responses import GEOJSON, JSON, encode, feature_of, json_response
from api.service import Service, Svc
from api.writer import Submission, actor, fingerprint, scoped_key
from gridkit import codes
from gridkit.ops.intake import known_admin_codes
from gridkit.ops.reports import report_rules, transition

router = APIRouter(tags=["field"])


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
    require(caller, "worker", "supervisor", "admin")
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
    _, _, replay, piece = await asyncio.wrap_future(service.reports.submit(sub))  # type: ignore[union-attr]
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
    require(caller, "worker", "supervisor", "admin")
    store = service.store
    with service.write_lock:
        reports = service.layer("reports")
        current = report_of(reports, report_id, caller)
        if caller.role == "worker" and body.status not in ("in_progress", "resolved"):
            raise ApiError(
                403,
                f"Workers may set in_progress or resolved, not "
                f"{body.status}; a supervisor verifies, returns or closes.",
            )
        change = transition(
            reports,
            report_id,
            body.status,
            actor_id=actor(caller),
            note=body.note,
            evidence=body.evidence,
            assignee_id=body.assignee_id,
        )
        after = change.reports[change.reports["report_id"] == report_id]
        values = {}
        for col in after.columns:
            if col == after.geometry.name:
                continue
            new, old = after[col].iloc[0], current[col].iloc[0] if col in current else None
            if _changed(new, old):
                values[col] = new
        # the change and its events: one transaction
        store.update(
            "reports", "report_id", report_id, values, append={"report_events": change.events}
        )
        row = store.read("reports")
        row = row[row["report_id"] == report_id]
    return json_response(feature_of(row, caller, "reports"))


def report_of(reports: pd.DataFrame | None, report_id: str, caller: Principal) -> pd.DataFrame:
    """The report's row as ``caller`` may act on it: 404 when it does not exist or lies
    outside their scope (not visible), 403 for a worker it is not assigned to."""
    current = None if reports is None else reports[reports["report_id"] == report_id]
    if current is None or not len(current):
        raise ApiError(404, f"No report {report_id!r}.")
    code = current["admin_code"].iloc[0] if "admin_code" in current else None
    if not caller.in_scope(None if pd.isna(code) else str(code)):
        raise ApiError(404, f"No report {report_id!r}.")  # out of scope: not visible
    if caller.role == "worker":
        assignee = current["assignee_id"].iloc[0]
        if pd.isna(assignee) or assignee != caller.worker_id:
            raise ApiError(403, "Workers act only on reports assigned to them.")
    return current


def _changed(new: object, old: object) -> bool:
    new_na, old_na = new is None or bool(pd.isna(new)), old is None or bool(pd.isna(old))
    if new_na or old_na:
        return new_na != old_na
    return bool(new != old)


EVIDENCE_TYPES = {b"\xff\xd8\xff": ".jpg", b"\x89PNG\r\n\x1a\n": ".png", b"RIFF": ".webp"}


@router.post(
    "/reports/{report_id}/evidence", status_code=201, summary="Upload a before/after photo"
)
async def post_evidence(
    report_id: str,
    caller: Caller,
    service: Svc,
    photo: Annotated[UploadFile, File(description="JPEG, PNG or WebP.")],
    kind: Literal["before", "after"] = "after",
) -> Response:
    require(caller, "worker", "supervisor", "admin")
    settings = service.settings
    data = await photo.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise ApiError(413, f"Photos are limited to {settings.max_upload_bytes:,} bytes.")
    ext = next((e for magic, e in EVIDENCE_TYPES.items() if data.startswith(magic)), None)
    if ext is None or (ext == ".webp" and data[8:12] != b"WEBP"):
        raise ApiError(415, "Evidence must be a JPEG, PNG or WebP photo.")
    report_of(service.layer("reports"), report_id, caller)
    name = hashlib.sha256(data).hexdigest()[:32] + ext
    folder = Path(f"{settings.workspace}.evidence") / report_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return json_response(
        {"report_id": report_id, "evidence": f"{kind}:{name}", "bytes": len(data)},
        201,
        media_type=JSON,
    )
