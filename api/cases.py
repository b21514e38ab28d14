"""The case workflow over HTTP: a step per request, my cases, filters, escalation.

``POST /reports/{id}/actions`` takes one step of a case (立案, 派遣, 受理, 退回, 延期,
反馈, 核查, 返工, 结案 ...; the ``[actions]`` of ``rules/reports.toml``); who may take it
follows from the caller's appointments (:mod:`gridkit.ops.access`). The items of
``reports`` filter by status, category, department, assignee, overdue and "mine"
(declared at ``/collections/reports/queryables``). The service escalates overdue cases
on a schedule (``GRIDKIT_ESCALATE_EVERY_S``), as ``gridkit escalate`` does from cron.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pandas as pd
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api import evidence
from api.auth import Caller, Principal, require
from api.errors import ApiError
from api.models import ReportAction
from api.responses import feature_of, json_response
from api.service import Service, Svc
from api.writer import actor
from gridkit.layers import LAYERS
from gridkit.ops.access import case_roles, may
from gridkit.ops.cases import EscalationWrite, act, escalate_each, overdue
from gridkit.ops.reports import report_rules
from gridkit.store import Store
from gridkit.store.base import conditional_update

log = logging.getLogger("gridkit.api")

#: the roles whose keys may take steps of a case (what each may take: their appointments)
ACTING = ("worker", "dispatcher", "supervisor", "department", "admin")


def visible_case(reports: pd.DataFrame | None, report_id: str, caller: Principal) -> pd.DataFrame:
    """The case's row, 404 when it does not exist or the caller may not see it."""
    row = None if reports is None else reports[reports["report_id"] == report_id]
    if row is None or not len(row) or not sees_cases(row, caller)[0]:
        raise ApiError(404, f"No report {report_id!r}.")
    return row


def sees_cases(reports: pd.DataFrame, caller: Principal) -> np.ndarray:
    """Which cases the caller may see: those in their scope; a department key only its
    department's (as lead or in support)."""
    codes = reports["admin_code"] if "admin_code" in reports else pd.Series([None] * len(reports))
    seen = np.fromiter(
        (caller.in_scope(None if pd.isna(c) else str(c)) for c in codes),
        dtype=bool,
        count=len(reports),
    )
    if caller.role == "department":
        mine = case_roles(reports, caller.person)["department"].to_numpy()
        if "support_department_ids" in reports and caller.department_id:
            support = reports["support_department_ids"].astype("string").fillna("")
            # not in place: with Arrow strings, to_numpy() above may be read-only
            mine = mine | (
                support.str.split(";")
                .map(lambda ids: caller.department_id in ids)
                .to_numpy(dtype=bool)
            )
        seen &= mine
    return seen


def take_action(
    service: Service,
    caller: Principal,
    report_id: str,
    action: str,
    *,
    assignee_id: str | None = None,
    **kw: Any,
) -> Response:
    """Take ``action`` on the case as ``caller`` (and, when given, set its assignee in
    the same transaction); the case as it is now."""
    require(caller, *ACTING)
    store = service.store
    with service.write_lock:
        reports = service.layer("reports")
        current = visible_case(reports, report_id, caller)
        why = may(caller.person, action, current.iloc[0].to_dict())
        if why is not None:
            raise ApiError(403, f"{caller.name} may not {why}.")
        change = act(
            reports,
            report_id,
            action,
            actor_id=actor(caller),
            departments=service.layer("departments"),
            assignments=service.layer("assignments"),  # the unit's worker verifies
            # only photos received count, whatever the body names
            uploaded=evidence.of_report(service.layer(evidence.TABLE), report_id),
            **kw,
        )
        after = change.reports[change.reports["report_id"] == report_id]
        values = {
            col: after[col].iloc[0]
            for col in after.columns
            if col != after.geometry.name
            and _changed(after[col].iloc[0], current[col].iloc[0] if col in current else None)
        }
        if assignee_id is not None:
            values["assignee_id"] = assignee_id
        # the change and its events: one transaction
        store.update(
            "reports", "report_id", report_id, values, append={"report_events": change.events}
        )
        row = store.read("reports")
        row = row[row["report_id"] == report_id]
    return json_response(feature_of(row, caller, "reports"))


def _changed(new: object, old: object) -> bool:
    new_na, old_na = new is None or bool(pd.isna(new)), old is None or bool(pd.isna(old))
    if new_na or old_na:
        return new_na != old_na
    return bool(new != old)


# --------------------------------------------------------------------------- escalation


def run_escalation(service: Service, *, at: object = None) -> list[str]:
    """Escalate the overdue cases (:func:`gridkit.ops.cases.escalate_each`): each case
    decided under the write lock from the reports as stored then, its change and event
    written in one transaction only if the reports are unchanged since (another process
    of the service, or ``gridkit escalate``, may be escalating too: then the case is
    decided again and found escalated). The case ids escalated."""
    reports = service.layer("reports")
    if reports is None or not len(reports):
        return []
    events = escalate_each(
        lambda: service.store.read("reports"),
        conditional_write(service.store),
        at=at,
        # a report arriving meanwhile waits for one case, not for the run
        guard=lambda: service.write_lock,
        admin_areas=service.layer("admin_areas"),
        staff=service.layer("staff"),
    )
    if not len(events):
        return []
    done = events["report_id"].astype(str).tolist()
    log.info("escalation: %d case(s) escalated (督办)", len(done))
    return done


def conditional_write(store: Store) -> EscalationWrite:
    """A case's escalation and its events in one transaction, written only when the
    reports are as this store last read them (False, nothing written, otherwise)."""
    return conditional_update(store, "reports", "report_id", "report_events")


async def _escalation_loop(service: Service, every_s: float) -> None:
    while True:
        try:
            await run_in_threadpool(run_escalation, service)
        except Exception:  # a failed run is retried at the next one, never silently
            log.exception("escalation run failed")
        await asyncio.sleep(every_s)


@contextlib.asynccontextmanager
async def escalation(app: Any) -> AsyncIterator[None]:
    """At startup and every ``escalate_every_s`` seconds: escalate the overdue cases.
    The state of each lapse is in the workspace, so a restart escalates nothing twice."""
    every = app.state.service.settings.escalate_every_s
    task = asyncio.create_task(_escalation_loop(app.state.service, every)) if every > 0 else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()


router = APIRouter(tags=["cases"], lifespan=escalation)


@router.post(
    "/reports/{report_id}/actions",
    summary="Take a step of the case workflow (立案, 派遣, 受理, 退回, 反馈, 核查, 结案 ...)",
    response_class=Response,
)
def post_action(report_id: str, body: ReportAction, caller: Caller, service: Svc) -> Response:
    return take_action(
        service,
        caller,
        report_id,
        body.action,
        note=body.note,
        department_id=body.department_id,
        hours=body.hours,
        evidence=body.evidence,
    )


# --------------------------------------------------------------------------- filters

#: the properties of the reports' items a client may filter on (OGC queryables)
QUERYABLES = {
    "status": ("string", "Stage of the case"),
    "category": ("string", "Category key of the rules"),
    "lead_department_id": ("string", "Lead department"),
    "assignee_id": ("string", "Grid worker who verifies"),
    "overdue": ("boolean", "Past the deadline of its current stage"),
    "mine": (
        "string",
        "Cases where the caller holds this role (or any): dispatcher, "
        "supervisor, department, verifier, any",
    ),
}


def queryables(base: str) -> dict:
    """The JSON Schema of the reports' queryables (OGC API - Features part 3)."""
    rules = report_rules()
    props: dict[str, dict] = {}
    for name, (kind, title) in QUERYABLES.items():
        props[name] = {"title": title, "type": kind}
    props["status"]["enum"] = list(rules.stages)
    props["category"]["enum"] = list(rules.categories)
    props["mine"]["enum"] = ["any", "dispatcher", "supervisor", "department", "verifier"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{base}/collections/reports/queryables",
        "type": "object",
        "title": "reports",
        "properties": props,
        "additionalProperties": False,
    }


def _check_known_values(col: str, wanted: list[str], reports: pd.DataFrame) -> None:
    """400 for a stage or category neither the rules nor the cases know (a misspelt
    ``status=handlng`` would otherwise answer "no cases", as if there were none)."""
    if col == "status":
        spec = next(c for c in LAYERS["reports"].columns if c.name == "status")
        known = list(spec.choices or ())
    elif col == "category":
        known = list(report_rules().categories)
        if col in reports.columns:  # categories of imported cases the rules lack
            known += sorted(set(reports[col].dropna().astype(str)) - set(known))
    else:
        return
    unknown = [v for v in wanted if v not in known]
    if unknown and known:
        raise ApiError(
            400,
            f"{col}={','.join(unknown)}: not a known {'stage' if col == 'status' else col}; "
            f"give one or more of {', '.join(known)}.",
        )


def report_mask(reports: pd.DataFrame, caller: Principal, params: dict[str, Any]) -> np.ndarray:
    """Rows of ``reports`` matching the filters asked (``None`` values: not asked)."""
    mask = sees_cases(reports, caller)
    for col in ("status", "category", "lead_department_id", "assignee_id"):
        value = params.get(col)
        if value is not None:
            wanted = [v for v in str(value).split(",") if v]
            _check_known_values(col, wanted, reports)
            mask &= reports[col].astype("string").isin(wanted).to_numpy(dtype=bool, na_value=False)
    if params.get("overdue") is not None:
        late = overdue(reports).to_numpy(dtype=bool)
        mask &= late if params["overdue"] else ~late
    mine = params.get("mine")
    if mine is not None:
        roles = case_roles(reports, caller.person)
        if mine == "any":
            mask &= roles.any(axis=1).to_numpy()
        elif mine in roles:
            mask &= roles[mine].to_numpy()
        else:
            raise ApiError(400, f"mine={mine!r}: give any, {', '.join(roles.columns)}.")
    return mask
