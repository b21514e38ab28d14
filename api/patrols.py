"""Patrols from the field: one patrol or a batch recorded offline.

The route checks roles, workers and scope; gridkit builds the fixes in WGS84
(``gridkit.ops.intake.point_frame``), checks them against the service area, builds
tracks and flags implausible ones (``gridkit.ops.patrols``). A patrol carrying a
client ``patrol_id`` creates nothing twice.
"""

from __future__ import annotations

import hashlib

import orjson
import pandas as pd
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from api.auth import Caller, Principal, require
from api.errors import ApiError
from api.models import IdemKey, PatrolBatch, PatrolIn
from api.responses import JSON, json_response
from api.service import Service, Svc
from gridkit.errors import GridkitError
from gridkit.ops.intake import in_service_area, point_frame
from gridkit.ops.ledger import checklist_results, patrol_problems
from gridkit.ops.patrols import flag_patrols, patrols_from_points

router = APIRouter(tags=["field"])


#: the body model's own bounds: beyond them the answer is its 400, not a 413
_SCHEMA_FIXES = PatrolIn.model_fields["points"].metadata[-1].max_length
_SCHEMA_PATROLS = PatrolBatch.model_fields["patrols"].metadata[-1].max_length


async def fix_budget(request: Request, service: Svc) -> None:
    """Dependency: 413 for an upload with more fixes than the settings allow (in one
    patrol, or in all), counted on the parsed body before a fix is validated: FastAPI
    validates a body on the event loop, where 100,000 fixes take every other request's
    time (a body beyond the schema's own bounds is left to the model's 400)."""
    try:
        body = await request.json()  # parsed once: FastAPI keeps it for the body model
    except ValueError:
        return  # not JSON: the body model answers
    patrols = body.get("patrols", [body]) if isinstance(body, dict) else None
    if not isinstance(patrols, list) or not 0 < len(patrols) <= _SCHEMA_PATROLS:
        return
    counts = [
        len(p["points"]) if isinstance(p, dict) and isinstance(p.get("points"), list) else 0
        for p in patrols
    ]
    settings = service.settings
    if max(counts) > _SCHEMA_FIXES:
        return
    if max(counts) > settings.max_patrol_fixes:
        raise ApiError(
            413,
            f"A patrol of {max(counts)} fixes exceeds the limit of "
            f"{settings.max_patrol_fixes} fixes per patrol; split it into patrols.",
        )
    if sum(counts) > settings.max_request_fixes:
        raise ApiError(
            413,
            f"The upload holds {sum(counts)} fixes, above the limit of "
            f"{settings.max_request_fixes} per request; upload the patrols in batches.",
        )


@router.post(
    "/patrols",
    status_code=201,
    summary="Upload patrols (one or a batch)",
    responses={200: {"description": "Every patrol of the upload was already stored."}},
    dependencies=[Depends(fix_budget)],
)
def post_patrols(
    body: PatrolIn | PatrolBatch, caller: Caller, service: Svc, idempotency_key: IdemKey = None
) -> Response:
    """Build tracks from fixes, flag implausible ones, store patrols and their points.

    Patrols recorded offline carry their own ``patrol_id``; uploading one again
    creates nothing (the response lists it under ``existing``).
    """
    require(caller, "worker", "supervisor", "admin")
    items = body.patrols if isinstance(body, PatrolBatch) else [body]
    # the heavy work (fixes, tracks, flags) is done outside the writer's lock: reports
    # and other uploads never wait on it, only on the append
    frames, existing = _new_patrols(service, caller, items, idempotency_key)
    built = _build_patrols(service, frames) if frames else None
    created: list[dict[str, object]] = []
    if built is not None:
        with service.write_lock:
            created, stored_meanwhile = _store_patrols(service, *built)
            fresh = built[0][~built[0]["patrol_id"].isin(stored_meanwhile).to_numpy()]
            handed = _hand_over_problems(service, fresh)
        existing += stored_meanwhile
        for row in created:  # the cases its checklist opened (交)
            row["reports"] = handed.get(str(row["patrol_id"]), [])
    return json_response(
        {"created": created, "existing": existing},
        201 if created else 200,
        media_type=JSON,
    )


def _new_patrols(
    service: Service, caller: Principal, items: list[PatrolIn], key: str | None
) -> tuple[list[tuple[str, PatrolIn, pd.DataFrame]], list[str]]:
    """The patrols of the upload not stored yet, each with its fixes in WGS84, and the
    ids of those already stored; refuses the upload when one patrol may not be."""
    known = service.layer("patrols")
    owners: dict[str, str] = (
        {}
        if known is None
        else dict(zip(known["patrol_id"].astype(str), known["worker_id"].astype(str), strict=True))
    )
    areas = _worker_areas(service)
    frames, existing = [], []
    for k, item in enumerate(items):  # a batch is small (<= 200 patrols)
        worker = item.worker_id or caller.worker_id
        if worker is None:
            raise ApiError(400, "worker_id is required for keys not bound to a worker.")
        if caller.role == "worker" and worker != caller.worker_id:
            raise ApiError(403, "Workers upload only their own patrols.")
        if areas is not None and worker not in areas:
            raise ApiError(422, f"Unknown worker {worker!r}: not in the workers layer.")
        if areas is not None and not caller.in_scope(areas[worker]):
            raise ApiError(403, f"Worker {worker!r} works outside your scope.")
        pid = item.patrol_id or _patrol_id(key, k, worker, item)
        if pid in owners:
            if owners[pid] != worker:  # another worker's: never dropped as a "retry"
                raise ApiError(
                    409,
                    f"patrol_id {pid!r} is already another worker's patrol; give each "
                    "patrol an id of its own (a UUID).",
                )
            existing.append(pid)
            continue
        fixes = point_frame(
            {
                "patrol_id": pid,
                "worker_id": worker,
                "t": pd.to_datetime([f.t for f in item.points], utc=True),
                "accuracy_m": [f.accuracy_m for f in item.points],
            },
            [(f.lon, f.lat) for f in item.points],
            crs=item.crs,
            source="patrol points",
        )
        frames.append((pid, item, fixes))
        owners[pid] = worker
    return frames, existing


def _build_patrols(
    service: Service, frames: list[tuple[str, PatrolIn, pd.DataFrame]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check, build and flag the new patrols of an upload, all at once (one track build,
    one plausibility check): their tracks and fixes, ready to store."""
    points = pd.concat([fx for _, _, fx in frames], ignore_index=True)
    outside = ~in_service_area(points.geometry, service.service_area())
    if outside.any():
        bad = sorted(set(points.loc[outside, "patrol_id"]))[:5]
        raise ApiError(
            422,
            f"patrol(s) {', '.join(bad)} have fixes outside the "
            "service area; check the coordinates and their datum.",
        )
    try:
        tracks = patrols_from_points(points)
    except GridkitError as exc:
        raise ApiError(422, exc.message) from None
    by_id = {pid: item for pid, item, _ in frames}
    tracks["notes"] = tracks["patrol_id"].map({p: i.notes for p, i in by_id.items()})
    tracks["mode"] = tracks["patrol_id"].map({p: i.mode for p, i in by_id.items()})
    tracks["checklist"] = tracks["patrol_id"].map({p: _checklist_text(i) for p, i in by_id.items()})
    try:
        checklist_results(tracks)  # unknown items named, with the patrol, before storing
        flagged = flag_patrols(tracks, workers=_worker_levels(service))
    except GridkitError as exc:
        raise ApiError(422, exc.message) from None
    return flagged, points


def _checklist_text(item: PatrolIn) -> str | None:
    """The checklist as the patrols layer keeps it (JSON, as the paper ledger does)."""
    if not item.checklist:
        return None
    return orjson.dumps(
        {
            k: v
            if isinstance(v, str)
            else v.model_dump(exclude_none=True, exclude_defaults=True) | {"result": v.result}
            for k, v in item.checklist.items()
        }
    ).decode()


def _not_reported(text: str) -> str:
    """A checklist without the problems its patrol already sent as reports."""
    items = orjson.loads(text)
    return orjson.dumps(
        {k: v for k, v in items.items() if not (isinstance(v, dict) and v.get("reported"))}
    ).decode()


def _worker_levels(service: Service) -> pd.DataFrame | None:
    """worker_id and level, for each patrol's level rules (a chief's minimums)."""
    workers = service.layer("workers")
    if workers is None or "level" not in workers.columns:
        return None
    return pd.DataFrame(workers[["worker_id", "level"]])


def _hand_over_problems(service: Service, flagged: pd.DataFrame) -> dict[str, list[str]]:
    """Hand each ``problem`` of the patrols' checklists over as a case (交), linked to
    its patrol, in the same way the paper ledger's are; the new report ids by patrol."""
    if "checklist" not in flagged or not flagged["checklist"].notna().any():
        return {}
    todo = flagged[flagged["checklist"].notna().to_numpy()]
    todo = todo.assign(checklist=todo["checklist"].map(_not_reported))
    change = patrol_problems(
        todo,
        units=service.layer("units"),
        existing=service.layer("reports"),
    )
    reports = change.reports
    known = service.layer("reports")
    new = reports if known is None else reports[~reports["report_id"].isin(known["report_id"])]
    if len(new):
        service.store.append_many({"reports": new, "report_events": change.events})
    by_patrol: dict[str, list[str]] = {}
    for pid, rid in zip(new["patrol_id"].astype(str), new["report_id"].astype(str), strict=True):
        by_patrol.setdefault(pid, []).append(rid)
    return by_patrol


def _store_patrols(
    service: Service, flagged: pd.DataFrame, points: pd.DataFrame
) -> tuple[list[dict[str, object]], list[str]]:
    """Append the patrols built (under the writer's lock): one append per layer. A
    patrol stored meanwhile by another upload of the same is left out; the ids of
    those are returned with the created rows."""
    known = service.layer("patrols")
    if known is not None and len(known):
        meanwhile = flagged["patrol_id"].isin(known["patrol_id"].astype(str)).to_numpy()
        if meanwhile.any():
            again = flagged.loc[meanwhile, "patrol_id"].astype(str).tolist()
            flagged = flagged[~meanwhile]
            points = points[~points["patrol_id"].isin(again).to_numpy()]
        else:
            again = []
    else:
        again = []
    if len(flagged):
        service.store.append("patrols", flagged)
        service.store.append("patrol_points", points[["patrol_id", "t", "accuracy_m", "geometry"]])
    return [
        {
            "patrol_id": r.patrol_id,
            "valid": bool(r.valid),
            "flags": str(r.flags or ""),
            "length_m": float(r.length_m),
        }
        for r in flagged[["patrol_id", "valid", "flags", "length_m"]].itertuples()
    ], again


def _worker_areas(service: Service) -> dict[str, str | None] | None:
    """worker_id -> admin code of the workers layer (None without the layer), cached
    per layer version."""

    def build() -> dict[str, str | None] | None:
        workers = service.layer("workers")
        if workers is None:
            return None
        codes = workers.get("admin_code", pd.Series(None, index=workers.index, dtype=object))
        return {
            str(w): None if pd.isna(c) else str(c)
            for w, c in zip(workers["worker_id"], codes, strict=True)
        }

    return service.cached("worker_areas", ("workers",), build)


def _patrol_id(key: str | None, k: int, worker: str, item: PatrolIn) -> str:
    """Deterministic id: the same upload (the worker's key, or the worker's fixes) maps
    to the same patrol, so a retry is recognised; another worker's never does."""
    basis = (
        f"{worker}:{key}:{k}"
        if key
        else f"{worker}:"
        + ",".join(f"{f.lon:.6f},{f.lat:.6f},{f.t.isoformat()}" for f in item.points)
    )
    return "P-" + hashlib.sha256(basis.encode()).hexdigest()[:16]
