"""Figures for supervisors: coverage, compliance, hotspots and assessment (JSON or XLSX).

Each figure is computed by gridkit from the stored layers, limited to the caller's
scope, and cached until one of the layers behind it changes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, Any, Literal

import orjson
import pandas as pd
from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from api.auth import Caller, Principal
from api.errors import ApiError
from api.service import Service, Svc
from gridkit import codes
from gridkit.ops.assess import Assessment, assess_period
from gridkit.ops.hotspots import hotspots as gi
from gridkit.ops.patrols import patrol_compliance
from gridkit.ops.privacy import mask_frame

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
router = APIRouter(
    prefix="/stats",
    tags=["figures"],
    responses={200: {"content": {"application/json": {}, XLSX: {}}}},
)
Format = Annotated[Literal["json", "xlsx"], Query(description="json or xlsx.")]
Day = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD (UTC)")]


def _layer(service: Service, name: str, caller: Principal) -> pd.DataFrame | None:
    df = service.layer(name)
    if df is not None and caller.scope and "admin_code" in df.columns:
        df = df[codes.in_scope(df["admin_code"], caller.scope).to_numpy()]
    return df


def _require(df: pd.DataFrame | None, name: str) -> pd.DataFrame:
    if df is None or len(df) == 0:
        raise ApiError(404, f"No {name} in the workspace (or in your scope).")
    return df


def _cached(
    service: Service,
    key: tuple,
    layers: tuple[str, ...],
    build: Callable[[], dict[str, pd.DataFrame]],
) -> dict[str, pd.DataFrame]:
    return service.current(service.stats_cache, key, layers, build)


def _respond(
    tables: dict[str, pd.DataFrame],
    fmt: str,
    name: str,
    summary: dict[str, Any],
    caller: Principal,
) -> Response:
    if not caller.sees_private:  # cached figures are shared: masked on the way out
        tables = {k: mask_frame(df) for k, df in tables.items()}
    if fmt == "xlsx":
        buf = io.BytesIO()
        with pd.ExcelWriter(buf, engine="openpyxl") as xw:
            _naive(pd.DataFrame([summary])).to_excel(xw, sheet_name="summary", index=False)
            for sheet, df in tables.items():
                _naive(df).to_excel(xw, sheet_name=sheet[:31], index=False)
        return Response(
            buf.getvalue(),
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    body = {
        "summary": summary,
        **{
            k: orjson.loads(df.to_json(orient="records", date_format="iso", force_ascii=False))
            for k, df in tables.items()
        },
    }
    return Response(orjson.dumps(body), media_type="application/json")


def _naive(df: pd.DataFrame) -> pd.DataFrame:
    """Excel has no time zones (UTC wall time) and refuses control characters."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE  # optional: the xlsx answers only

    out = pd.DataFrame(df.drop(columns="geometry", errors="ignore"))
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.tz_convert("UTC").dt.tz_localize(None)
        elif out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = out[col].map(
                lambda v: ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v
            )
    return out


def _district(admin_codes: pd.Series) -> pd.Series:
    """The county-level area of each code (a unit above that level keeps its own)."""
    own = codes.normalise(admin_codes.astype(str))
    return codes.district(own).fillna(own)


def _period(service: Svc, caller: Caller, start: Day = None, end: Day = None) -> tuple[str, str]:
    """Dependency: the period of a figure, ``start`` and ``end`` or the months of the
    patrols stored (from the first month's first day to the day after the last's).

    Both days lie between the settings' ``earliest_date`` and a year from today, and
    the period spans at most ``max_period_days``: what a figure costs is bounded by
    what the caller may ask."""
    settings = service.settings
    earliest = settings.earliest_date.isoformat()
    latest = (date.today() + timedelta(days=366)).isoformat()
    for name, value in (("start", start), ("end", end)):
        if value is None:
            continue
        try:
            date.fromisoformat(value)
        except ValueError:
            raise ApiError(400, f"{name}={value!r} is not a calendar date (YYYY-MM-DD).") from None
        if not earliest <= value <= latest:
            raise ApiError(
                400,
                f"{name}={value} is outside the dates served ({earliest} to {latest}); "
                f"figures cover {earliest} to a year ahead.",
            )
    if not (start and end):
        start, end = _patrol_months(service, caller, start, end)
    if start >= end:
        raise ApiError(400, f"start {start} must be before end {end}.")
    days = (date.fromisoformat(end) - date.fromisoformat(start)).days
    if days > settings.max_period_days:
        raise ApiError(
            400,
            f"The period {start} to {end} spans {days} days; a figure covers at most "
            f"{settings.max_period_days} days: ask for it in parts.",
        )
    return start, end


def _patrol_months(
    service: Service, caller: Principal, start: str | None, end: str | None
) -> tuple[str, str]:
    """``start`` and ``end``, the one not given taken from the months of the patrols."""
    patrols = _layer(service, "patrols", caller)
    if patrols is None or len(patrols) == 0:
        raise ApiError(404, "No patrols in the workspace (or in your scope).")
    t = pd.to_datetime(patrols["started_at"], utc=True)
    first = t.min().strftime("%Y-%m-01")
    last = (t.max() + pd.offsets.MonthBegin(1)).strftime("%Y-%m-01")
    return start or first, end or last


Period = Annotated[tuple[str, str], Depends(_period)]


@router.get("/coverage", summary="Units with a worker, per kind and district")
def coverage(service: Svc, caller: Caller, format: Format = "json") -> Response:
    def build() -> dict[str, pd.DataFrame]:
        units = _require(_layer(service, "units", caller), "units")
        assignments = _layer(service, "assignments", caller)
        staffed = set() if assignments is None else set(assignments["unit_id"])
        df = pd.DataFrame(
            {
                "district": _district(units["admin_code"]),
                "kind": units["kind"],
                "staffed": units["unit_id"].isin(staffed),
            }
        )
        table = (
            df.groupby(["district", "kind"])["staffed"]
            .agg(units="size", staffed="sum")
            .reset_index()
        )
        table["share"] = (table["staffed"] / table["units"]).round(4)
        return {"by_district": table}

    tables = _cached(service, ("coverage", caller.scope), ("units", "assignments"), build)
    t = tables["by_district"]
    summary = {
        "units": int(t["units"].sum()),
        "staffed": int(t["staffed"].sum()),
        "share": round(float(t["staffed"].sum() / max(t["units"].sum(), 1)), 4),
    }
    return _respond(tables, format, "coverage", summary, caller)


@router.get("/compliance", summary="Patrol compliance per worker and unit")
def compliance(service: Svc, caller: Caller, period: Period, format: Format = "json") -> Response:
    start, end = period

    def build() -> dict[str, pd.DataFrame]:
        units = _require(_layer(service, "units", caller), "units")
        patrols = _require(_layer(service, "patrols", caller), "patrols")
        assignments = _require(_layer(service, "assignments", caller), "assignments")
        workers = _layer(service, "workers", caller)
        return {"rows": _compliance(patrols, assignments, units, workers, start, end)}

    tables = _cached(
        service,
        ("compliance", caller.scope, start, end),
        ("units", "patrols", "assignments"),
        build,
    )
    rows = tables["rows"]
    summary = {
        "period": f"{start}/{end}",
        "rows": len(rows),
        "compliant_share": round(float(rows["compliant"].mean()), 4) if len(rows) else None,
    }
    return _respond(tables, format, "compliance", summary, caller)


def _compliance(
    patrols: pd.DataFrame,
    assignments: pd.DataFrame,
    units: pd.DataFrame,
    workers: pd.DataFrame | None,
    start: str,
    end: str,
) -> pd.DataFrame:
    """Patrol compliance of the assignments of ``units`` over ``start``..``end``."""
    return patrol_compliance(
        patrols,
        assignments[assignments["unit_id"].isin(units["unit_id"])],
        period=(start, end),
        units=units,
        workers=workers,
        now=end,
    )


@router.get("/hotspots", summary="Reports per unit with Getis-Ord Gi* classes")
def hotspots(
    service: Svc,
    caller: Caller,
    category: Annotated[str | None, Query(max_length=64)] = None,
    top: Annotated[int, Query(ge=1, le=1000)] = 20,
    format: Format = "json",
) -> Response:
    def build() -> dict[str, pd.DataFrame]:
        units = _require(_layer(service, "units", caller), "units")
        grids = units[units["kind"] == "community_grid"]
        reports = _require(_layer(service, "reports", caller), "reports")
        try:
            hot = gi(
                reports,
                _require(grids, "community grid units"),
                category=category,
                permutations=199,
                seed=1,
            )
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        cols = ["unit_id", "admin_code", "count", "rate", "gi_z", "gi_p", "hotspot"]
        return {"units": pd.DataFrame(hot[cols]).sort_values("gi_z", ascending=False)}

    tables = _cached(service, ("hotspots", caller.scope, category), ("units", "reports"), build)
    units = tables["units"]
    summary = {
        "category": category,
        "units": len(units),
        **{k: int(v) for k, v in units["hotspot"].value_counts().items()},
    }
    return _respond({"units": units.head(top)}, format, "hotspots", summary, caller)


@router.get("/assessment", summary="Scores and ranking (红黑榜) of workers and departments")
def assessment(service: Svc, caller: Caller, period: Period, format: Format = "json") -> Response:
    """Workers scored on collection, verification and patrols; departments on handling
    (on time per stage, rework, first-time fix, working hours); areas on every stage.
    ``format=xlsx`` is the workbook ``gridkit assess`` writes (Chinese headers, frozen,
    filtered)."""
    start, end = period
    names = ("workers", "patrols", "assignments", "reports", "report_events", "departments")

    def build() -> dict[str, pd.DataFrame]:
        layers = {name: _layer(service, name, caller) for name in (*names, "admin_areas")}
        layers["units"] = _require(_layer(service, "units", caller), "units")
        return dict(assess_period(layers, (start, end)).tables())

    tables = _cached(service, ("assessment", caller.scope, start, end), ("units", *names), build)
    summary = {"period": f"{start}/{end}", **{k: len(v) for k, v in tables.items()}}
    if format == "xlsx":
        shown = tables if caller.sees_private else {k: mask_frame(v) for k, v in tables.items()}
        buf = Assessment.from_tables(shown).to_xlsx(io.BytesIO())
        return Response(
            buf.getvalue(),
            media_type=XLSX,
            headers={"Content-Disposition": 'attachment; filename="assessment.xlsx"'},
        )
    return _respond(tables, format, "assessment", summary, caller)
