"""Request bodies: reports, report changes, patrols and the form of a new grid version.

Each model checks form only (types, lengths, plausible times); what a body means
(which unit, which worker, whether the caller may) is decided by the routes with
gridkit and the store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import File, Form, Header, Query, UploadFile
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "EARLIEST",
    "NUL",
    "Body",
    "EvidenceForm",
    "EvidenceKindQuery",
    "Fix",
    "IdemKey",
    "PatrolBatch",
    "PatrolIn",
    "PlausibleTime",
    "PointGeometry",
    "ReportFeature",
    "ReportIn",
    "ReportPatch",
    "ReportProps",
    "UnitsUpload",
    "VersionCrs",
    "VersionNote",
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

NUL = "\x00"


def _nul_in(value: object) -> bool:
    """Whether a NUL character is in a text of ``value`` (nested dicts and lists)."""
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(_nul_in(k) or _nul_in(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_nul_in(v) for v in value)
    return False


class Body(BaseModel):
    """A request body: unknown fields refused, and no NUL character (``\\u0000``) in any
    text: no store keeps one (PostgreSQL refuses it, and one such report failed every
    report written with it), and no person types one."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        if _nul_in(value):
            raise ValueError("text may not contain NUL characters (\\u0000)")
        return value


#: the ``Idempotency-Key`` header of a submission
IdemKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=128,
        description="Retries with the same key create nothing twice.",
    ),
]


class ReportProps(Body):
    """What a report says, whatever its form (flat JSON or a Feature's properties)."""

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


class ReportIn(ReportProps):
    """A report as flat JSON."""

    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)


class PointGeometry(Body):
    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=3)


class ReportFeature(Body):
    """A report as a GeoJSON Feature with a Point."""

    type: Literal["Feature"]
    geometry: PointGeometry | None = None
    properties: ReportProps


class ReportPatch(Body):
    """A step of a report's lifecycle (``PATCH /reports/{id}``)."""

    status: Literal[
        "opened",
        "dispatched",
        "handling",
        "reported_back",
        "verified",
        "closed",
        "returned",
        "rejected",
        # the first wave's names: dispatched, handling, reported_back
        "assigned",
        "in_progress",
        "resolved",
    ]
    note: str | None = Field(None, max_length=2000)
    evidence: str | None = Field(
        None, max_length=1000, description="e.g. 'before:abc.jpg;after:def.jpg'"
    )
    assignee_id: str | None = Field(None, max_length=64)


class ReportAction(Body):
    """A step of the case workflow (``POST /reports/{id}/actions``): the ``[actions]``
    of ``rules/reports.toml``."""

    action: Literal[
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
    ] = Field(
        description="立案 open, 派遣 dispatch, 受理 accept, 退回 return, 反馈 report_back, "
        "核查 verify, 返工 rework, 结案 close ..."
    )
    note: str | None = Field(None, max_length=2000, description="The reason, where one is needed.")
    department_id: str | None = Field(
        None, max_length=64, description="dispatch/redispatch: the department (default: routed)."
    )
    hours: float | None = Field(
        None, gt=0, le=24 * 60, description="extend: hours added to the handling deadline."
    )
    evidence: str | None = Field(
        None, max_length=1000, description="e.g. 'after:def.jpg' (uploaded photos only count)"
    )


EvidenceKind = Literal["before", "after"]


class EvidenceForm(BaseModel):
    """The form fields sent with an evidence photo (``POST /reports/{id}/evidence``)."""

    kind: EvidenceKind | None = Field(
        None, description="before (the problem) or after (the fix); default after."
    )
    taken_at: PlausibleTime | None = Field(None, description="When the photo was taken.")
    lon: float | None = Field(None, ge=-180, le=180, description="Where it was taken (WGS84).")
    lat: float | None = Field(None, ge=-90, le=90)


#: ``?kind=`` as older clients send it (the form field ``kind`` is the way)
EvidenceKindQuery = Annotated[
    EvidenceKind | None, Query(alias="kind", description="Deprecated: send kind in the form.")
]


class Fix(Body):
    """One position of a patrol."""

    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    t: PlausibleTime
    accuracy_m: float | None = Field(None, ge=0, le=10_000)


class ChecklistEntry(Body):
    """One checklist item's result, with a note and the photo's evidence name."""

    result: Literal["ok", "problem", "na"]
    note: str | None = Field(None, max_length=500)
    photo: str | None = Field(None, max_length=120)
    reported: bool = Field(
        False, description="Already sent as a report (the field app does): not handed over again."
    )


class PatrolIn(Body):
    """One patrol: its fixes, whose it is, and the client's id when recorded offline."""

    patrol_id: str | None = Field(
        None,
        max_length=64,
        pattern=r"^[\w.:-]+$",
        description="Client id of a patrol recorded offline.",
    )
    worker_id: str | None = Field(None, min_length=1, max_length=64)
    crs: str | None = Field(None, min_length=1, max_length=32)
    notes: str | None = Field(None, max_length=2000)
    mode: Literal["foot", "bike", "boat", "car", "drone"] | None = Field(
        None, description="How the patrol went: each mode has its own plausibility rules."
    )
    checklist: dict[str, ChecklistEntry | Literal["ok", "problem", "na"]] | None = Field(
        None,
        max_length=50,
        description="看/查/交 results by item key (patrol_rules.toml): ok, problem or na; "
        "a problem becomes a case handed over like any other.",
    )
    points: list[Fix] = Field(min_length=1, max_length=20_000)


class PatrolBatch(Body):
    """Patrols recorded offline, uploaded together."""

    patrols: list[PatrolIn] = Field(min_length=1, max_length=200)


# ------------------------------------------------------------------ POST /versions (a form)

UnitsUpload = Annotated[
    UploadFile,
    File(description="The whole grid: a GeoPackage with a 'units' layer, or GeoJSON."),
]


def _no_nul(value: str | None) -> str | None:
    if value is not None and NUL in value:
        raise ValueError("text may not contain NUL characters (\\u0000)")
    return value


VersionNote = Annotated[
    str, Form(max_length=2000, description="What changed and why."), AfterValidator(_no_nul)
]
VersionCrs = Annotated[
    str | None,
    Form(max_length=32, description="Datum of a file that declares none."),
    AfterValidator(_no_nul),
]
