"""Grid versions over HTTP: planners publish a redrawn grid, everyone reads the list.

Publishing is :func:`gridkit.versions.publish` through the store: the units are
checked (contract and ``gridkit.validate_units``), diffed against the version in
force (the ``lineage`` layer), and become the new ``units`` layer; the caches of the
service follow the new layer version.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import APIRouter, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.auth import Caller, require
from api.errors import ApiError, detail_of, status_of
from api.models import UnitsUpload, VersionCrs, VersionNote
from api.responses import JSON, json_response
from api.service import Service, Svc
from gridkit.errors import GridkitError
from gridkit.io import read_input
from gridkit.ops.intake import count_vertices
from gridkit.versions import publish, versions

router = APIRouter(tags=["versions"])

FORMATS = (".gpkg", ".geojson", ".json")


def _record(row: pd.Series) -> dict[str, Any]:
    when = pd.Timestamp(row["published_at"])
    return {
        "version": int(row["version"]),
        "published_at": None if pd.isna(when) else when.isoformat(),
        "n_units": int(row["n_units"]),
        "note": None if pd.isna(row["note"]) else str(row["note"]),
    }


@router.get("/versions", summary="Published grid versions, oldest first")
def list_versions(caller: Caller, service: Svc) -> Response:
    table = versions(service.store)
    rows = [_record(r) for _, r in table.sort_values("version").iterrows()]  # a few rows
    return json_response({"versions": rows}, media_type=JSON)


@router.get("/versions/{version}", summary="One published grid version")
def one_version(version: int, caller: Caller, service: Svc) -> Response:
    table = versions(service.store)
    rows = table[table["version"].astype(int) == version]
    if not len(rows):
        raise ApiError(404, f"No version {version}; see /versions.")
    return json_response(_record(rows.iloc[0]), media_type=JSON)


@router.post(
    "/versions",
    status_code=201,
    summary="Publish a redrawn grid (planners)",
    response_class=Response,
    responses={201: {"content": {"application/json": {}}}},
)
async def publish_version(
    caller: Caller,
    service: Svc,
    units: UnitsUpload,
    note: VersionNote = "",
    crs: VersionCrs = None,
) -> Response:
    """Check the units, record their lineage against the version in force and make them
    the grid in force. 201 with the version and what changed; 422 with every problem
    when the units are not valid (nothing is published)."""
    require(caller, "planner", "admin")
    if caller.scope:
        raise ApiError(
            403,
            "Publishing replaces the whole grid; it needs a planner or admin key without "
            f"a scope (this key is limited to {caller.scope}).",
        )
    suffix = Path(units.filename or "").suffix.lower()
    if suffix not in FORMATS:
        given = units.filename or "a file without a name"
        raise ApiError(415, f"Upload the units as {', '.join(FORMATS)}, not {given!r}.")
    data = await units.read()
    return await run_in_threadpool(_publish, service, units, data, note, crs)


def _publish(
    service: Service, upload: UploadFile, data: bytes, note: str, crs: str | None
) -> Response:
    settings = service.settings
    name = upload.filename or "upload"
    with tempfile.TemporaryDirectory(prefix="gridkit-upload-") as tmp:
        path = Path(tmp) / f"units{Path(name).suffix.lower()}"
        path.write_bytes(data)
        try:
            df = read_input(path, "units", crs=crs)
        except GridkitError as exc:  # told with the name of the upload, not our temp file
            detail = detail_of(exc).replace(str(path), name)
            raise ApiError(status_of(exc), detail) from None
    vertices = count_vertices(df)
    if vertices > settings.max_vertices:
        raise ApiError(
            413,
            f"{name}: the units have {vertices:,} vertices; the limit is "
            f"{settings.max_vertices:,} (simplify the boundaries, or raise "
            "GRIDKIT_MAX_VERTICES).",
        )
    version, diff = publish(df, service.store, note=note)  # errors: 422 with each problem
    table = versions(service.store)
    body = _record(table[table["version"].astype(int) == version].iloc[0])
    body["changes"] = None if diff is None else diff.summary
    body["summary"] = None if diff is None else str(diff)
    return json_response(body, 201, media_type=JSON, Location=f"/versions/{version}")
