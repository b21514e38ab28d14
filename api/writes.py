"""Writes from the field: reports (交办 lifecycle) and patrols, with roles and idempotency.

Routes validate and authorise; the work is done by gridkit (``reports.intake``,
``reports.hand_over``, ``reports.transition``, ``patrols.patrols_from_points``,
``patrols.flag_patrols``) and persisted through the store, one writer at a time.
A request carrying an ``Idempotency-Key`` header, or a patrol carrying a client
``patrol_id``, creates nothing twice: the key is written in the same transaction
as the row it created.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import shapely
from fastapi import APIRouter, File, Header, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from api.auth import Caller, Principal, require
from api.errors import ApiError
from api.geojson import feature
from gridkit.errors import GridkitError
from gridkit.layers import LAYERS

router = APIRouter(tags=["field"])
GEOJSON = "application/geo+json"
_write_lock = threading.Lock()  # one writer: read-modify-write of a layer is atomic

IdemKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=128,
        description="Retries with the same key create nothing twice.",
    ),
]


class _Props(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: str = Field(max_length=64, description="Category key, e.g. floating_garbage.")
    description: str | None = Field(None, max_length=2000)
    source: str = Field("patrol", max_length=32, description="patrol, hotline, resident, ...")
    crs: str | None = Field(
        None, max_length=32, description="Datum of lon/lat: EPSG code, gcj02 or bd09."
    )
    admin_code: str | None = Field(
        None, pattern=r"^\d{6,12}$", description="For address-only (hotline) reports."
    )
    unit_id: str | None = Field(None, max_length=64)
    reporter_contact: str | None = Field(None, max_length=64)
    reported_at: datetime | None = None


class ReportIn(_Props):
    """A report as flat JSON."""

    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)


class PointGeometry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=3)


class ReportFeature(BaseModel):
    """A report as a GeoJSON Feature with a Point."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["Feature"]
    geometry: PointGeometry | None = None
    properties: _Props


class ReportPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal[
        "assigned", "in_progress", "resolved", "verified", "closed", "returned", "rejected"
    ]
    note: str | None = Field(None, max_length=2000)
    evidence: str | None = Field(
        None, max_length=1000, description="e.g. 'before:abc.jpg;after:def.jpg'"
    )
    assignee_id: str | None = Field(None, max_length=64)


class Fix(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    t: datetime
    accuracy_m: float | None = Field(None, ge=0, le=10_000)


class PatrolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patrol_id: str | None = Field(
        None,
        max_length=64,
        pattern=r"^[\w.:-]+$",
        description="Client id of a patrol recorded offline.",
    )
    worker_id: str | None = Field(None, min_length=1, max_length=64)
    crs: str | None = Field(None, min_length=1, max_length=32)
    notes: str | None = Field(None, max_length=2000)
    points: list[Fix] = Field(min_length=1, max_length=20_000)


class PatrolBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patrols: list[PatrolIn] = Field(min_length=1, max_length=200)


def _feature(df: pd.DataFrame, caller: Principal, layer: str) -> dict:
    spec = LAYERS[layer]
    return orjson.loads(
        feature(
            df,
            id_col=spec.id,
            hidden=[] if caller.sees_private else list(spec.private),
            hide_geometry=spec.private_geometry and not caller.sees_private,
        )
    )


def _json(
    body: Any, status: int = 200, media_type: str = "application/geo+json", **headers: str
) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=media_type, headers=headers)


def _layer(store, name: str) -> pd.DataFrame | None:
    return store.read(name) if name in store.layers() else None


def _service_area(request: Request) -> shapely.Geometry | None:
    store = request.app.state.store
    key = ("service_area", store.generation("admin_areas"), store.generation("units"))
    cache = request.app.state.geojson_cache
    if key not in cache:
        admin = _layer(store, "admin_areas")
        source = admin if admin is not None else _layer(store, "units")
        area = None
        if source is not None and len(source):
            area = shapely.union_all(np.asarray(source.geometry.array))
            shapely.prepare(area)
        cache[key] = area
    return cache[key]


@router.post(
    "/reports",
    status_code=201,
    summary="Submit a problem report",
    response_class=Response,
    responses={201: {"content": {GEOJSON: {}}}},
)
def post_report(
    request: Request,
    body: ReportIn | ReportFeature,
    caller: Caller,
    idempotency_key: IdemKey = None,
) -> Response:
    """Locate, de-duplicate and hand over a report; 201 with the report as a Feature."""
    require(caller, "worker", "supervisor", "admin")
    from gridkit.reports import hand_over, intake

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
    store = request.app.state.store
    with _write_lock:
        existing = _layer(store, "reports")
        replay = _replay(existing, idempotency_key)
        if replay is not None:
            return _json(_feature(replay, caller, "reports"), 201, **{"Idempotent-Replay": "true"})
        point = None
        if coords is not None:
            point = shapely.Point(coords[0], coords[1])
            pts = gpd.GeoDataFrame(geometry=[point], crs=None if crs else 4326)
            from gridkit.crs import to_wgs84

            point = to_wgs84(pts, crs=crs or None, source="report").geometry.iloc[0]
            area = _service_area(request)
            if area is not None and not area.covers(point):
                raise ApiError(
                    422,
                    f"The point ({point.x:.6f}, {point.y:.6f}) lies outside "
                    "the service area. Check the coordinates and their datum (crs).",
                )
        rid = _next_report_id(request, existing)
        new = gpd.GeoDataFrame(
            {"report_id": [rid], **{k: [v] for k, v in props.items() if v is not None}},
            geometry=[point],
            crs=4326,
        )
        if "reported_at" in new:
            new["reported_at"] = pd.to_datetime(new["reported_at"], utc=True)
        units = _layer(store, "units")
        # only open reports of the category near the point can be its duplicate: the
        # work per request stays constant however many reports the workspace holds
        change = intake(
            new,
            units=units,
            existing=_near(existing, props["category"], point),
            actor_id=_actor(caller),
        )
        created = change.reports[change.reports["report_id"] == rid]
        _authorise_place(store, caller, created)
        row, events = created, change.events
        departments = _layer(store, "departments")
        if departments is not None and pd.isna(created["duplicate_of"].iloc[0]):
            handed = hand_over(
                created,
                departments=departments,
                assignments=_layer(store, "assignments"),
                actor_id=_actor(caller),
                report_ids=[rid],
            )
            row = handed.reports
            events = pd.concat([events, handed.events], ignore_index=True)
        row = row.copy()
        if idempotency_key:
            row["idempotency_key"] = idempotency_key
        store.append("reports", gpd.GeoDataFrame(row, crs=4326))
        store.append("report_events", events)
    return _json(
        _feature(row, caller, "reports"), 201, Location=f"/collections/reports/items/{rid}"
    )


def _next_report_id(request: Request, existing: pd.DataFrame | None) -> str:
    """Sequential ids (R0000001...) continuing from the workspace, kept in memory."""
    state = request.app.state
    if getattr(state, "report_seq", None) is None:
        taken = pd.Series([], dtype=str) if existing is None else existing["report_id"]
        digits = taken.astype(str).str.extract(r"^R(\d+)$")[0].dropna()
        state.report_seq = int(digits.astype(int).max()) if len(digits) else 0
        state.report_ids = set(taken.astype(str))
    while True:
        state.report_seq += 1
        rid = f"R{state.report_seq:07d}"
        if rid not in state.report_ids:
            state.report_ids.add(rid)
            return rid


def _near(existing: pd.DataFrame | None, category: str, point) -> pd.DataFrame | None:
    """Reports of ``category`` within ~500 m of ``point`` (the duplicate candidates)."""
    if existing is None:
        return None
    if point is None or len(existing) == 0:
        return existing.iloc[:0]
    b = shapely.bounds(np.asarray(existing.geometry.array))
    d = 0.005
    near = (
        (existing["category"] == category).to_numpy()
        & (b[:, 0] <= point.x + d)
        & (b[:, 2] >= point.x - d)
        & (b[:, 1] <= point.y + d)
        & (b[:, 3] >= point.y - d)
    )
    return existing[near]


def _actor(caller: Principal) -> str:
    return caller.worker_id or caller.name


def _replay(existing: pd.DataFrame | None, key: str | None) -> pd.DataFrame | None:
    if not key or existing is None or "idempotency_key" not in existing.columns:
        return None
    hit = existing[existing["idempotency_key"] == key]
    return hit.iloc[[0]] if len(hit) else None


def _authorise_place(store, caller: Principal, created: pd.DataFrame) -> None:
    code = created["admin_code"].iloc[0] if "admin_code" in created else None
    if caller.scope and not caller.in_scope(None if pd.isna(code) else str(code)):
        raise ApiError(403, f"The report lies in {code}, outside your scope {caller.scope}.")
    if caller.role == "worker":
        assignments = _layer(store, "assignments")
        unit = created["unit_id"].iloc[0]
        mine = (
            set()
            if assignments is None
            else set(assignments.loc[assignments["worker_id"] == caller.worker_id, "unit_id"])
        )
        if pd.isna(unit) or unit not in mine:
            raise ApiError(
                403,
                f"Workers report on their own units; the point lies in unit "
                f"{unit}, which is not assigned to {caller.worker_id}.",
            )


@router.patch(
    "/reports/{report_id}",
    summary="Move a report along its lifecycle",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}},
)
def patch_report(request: Request, report_id: str, body: ReportPatch, caller: Caller) -> Response:
    require(caller, "worker", "supervisor", "admin")
    from gridkit.reports import transition

    store = request.app.state.store
    with _write_lock:
        reports = _layer(store, "reports")
        if reports is None or not (reports["report_id"] == report_id).any():
            raise ApiError(404, f"No report {report_id!r}.")
        current = reports[reports["report_id"] == report_id]
        code = current["admin_code"].iloc[0] if "admin_code" in current else None
        if caller.scope and not caller.in_scope(None if pd.isna(code) else str(code)):
            raise ApiError(404, f"No report {report_id!r}.")  # out of scope: not visible
        if caller.role == "worker":
            if current["assignee_id"].iloc[0] != caller.worker_id:
                raise ApiError(403, "Workers change only reports assigned to them.")
            if body.status not in ("in_progress", "resolved"):
                raise ApiError(
                    403,
                    f"Workers may set in_progress or resolved, not "
                    f"{body.status}; a supervisor verifies, returns or closes.",
                )
        change = transition(
            reports,
            report_id,
            body.status,
            actor_id=_actor(caller),
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
            if not (pd.isna(new) and (old is None or pd.isna(old))) and new != old:
                values[col] = new
        store.update("reports", "report_id", report_id, values)
        store.append("report_events", change.events)
        row = store.read("reports")
        row = row[row["report_id"] == report_id]
    return _json(_feature(row, caller, "reports"))


EVIDENCE_TYPES = {b"\xff\xd8\xff": ".jpg", b"\x89PNG\r\n\x1a\n": ".png", b"RIFF": ".webp"}


@router.post(
    "/reports/{report_id}/evidence", status_code=201, summary="Upload a before/after photo"
)
async def post_evidence(
    request: Request,
    report_id: str,
    caller: Caller,
    photo: Annotated[UploadFile, File(description="JPEG, PNG or WebP.")],
    kind: Literal["before", "after"] = "after",
) -> Response:
    require(caller, "worker", "supervisor", "admin")
    settings = request.app.state.settings
    data = await photo.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise ApiError(413, f"Photos are limited to {settings.max_upload_bytes:,} bytes.")
    ext = next((e for magic, e in EVIDENCE_TYPES.items() if data.startswith(magic)), None)
    if ext is None or (ext == ".webp" and data[8:12] != b"WEBP"):
        raise ApiError(415, "Evidence must be a JPEG, PNG or WebP photo.")
    reports = _layer(request.app.state.store, "reports")
    if reports is None or not (reports["report_id"] == report_id).any():
        raise ApiError(404, f"No report {report_id!r}.")
    name = hashlib.sha256(data).hexdigest()[:32] + ext
    folder = Path(f"{settings.workspace}.evidence") / report_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return _json(
        {"report_id": report_id, "evidence": f"{kind}:{name}", "bytes": len(data)},
        201,
        media_type="application/json",
    )


@router.post(
    "/patrols",
    status_code=201,
    summary="Upload patrols (one or a batch)",
    responses={200: {"description": "Every patrol of the upload was already stored."}},
)
def post_patrols(
    request: Request, body: PatrolIn | PatrolBatch, caller: Caller, idempotency_key: IdemKey = None
) -> Response:
    """Build tracks from fixes, flag implausible ones, store patrols and their points.

    Patrols recorded offline carry their own ``patrol_id``; uploading one again
    creates nothing (the response lists it under ``existing``).
    """
    require(caller, "worker", "supervisor", "admin")
    from gridkit.patrols import flag_patrols, patrols_from_points

    items = body.patrols if isinstance(body, PatrolBatch) else [body]
    store = request.app.state.store
    with _write_lock:
        known = _layer(store, "patrols")
        known_ids = set() if known is None else set(known["patrol_id"].astype(str))
        created, existing, frames = [], [], []
        for k, item in enumerate(items):  # a batch is small (<= 200 patrols)
            worker = item.worker_id or caller.worker_id
            if worker is None:
                raise ApiError(400, "worker_id is required for keys not bound to a worker.")
            if caller.role == "worker" and worker != caller.worker_id:
                raise ApiError(403, "Workers upload only their own patrols.")
            pid = item.patrol_id or _patrol_id(idempotency_key, k, worker, item)
            if pid in known_ids:
                existing.append(pid)
                continue
            fixes = gpd.GeoDataFrame(
                {
                    "patrol_id": pid,
                    "worker_id": worker,
                    "t": pd.to_datetime([f.t for f in item.points], utc=True),
                    "accuracy_m": [f.accuracy_m for f in item.points],
                },
                geometry=gpd.points_from_xy(
                    [f.lon for f in item.points], [f.lat for f in item.points]
                ),
                crs=None if item.crs else 4326,
            )
            frames.append((pid, item, fixes))
            known_ids.add(pid)
        if frames:
            # the whole batch at once: fixes to WGS84 per declared datum, then one
            # track build, one plausibility check and one append per layer
            points = pd.concat(
                [fx if not item.crs else _to_wgs84(fx, item.crs) for _, item, fx in frames],
                ignore_index=True,
            )
            points = gpd.GeoDataFrame(points, geometry="geometry", crs=4326)
            area = _service_area(request)
            if area is not None:
                outside = ~area.covers(np.asarray(points.geometry.array))
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
            notes = {pid: item.notes for pid, item, _ in frames}
            tracks["notes"] = tracks["patrol_id"].map(notes)
            flagged = flag_patrols(tracks)
            store.append("patrols", flagged)
            store.append("patrol_points", points[["patrol_id", "t", "accuracy_m", "geometry"]])
            created = [
                {
                    "patrol_id": r.patrol_id,
                    "valid": bool(r.valid),
                    "flags": str(r.flags or ""),
                    "length_m": float(r.length_m),
                }
                for r in flagged[["patrol_id", "valid", "flags", "length_m"]].itertuples()
            ]
    return _json(
        {"created": created, "existing": existing},
        201 if created else 200,
        media_type="application/json",
    )


def _to_wgs84(fixes: gpd.GeoDataFrame, crs: str) -> gpd.GeoDataFrame:
    from gridkit.crs import to_wgs84

    return to_wgs84(fixes, crs=crs, source="patrol points")


def _patrol_id(key: str | None, k: int, worker: str, item: PatrolIn) -> str:
    """Deterministic id: the same upload (same key, or same worker and fixes) maps to
    the same patrol, so a retry is recognised."""
    basis = (
        f"{key}:{k}"
        if key
        else f"{worker}:"
        + ",".join(f"{f.lon:.6f},{f.lat:.6f},{f.t.isoformat()}" for f in item.points)
    )
    return "P-" + hashlib.sha256(basis.encode()).hexdigest()[:16]
