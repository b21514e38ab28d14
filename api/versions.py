"""Grid versions over HTTP: planners preview and publish a redrawn grid (the whole
grid, or one area), restore an earlier version; everyone reads the list.

Publishing is :func:`gridkit.versions.publish` through the store: the units are
checked (contract and ``gridkit.validate_units``), diffed against the grid in force
(the ``lineage`` layer), and become the new ``units`` layer; the caches of the
service follow the new layer version. The rules (the guard asking for ``confirm``,
the redraw of one area, the restore) are the library's; this module parses,
authorises, calls and serialises.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.auth import Caller, Principal, require
from api.errors import ApiError, detail_of, problem, status_of
from api.models import UnitsUpload, VersionCrs, VersionNote
from api.responses import JSON, json_response
from api.service import Service, Svc
from gridkit import codes
from gridkit.errors import GridkitError
from gridkit.io import read_input
from gridkit.ops.intake import count_vertices, upload_size
from gridkit.versions import (
    ConfirmationRequiredError,
    Preview,
    preview,
    publish,
    read_version,
    restore,
    versions,
)

router = APIRouter(tags=["versions"])

FORMATS = (".gpkg", ".geojson", ".json")
#: a polygon unit has 4 coordinates at least: more features than a quarter of the
#: vertex limit cannot be a grid within it
MIN_VERTICES_PER_UNIT = 4

DryRun = Annotated[
    bool,
    Query(
        description="Answer the preview (200): the changes, the staffing and the open "
        "cases affected; publish nothing."
    ),
]
Confirm = Annotated[
    bool,
    Query(
        description="Publish a draft that removes more than 20 % of the units in force, "
        "or units of a kind it has none of (else 409 with the preview)."
    ),
]
Area = Annotated[
    str | None,
    Query(
        pattern=r"^\d{2,12}$",
        description="Admin code: publish a redraw of this area only; the units of the area "
        "are replaced, the rest of the grid is kept with its ids.",
    ),
]


def _record(row: pd.Series) -> dict[str, Any]:
    when = pd.Timestamp(row["published_at"])
    out = {
        "version": int(row["version"]),
        "published_at": None if pd.isna(when) else when.isoformat(),
        "n_units": int(row["n_units"]),
        "note": None if pd.isna(row["note"]) else str(row["note"]),
    }
    for key, cast in (("area", str), ("restored_from", int)):
        value = row.get(key)
        out[key] = None if value is None or pd.isna(value) else cast(value)
    return out


def _row(service: Service, version: int) -> pd.Series | None:
    table = versions(service.store)
    rows = table[table["version"].astype(int) == version]
    return rows.iloc[0] if len(rows) else None


@router.get("/versions", summary="Published grid versions, oldest first")
def list_versions(caller: Caller, service: Svc) -> Response:
    table = versions(service.store)
    rows = [_record(r) for _, r in table.sort_values("version").iterrows()]  # a few rows
    return json_response({"versions": rows}, media_type=JSON)


@router.get("/versions/{version}", summary="One published grid version")
def one_version(version: int, caller: Caller, service: Svc) -> Response:
    row = _row(service, version)
    if row is None:
        raise ApiError(404, f"No version {version}; see /versions.")
    return json_response(_record(row), media_type=JSON)


def _may_publish(caller: Principal, area: str | None) -> None:
    """Planners and admins; a key with a scope may redraw an area inside its scope."""
    require(caller, "planner", "admin")
    if not caller.scope:
        return
    if area is None:
        raise ApiError(
            403,
            "Publishing the whole grid needs a planner or admin key without a scope (this "
            f"key is limited to {caller.scope}); publish a redraw of an area inside it "
            f"with area={caller.scope}.",
        )
    if not codes.in_scope(area, caller.scope):
        raise ApiError(403, f"Area {area} is outside this key's scope ({caller.scope}).")


@router.post(
    "/versions",
    status_code=201,
    summary="Publish a redrawn grid, or preview it (planners)",
    response_class=Response,
    responses={
        200: {"description": "The preview (dry_run=true)."},
        201: {"content": {"application/json": {}}},
        409: {"description": "The draft needs confirm=true; the preview is in the body."},
    },
)
async def publish_version(
    caller: Caller,
    service: Svc,
    units: UnitsUpload,
    note: VersionNote = "",
    crs: VersionCrs = None,
    dry_run: DryRun = False,
    confirm: Confirm = False,
    area: Area = None,
) -> Response:
    """Check the units, record their lineage against the grid in force and make them
    the grid in force. 201 with the version and what changed; 200 with the preview for
    ``dry_run=true``; 409 with the preview when the draft needs ``confirm=true``; 422
    with every problem when the units are not valid (nothing is published)."""
    _may_publish(caller, area)
    suffix = Path(units.filename or "").suffix.lower()
    if suffix not in FORMATS:
        given = units.filename or "a file without a name"
        raise ApiError(415, f"Upload the units as {', '.join(FORMATS)}, not {given!r}.")
    data = await units.read()
    df = await run_in_threadpool(_read_units, service, units, data, crs)
    if dry_run:
        p = await run_in_threadpool(preview, df, service.store, area=area)
        return json_response(p.to_dict(), media_type=JSON)
    return await run_in_threadpool(_publish, service, df, note, area, confirm)


def _read_units(service: Service, upload: UploadFile, data: bytes, crs: str | None):
    """The uploaded units, sized before they are read (views refused) and after."""
    limit = service.settings.max_vertices
    name = upload.filename or "upload"
    with tempfile.TemporaryDirectory(prefix="gridkit-upload-") as tmp:
        path = Path(tmp) / f"units{Path(name).suffix.lower()}"
        path.write_bytes(data)
        try:
            size = upload_size(path, "units", source=name)
            _refuse_large(name, size.features, size.max_vertices, limit, bound=True)
            df = read_input(path, "units", crs=crs)
        except GridkitError as exc:  # told with the name of the upload, not our temp file
            detail = detail_of(exc).replace(str(path), name)
            raise ApiError(status_of(exc), detail) from None
    _refuse_large(name, len(df), count_vertices(df), limit, bound=False)
    return df


def _refuse_large(
    name: str, features: int, vertices: int | None, limit: int, *, bound: bool
) -> None:
    if features > limit // MIN_VERTICES_PER_UNIT:
        raise ApiError(
            413,
            f"{name}: {features:,} features; a grid within the limit of {limit:,} vertices "
            f"has at most {limit // MIN_VERTICES_PER_UNIT:,} (GRIDKIT_MAX_VERTICES).",
        )
    if vertices is not None and vertices > limit:
        told = f"up to {vertices:,} vertices by their size" if bound else f"{vertices:,} vertices"
        raise ApiError(
            413,
            f"{name}: the units have {told}; the limit is {limit:,} (simplify the "
            "boundaries, or raise GRIDKIT_MAX_VERTICES).",
        )


def _stopped(p: Preview) -> Response:
    return problem(
        409,
        "This draft needs confirmation; nothing was published: "
        + "; ".join(p.reasons)
        + ". Read the preview, then publish again with confirm=true, or publish a redraw "
        "of one area with area=ADMIN_CODE.",
        preview=p.to_dict(),
    )


def _published(service: Service, version: int, diff: Any) -> Response:
    body = _record(_row(service, version))
    body["changes"] = None if diff is None else diff.summary
    body["summary"] = None if diff is None else str(diff)
    return json_response(body, 201, media_type=JSON, Location=f"/versions/{version}")


def _publish(service: Service, df: Any, note: str, area: str | None, confirm: bool) -> Response:
    try:  # errors: 422 with each problem; a write failing on our side: 500 (logged)
        version, diff = publish(df, service.store, note=note, area=area, confirm=confirm)
    except ConfirmationRequiredError as exc:
        return _stopped(exc.preview)
    return _published(service, version, diff)


@router.post(
    "/versions/{version}/restore",
    status_code=201,
    summary="Publish an earlier version again, as a new version (planners)",
    response_class=Response,
    responses={
        200: {"description": "The preview (dry_run=true)."},
        201: {"content": {"application/json": {}}},
        409: {"description": "The restore needs confirm=true; the preview is in the body."},
    },
)
def restore_version(
    version: int,
    caller: Caller,
    service: Svc,
    note: Annotated[str, Query(max_length=2000, description="Why.")] = "",
    dry_run: DryRun = False,
    confirm: Confirm = False,
) -> Response:
    """The units of ``version`` become the grid in force again, as a new version with
    its lineage from the grid it replaces (``restored_from`` says which)."""
    _may_publish(caller, None)
    if _row(service, version) is None:
        raise ApiError(404, f"No version {version}; see /versions.")
    if dry_run:
        units = read_version(service.store, version)
        return json_response(
            preview(units, service.store, validate=False).to_dict(), media_type=JSON
        )
    try:
        new, diff = restore(service.store, version, note=note, confirm=confirm)
    except ConfirmationRequiredError as exc:
        return _stopped(exc.preview)
    return _published(service, new, diff)
