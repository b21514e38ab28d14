"""Writes from the field: reports (交办 lifecycle) and patrols, with roles and idempotency.

Routes validate and authorise; the work is done by gridkit (``reports.intake``,
``reports.hand_over``, ``reports.transition``, ``patrols.patrols_from_points``,
``patrols.flag_patrols``) and persisted through the store, one writer at a time.
A request carrying an ``Idempotency-Key`` header, or a patrol carrying a client
``patrol_id``, creates nothing twice: the key is written in the same transaction
as the row it created.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import shapely
from fastapi import APIRouter, File, Header, Request, UploadFile
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api._group import GroupCommit
from api._held import HeldReports
from api.auth import Caller, Principal, require
from api.errors import ApiError
from api.geojson import Piece, feature, pieces
from gridkit.crs import WGS84
from gridkit.errors import GridkitError
from gridkit.layers import LAYERS
from gridkit.store.gpkg import ConcurrentWriteError

router = APIRouter(tags=["field"])
log = logging.getLogger("gridkit.api")
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


EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def _plausible_time(value: datetime | None) -> datetime | None:
    """A time of a report or a fix: after 2000, and not more than a day ahead (clock
    drift); naive times are taken as UTC."""
    if value is None:
        return None
    t = value if value.tzinfo else value.replace(tzinfo=UTC)
    if not EARLIEST <= t <= datetime.now(UTC) + timedelta(days=1):
        raise ValueError(
            f"{value.isoformat()} is not a plausible time (2000 to now); check the "
            "device clock and the time zone"
        )
    return value


PlausibleTime = Annotated[datetime, AfterValidator(_plausible_time)]


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
    reported_at: PlausibleTime | None = None


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
    t: PlausibleTime
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


def _feature(df: pd.DataFrame, caller: Principal, layer: str, row: int = 0) -> bytes:
    """Row ``row`` of ``df`` as a GeoJSON Feature, private fields as ``caller`` may see."""
    spec = LAYERS[layer]
    return feature(
        df,
        id_col=spec.id,
        hidden=[] if caller.sees_private else list(spec.private),
        hide_geometry=spec.private_geometry and not caller.sees_private,
        row=row,
    )


def _encode(piece: Piece, caller: Principal, layer: str) -> bytes:
    """``piece`` as a GeoJSON Feature, private fields as ``caller`` may see (the same
    bytes as :func:`_feature` on its row)."""
    spec = LAYERS[layer]
    if caller.sees_private:
        return piece.encode()
    return piece.encode(frozenset(spec.private), hide_geometry=spec.private_geometry)


def _json(
    body: Any, status: int = 200, media_type: str = "application/geo+json", **headers: str
) -> Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(content, status_code=status, media_type=media_type, headers=headers)


def _layer(store, name: str) -> pd.DataFrame | None:
    return store.read(name) if name in store.layers() else None


def _service_area(app) -> shapely.Geometry | None:
    """The union of the admin areas (else of the units), prepared for point tests."""
    store = app.state.store

    def build() -> shapely.Geometry | None:
        admin = _layer(store, "admin_areas")
        source = admin if admin is not None else _layer(store, "units")
        if source is None or not len(source):
            return None
        area = shapely.union_all(np.asarray(source.geometry.array))
        shapely.prepare(area)
        return area

    gens = (store.generation("admin_areas"), store.generation("units"))
    return _cached(app, "service_area", gens, build)


@dataclass(frozen=True)
class _Submission:
    """One report as received: checked for form, not yet placed or stored."""

    props: dict[str, Any]
    coords: tuple[float, float] | None
    crs: str | None
    caller: Principal
    key: str | None  # the caller's Idempotency-Key, scoped to them (see _scoped_key)
    fingerprint: str | None = None  # of the request, to tell a retry from a key reused


class _Outcome(NamedTuple):
    rows: pd.DataFrame  # the batch's stored rows (or the replayed ones)
    pos: int
    replay: bool
    piece: Piece  # row ``pos`` serialised (in the writer, once for the whole batch)


@router.post(
    "/reports",
    status_code=201,
    summary="Submit a problem report",
    response_class=Response,
    responses={201: {"content": {GEOJSON: {}}}},
)
async def post_report(
    request: Request,
    body: ReportIn | ReportFeature,
    caller: Caller,
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
        await run_in_threadpool(_check_places, request.app, props)
    writer = report_writer(request.app)
    point = None if coords is None else (coords[0], coords[1])
    sub = _Submission(
        props,
        point,
        crs,
        caller,
        _scoped_key(caller, idempotency_key),
        _fingerprint(props, point, crs) if idempotency_key else None,
    )
    _, _, replay, piece = await asyncio.wrap_future(writer.submit(sub))
    body = _encode(piece, caller, "reports")
    if replay:
        return _json(body, 201, **{"Idempotent-Replay": "true"})
    return _json(body, 201, Location=f"/collections/reports/items/{piece.id}")


def _scoped_key(caller: Principal, key: str | None) -> str | None:
    """An ``Idempotency-Key`` as stored: the caller's own, so that two phones choosing
    the same key never see each other's reports."""
    return None if not key else f"{caller.owner}/{key}"


def _fingerprint(props: dict[str, Any], point: tuple[float, float] | None, crs: str | None) -> str:
    """What was asked, in short: a retry repeats it, a reused key does not."""
    canonical = orjson.dumps(
        {"props": props, "point": point, "crs": crs},
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    return hashlib.sha256(canonical).hexdigest()[:32]


def _reused(key: str, fingerprint: str | None, seen: str | None) -> ApiError | None:
    """The 422 for a key sent again with a different report (None for a true retry)."""
    if seen is None or fingerprint is None or seen == fingerprint:
        return None
    return ApiError(
        422,
        f"Idempotency-Key {key.split('/', 1)[1]!r} was used before for a different "
        "report; use a new key for a new report.",
    )


def report_writer(app) -> GroupCommit:
    """The app's group-commit writer of reports (made on first use)."""
    writer = getattr(app.state, "report_writer", None)
    if writer is None:  # the event loop is one thread: no race here
        writer = app.state.report_writer = GroupCommit(partial(_intake_batch, app))
    return writer


class ReportArrivals:
    """ASGI middleware: a ``POST /reports`` announces itself to the report writer as
    soon as it arrives, before its body is read, so that a batch being gathered waits
    for it (see :mod:`api._group`)."""

    def __init__(self, app, owner) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/reports":
            with report_writer(self.owner).expecting():
                await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _check_vocabulary(props: dict[str, Any]) -> None:
    from gridkit.ops.reports import _rules

    rules = _rules(None)
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


def _intake_batch(app, subs: Sequence[_Submission]) -> list[_Outcome | BaseException]:
    """Take in a batch of reports: replays, placing, intake, authorisation, hand-over,
    and one transaction for the reports and their events. Done again from the layer as
    it is when another process wrote reports meanwhile (ids, duplicates, replays all
    depend on it); after three tries the batch fails with a 503."""
    with _write_lock:
        for _ in range(2):
            try:
                return _intake_once(app, subs)
            except ConcurrentWriteError:
                pass  # the store forgot the layer: the next pass reads it as it is now
        return _intake_once(app, subs)  # its error, if again, fails the batch (503)


def _intake_once(app, subs: Sequence[_Submission]) -> list[_Outcome | BaseException]:
    """One pass of :func:`_intake_batch` (under its lock)."""
    store = app.state.store
    existing = _held_reports(app, store)
    out: list[_Outcome | BaseException | None] = [None] * len(subs)
    # idempotency: keys already stored replay their row; a key repeated within
    # the batch replays the outcome of its first use
    keys = [s.key for s in subs if s.key]
    stored = existing.replays(keys) if existing is not None and keys else _NO_ROWS
    stored_pieces = pieces(stored, id_col="report_id") if len(stored) else []
    first: dict[str, int] = {}
    fresh: list[int] = []
    for i, s in enumerate(subs):
        if s.key and s.key in stored.index:
            pos = int(stored.index.get_loc(s.key))
            hashes = stored.get("idempotency_hash")
            seen = None if hashes is None else hashes.iloc[pos]
            seen = None if seen is None or pd.isna(seen) else str(seen)
            out[i] = _reused(s.key, s.fingerprint, seen) or _Outcome(
                stored, pos, True, stored_pieces[pos]
            )
        elif s.key and s.key in first:
            continue  # answered below
        else:
            if s.key:
                first[s.key] = i
            fresh.append(i)
    points = _place(app, [subs[i] for i in fresh])
    todo = []
    for i, point in zip(fresh, points, strict=True):
        if isinstance(point, BaseException):
            out[i] = point
        else:
            todo.append((i, point))
    if todo:
        for i, result in _take_in(app, store, existing, subs, todo).items():
            out[i] = result
    for i, s in enumerate(subs):
        if out[i] is None:
            j = first[s.key]  # type: ignore[index]
            done = out[j]
            out[i] = _reused(s.key, s.fingerprint, subs[j].fingerprint) or (  # type: ignore[arg-type]
                done if isinstance(done, BaseException) else done._replace(replay=True)
            )
    return out  # type: ignore[return-value]


_NO_ROWS = pd.DataFrame(index=pd.Index([], dtype=object))


def _held_reports(app, store) -> HeldReports | None:
    """The reports layer as the writer holds it (:mod:`api._held`), kept in step batch
    by batch; read and typed again only when someone else wrote the layer."""
    from gridkit.ops.reports import _normalise

    gen = store.generation("reports")
    held = getattr(app.state, "held_reports", None)
    if held is None or held.generation != gen:  # first use, or written by someone else
        df = _layer(store, "reports")
        held = app.state.held_reports = None if df is None else HeldReports(gen, _normalise(df))
        app.state.report_seq = None  # ids continue from the layer as it is now
    return held


def _place(app, subs: Sequence[_Submission]) -> list:
    """WGS84 points for the submissions (None when address-only), or the error of one:
    an unknown datum, or a point outside the service area."""
    placed: list = [None] * len(subs)
    groups: dict[str | None, list[int]] = {}
    for k, s in enumerate(subs):
        if s.coords is not None:
            groups.setdefault(s.crs, []).append(k)
    area = _service_area(app)
    for crs, ks in groups.items():
        xy = np.array([subs[k].coords for k in ks], dtype=float)
        try:
            geoms = _wgs84_points(xy, crs)
        except GridkitError:  # find whose point it is: one at a time
            got = []
            for k, one in zip(ks, xy, strict=True):
                try:
                    got.append((k, _wgs84_points(one[None, :], crs)[0]))
                except GridkitError as exc:
                    placed[k] = ApiError(400, exc.message)
            ks = [k for k, _ in got]
            geoms = np.array([g for _, g in got], dtype=object)
        inside = np.ones(len(ks), bool) if area is None else shapely.covers(area, geoms)
        for k, g, ok in zip(ks, geoms, inside, strict=True):
            placed[k] = (
                g
                if ok
                else ApiError(
                    422,
                    f"The point ({g.x:.6f}, {g.y:.6f}) lies outside the service area. "
                    "Check the coordinates and their datum (crs).",
                )
            )
    return placed


def _wgs84_points(xy: np.ndarray, crs: str | None) -> np.ndarray:
    """Points in WGS84 from coordinates in ``crs`` (None: WGS84 lon/lat, as sent)."""
    from gridkit.crs import to_wgs84

    lonlat = (np.abs(xy[:, 0]) <= 180).all() and (np.abs(xy[:, 1]) <= 90).all()
    if not crs and lonlat:  # nothing to convert or check
        return shapely.points(xy)
    pts = gpd.GeoDataFrame(geometry=shapely.points(xy), crs=None if crs else WGS84)
    return np.asarray(to_wgs84(pts, crs=crs or None, source="report").geometry.array)


def _take_in(app, store, existing, subs, todo) -> dict[int, _Outcome | BaseException]:
    """Intake, authorise and hand over ``todo`` (submission index, point) together;
    rejected reports are left out and the rest taken in again, so nothing rejected is
    stored or linked as an original."""
    from gridkit.ops.reports import _rules, hand_over, intake

    results: dict[int, _Outcome | BaseException] = {}
    units = _layer(store, "units")
    radius = _rules(None).duplicate_radius_m
    while todo:
        ids = [_next_report_id(app, existing) for _ in todo]
        cols: dict[str, Any] = {"report_id": ids}
        for name in subs[todo[0][0]].props:
            values = [subs[i].props[name] for i, _ in todo]
            if any(v is not None for v in values):
                cols[name] = pd.to_datetime(values, utc=True) if name == "reported_at" else values
        cols["geometry"] = gpd.array.from_shapely(
            np.array([g for _, g in todo], dtype=object), crs=WGS84
        )
        new = gpd.GeoDataFrame(cols, geometry="geometry", copy=False)  # built once, as is
        try:
            near = None if existing is None else existing.near(new, radius)
            change = intake(new, units=units, existing=near)
        except GridkitError as exc:
            if len(todo) == 1:
                results[todo[0][0]] = ApiError(400, exc.message)
                return results
            for item in todo:  # find whose report it is: one at a time
                results.update(_take_in(app, store, existing, subs, [item]))
            return results
        new_rows = change.reports.iloc[len(change.reports) - len(ids) :]  # after the old ones
        created = new_rows.iloc[pd.Index(new_rows["report_id"]).get_indexer(ids)]
        mine = _units_of_workers(app)
        rejected = {
            i: err
            for (i, _), code, unit in zip(
                todo,
                created["admin_code"].to_numpy(dtype=object, na_value=None),
                created["unit_id"].to_numpy(dtype=object, na_value=None),
                strict=True,
            )
            if (err := _refusal(subs[i].caller, code, unit, mine)) is not None
        }
        if rejected:
            results.update(rejected)
            todo = [item for item in todo if item[0] not in rejected]
            continue
        actors = {rid: _actor(subs[i].caller) for (i, _), rid in zip(todo, ids, strict=True)}
        rows, events = created.reset_index(drop=True), change.events
        departments = _layer(store, "departments")
        originals = rows.loc[rows["duplicate_of"].isna(), "report_id"].tolist()
        if departments is not None and originals:
            handed = hand_over(
                rows,
                departments=departments,
                assignments=_assignments_of(store, rows["unit_id"]),
                report_ids=originals,
                warn_unrouted=False,  # logged below, once per batch
            )
            rows = handed.reports
            events = pd.concat([events, handed.events], ignore_index=True)
            _log_unrouted(rows)
        events["actor_id"] = pd.array([actors[r] for r in events["report_id"]], dtype="string")
        keys = [subs[i].key for i, _ in todo]
        if any(keys):
            rows["idempotency_key"] = pd.array(keys, dtype="string")
            rows["idempotency_hash"] = pd.array(
                [subs[i].fingerprint for i, _ in todo], dtype="string"
            )
        # the ids and links above hold for the layer as we hold it: if another process
        # wrote it meanwhile, nothing is written (and _intake_batch starts again)
        store.append_many({"reports": rows, "report_events": events}, if_unchanged=True)
        if existing is None:
            app.state.held_reports = HeldReports(store.generation("reports"), rows)
        else:
            existing.append(store.generation("reports"), rows)
        done = pieces(rows, id_col="report_id")
        for pos, (i, _) in enumerate(todo):
            results[i] = _Outcome(rows, pos, False, done[pos])
        return results
    return results


def _log_unrouted(rows: pd.DataFrame) -> None:
    """Log the new reports no department handles (they stay ``reported``, waiting for
    a supervisor): a gap in the departments layer the operator should hear of."""
    stuck = (rows["status"] == "reported").to_numpy(dtype=bool, na_value=False) & rows[
        "duplicate_of"
    ].isna().to_numpy()
    if stuck.any():
        log.warning(
            "no department handles reports %s (category and place); they stay 'reported'",
            ", ".join(rows["report_id"].to_numpy(dtype=object)[stuck]),
        )


def _assignments_of(store, unit_ids: pd.Series) -> pd.DataFrame | None:
    """The assignments of these units only: hand-over looks up nothing else, and the
    whole layer (a row per unit and worker) is not filtered by time for every batch."""
    a = _layer(store, "assignments")
    if a is None:
        return None
    return a[a["unit_id"].isin(unit_ids.dropna().unique()).to_numpy()]


def _next_report_id(app, existing: HeldReports | None) -> str:
    """Sequential ids (R0000001...) continuing from the workspace, kept in memory."""
    state = app.state
    if getattr(state, "report_seq", None) is None:
        taken = pd.Series([], dtype=str) if existing is None else existing.report_ids()
        digits = taken.astype(str).str.extract(r"^R(\d+)$")[0].dropna()
        state.report_seq = int(digits.astype(int).max()) if len(digits) else 0
        state.report_ids = set(taken.astype(str))
    while True:
        state.report_seq += 1
        rid = f"R{state.report_seq:07d}"
        if rid not in state.report_ids:
            state.report_ids.add(rid)
            return rid


def _actor(caller: Principal) -> str:
    return caller.worker_id or caller.name


def _units_of_workers(app) -> dict[str, set[str]]:
    """Units assigned to each worker."""
    store = app.state.store

    def build() -> dict[str, set[str]]:
        a = _layer(store, "assignments")
        if a is None:
            return {}
        return {str(w): set(map(str, g)) for w, g in a.groupby("worker_id")["unit_id"]}

    return _cached(app, "units_of_workers", (store.generation("assignments"),), build)


def _check_places(app, props: dict[str, Any]) -> None:
    """An address-only report's hand-chosen unit and admin area must exist."""
    units, codes = _known_places(app)
    unit, code = props.get("unit_id"), props.get("admin_code")
    if unit and units is not None and unit not in units:
        raise ApiError(422, f"No unit {unit!r} in the grid; choose a unit_id of the units layer.")
    # a code padded with zeros to 12 digits (430202000000) names the same area
    if code and codes is not None and code not in codes and code.rstrip("0") not in codes:
        raise ApiError(
            422,
            f"No admin area {code!r}: choose a code of the admin areas or of a unit's "
            "community, district or city.",
        )


def _known_places(app) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """Unit ids, and admin codes (of admin areas, and every level above a unit's own
    community code), cached per layer version; None where the layer is missing."""
    store = app.state.store

    def build():
        units, admin = _layer(store, "units"), _layer(store, "admin_areas")
        ids = None if units is None else frozenset(units["unit_id"].dropna().astype(str))
        if units is None and admin is None:
            return ids, None
        codes: set[str] = set()
        if admin is not None and "admin_code" in admin:
            codes |= set(admin["admin_code"].dropna().astype(str))
        if units is not None and "admin_code" in units:
            for c in set(units["admin_code"].dropna().astype(str)):  # distinct codes: few
                codes |= {c[:n] for n in range(2, len(c) + 1)}  # every level above
        return ids, frozenset(codes)

    gens = (store.generation("units"), store.generation("admin_areas"))
    return _cached(app, "known_places", gens, build)


def _cached(app, name: str, generations: tuple[int, ...], build: Callable[[], Any]) -> Any:
    """``build()`` cached until the layer generations it depends on change."""
    cache = app.state.geojson_cache
    key = (name, *generations)
    if key not in cache:
        for stale in [k for k in cache if k[0] == name]:
            del cache[stale]
        cache[key] = build()
    return cache[key]


def _refusal(
    caller: Principal, code: str | None, unit: str | None, mine: dict[str, set[str]]
) -> ApiError | None:
    """Why ``caller`` may not file a report located in ``code`` / ``unit``, or None."""
    if caller.scope and not caller.in_scope(code):
        return ApiError(403, f"The report lies in {code}, outside your scope {caller.scope}.")
    if caller.role == "worker" and (unit is None or unit not in mine.get(caller.worker_id, ())):
        return ApiError(
            403,
            f"Workers report on their own units; the point lies in unit "
            f"{unit}, which is not assigned to {caller.worker_id}.",
        )
    return None


@router.patch(
    "/reports/{report_id}",
    summary="Move a report along its lifecycle",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}},
)
def patch_report(request: Request, report_id: str, body: ReportPatch, caller: Caller) -> Response:
    require(caller, "worker", "supervisor", "admin")
    from gridkit.ops.reports import transition

    store = request.app.state.store
    with _write_lock:
        reports = _layer(store, "reports")
        current = _report_of(reports, report_id, caller)
        if caller.role == "worker":
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
            if _changed(new, old):
                values[col] = new
        # the change and its events: one transaction
        store.update(
            "reports", "report_id", report_id, values, append={"report_events": change.events}
        )
        row = store.read("reports")
        row = row[row["report_id"] == report_id]
    return _json(_feature(row, caller, "reports"))


def _report_of(reports: pd.DataFrame | None, report_id: str, caller: Principal) -> pd.DataFrame:
    """The report's row as ``caller`` may act on it: 404 when it does not exist or lies
    outside their scope (not visible), 403 for a worker it is not assigned to."""
    current = None if reports is None else reports[reports["report_id"] == report_id]
    if current is None or not len(current):
        raise ApiError(404, f"No report {report_id!r}.")
    code = current["admin_code"].iloc[0] if "admin_code" in current else None
    if caller.scope and not caller.in_scope(None if pd.isna(code) else str(code)):
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
    _report_of(_layer(request.app.state.store, "reports"), report_id, caller)
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
    from gridkit.ops.patrols import flag_patrols, patrols_from_points

    items = body.patrols if isinstance(body, PatrolBatch) else [body]
    store = request.app.state.store
    with _write_lock:
        known = _layer(store, "patrols")
        owners: dict[str, str] = (
            {}
            if known is None
            else dict(
                zip(known["patrol_id"].astype(str), known["worker_id"].astype(str), strict=True)
            )
        )
        areas = _worker_areas(request.app)
        created, existing, frames = [], [], []
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
            pid = item.patrol_id or _patrol_id(idempotency_key, k, worker, item)
            if pid in owners:
                if owners[pid] != worker:  # another worker's: never dropped as a "retry"
                    raise ApiError(
                        409,
                        f"patrol_id {pid!r} is already another worker's patrol; give each "
                        "patrol an id of its own (a UUID).",
                    )
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
                crs=None if item.crs else WGS84,
            )
            frames.append((pid, item, fixes))
            owners[pid] = worker
        if frames:
            # the whole batch at once: fixes to WGS84 per declared datum, then one
            # track build, one plausibility check and one append per layer
            points = pd.concat(
                [fx if not item.crs else _to_wgs84(fx, item.crs) for _, item, fx in frames],
                ignore_index=True,
            )
            points = gpd.GeoDataFrame(points, geometry="geometry", crs=WGS84)
            area = _service_area(request.app)
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


def _worker_areas(app) -> dict[str, str | None] | None:
    """worker_id -> admin code of the workers layer (None without the layer), cached
    per layer version."""
    store = app.state.store

    def build() -> dict[str, str | None] | None:
        workers = _layer(store, "workers")
        if workers is None:
            return None
        codes = workers.get("admin_code", pd.Series(None, index=workers.index, dtype=object))
        return {
            str(w): None if pd.isna(c) else str(c)
            for w, c in zip(workers["worker_id"], codes, strict=True)
        }

    return _cached(app, "worker_areas", (store.generation("workers"),), build)


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
