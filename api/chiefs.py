"""River chiefs' figures: compliance by chief (``/stats/chiefs``) and the summons list
(``/stats/summons``), JSON or XLSX, limited to the caller's scope.

Both come from :func:`gridkit.ops.summons.chief_assessment` over the stored layers
(``river_chiefs``, ``units``, ``patrols``, ``workers``, ``reports``, ``summons``), kept
until one of them changes.
"""

from __future__ import annotations

from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, Query
from starlette.responses import Response

from api.auth import Caller, Principal
from api.errors import ApiError
from api.service import Service, Svc
from api.stats import XLSX, Format, _cached, _layer, _require, _respond
from gridkit.ops.patrols import RulesError
from gridkit.ops.summons import ChiefAssessment, chief_assessment

router = APIRouter(
    prefix="/stats",
    tags=["figures"],
    responses={200: {"content": {"application/json": {}, XLSX: {}}}},
)
ChiefPeriod = Annotated[
    str,
    Query(
        pattern=r"^\d{4}(-H[12]|-Q[1-4]|-(0[1-9]|1[0-2])|-W(0[1-9]|[1-4]\d|5[0-3]))?$",
        description="A calendar period in Asia/Shanghai: 2026, 2026-H1, 2026-Q1, 2026-03 "
        "or 2026-W10.",
        examples=["2026-Q1"],
    ),
]
Level = Annotated[
    Literal["province", "city", "county", "township", "village", "general"] | None,
    Query(description="Only the chiefs of this level."),
]
_LAYERS = ("river_chiefs", "units", "patrols", "workers", "reports", "summons")


def _season(
    service: Service, caller: Principal, period: str, level: str | None
) -> dict[str, pd.DataFrame]:
    def build() -> dict[str, pd.DataFrame]:
        layers = {name: _layer(service, name, caller) for name in _LAYERS}
        _require(layers["river_chiefs"], "river chiefs")
        _require(layers["units"], "units")
        try:
            season: ChiefAssessment = chief_assessment(layers, period, level=level)
        except RulesError as exc:
            raise ApiError(400, str(exc)) from None
        return {
            "chiefs": season.compliance,
            "by_level": season.by_level(),
            "assessment": season.assessment,
            "summons": season.summons,
        }

    return _cached(service, ("chiefs", caller.scope, period, level), _LAYERS, build)


@router.get("/chiefs", summary="River chiefs' patrol compliance, per chief and rule")
def chiefs(
    service: Svc, caller: Caller, period: ChiefPeriod, level: Level = None, format: Format = "json"
) -> Response:
    """One row per chief (appointment) and rule of his level reported for the period:
    ``required``, ``done`` (verified patrols), ``unverified`` (paper records),
    ``compliant``; ``by_level`` sums them."""
    tables = _season(service, caller, period, level)
    c = tables["chiefs"]
    summary = {
        "period": period,
        "level": level,
        "rows": len(c),
        "compliant": int(c["compliant"].sum()),
        "unverified": int(c["unverified"].sum()),
    }
    out = {"chiefs": c, "by_level": tables["by_level"]}
    return _respond(out, format, f"chiefs-{period}", summary, caller)


@router.get("/summons", summary="River chiefs to be summoned (约谈), why, and summons held")
def summons(
    service: Svc, caller: Caller, period: ChiefPeriod, level: Level = None, format: Format = "json"
) -> Response:
    """Chiefs below a rule or at the bottom of their ranking, with the reason and the
    summons held this period; ``assessment`` has every chief's score and rank."""
    tables = _season(service, caller, period, level)
    out = {"summons": tables["summons"], "assessment": tables["assessment"]}
    summary = {"period": period, "level": level, "summoned": len(tables["summons"])}
    return _respond(out, format, f"summons-{period}", summary, caller)
