"""``gridkit escalate``: the escalation (督办) of overdue cases, from cron, as the
service does on its schedule."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer

from gridkit.cli.times import time_option
from gridkit.cli.util import console, plural
from gridkit.errors import GridkitError

if TYPE_CHECKING:
    from gridkit.ops.cases import EscalationWrite
    from gridkit.store import Store

__all__ = ["escalate_cmd"]


def escalate_cmd(
    workspace: Annotated[
        Path, typer.Argument(help="Workspace GeoPackage or postgresql:// URL (reports).")
    ],
    at: Annotated[
        pd.Timestamp | None,
        time_option("--at", help="Escalate as at this time (ISO 8601; default now)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be escalated; write nothing.")
    ] = False,
) -> None:
    """Escalate (督办) the cases past the deadline of their stage, one admin level up and
    again every repeat_h hours (rules/reports.toml), each with an event in the case's
    history. A lapse is never escalated twice: running it again changes nothing."""
    from gridkit.ops.cases import escalate, escalate_each
    from gridkit.store import open_store, shown

    store = open_store(workspace)
    if "reports" not in store.layers():
        raise GridkitError(
            f"{shown(workspace)}: no reports layer, so no case to escalate.",
            hint="Escalate a served workspace (gridkit serve) or the demo's.",
        )
    have = set(store.layers())
    options = {
        "admin_areas": store.read("admin_areas") if "admin_areas" in have else None,
        "staff": store.read("staff") if "staff" in have else None,
    }
    if dry_run:
        change = escalate(store.read("reports"), at=at, **options)
        events, after = change.events, change.reports
    else:  # each case written only if no other run escalated it meanwhile
        events = escalate_each(
            lambda: store.read("reports"), conditional_write(store), at=at, **options
        )
        after = store.read("reports")
    if not len(events):
        console.print("no case to escalate: none has a new lapse or a new level")
        return
    ids = events["report_id"].unique()
    levels = after.set_index("report_id").loc[ids, "escalation_level"].astype("Int64")
    by_level = ", ".join(f"level {k}: {v}" for k, v in levels.value_counts().sort_index().items())
    verb = "would escalate" if dry_run else "escalated"
    console.print(f"{verb} {plural(len(ids), 'case')} (督办): {by_level}")
    for note, rid in list(zip(events["note"], events["report_id"], strict=True))[:10]:
        console.print(f"  {rid}: {note}")
    if len(ids) > 10:
        console.print(f"  ... and {len(ids) - 10} more (see report_events)")


def conditional_write(store: Store) -> EscalationWrite:
    """A case's escalation and its events in one transaction, written only when the
    reports are as ``store`` last read them (False, nothing written, otherwise)."""
    from gridkit.store.base import conditional_update

    return conditional_update(store, "reports", "report_id", "report_events")
