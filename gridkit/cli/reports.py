"""``gridkit reports import|export``, ``gridkit callbacks record|satisfaction`` and
``gridkit missed``: residents' and the hotline's cases at the command line (the
functions of :mod:`gridkit.ops.hotline`, :mod:`gridkit.ops.callbacks` and
:mod:`gridkit.ops.missed` over a workspace)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from gridkit.cli.times import time_option
from gridkit.cli.util import (
    ColumnsOption,
    CrsOption,
    EncodingOption,
    console,
    crs_for,
    plural,
    write_output,
)
from gridkit.errors import InputFileError
from gridkit.store import shown

__all__ = ["callbacks_app", "heads_cmd", "missed_cmd", "register", "reports_app", "targets_cmd"]

reports_app = typer.Typer(
    help="Cases from outside: hotline tickets in (12345 exports), results out.",
    no_args_is_help=True,
)
callbacks_app = typer.Typer(
    help="回访: callbacks after closing (a dissatisfied answer reopens) and satisfaction.",
    no_args_is_help=True,
)

WorkspaceOption = Annotated[
    Path,
    typer.Option(
        "--workspace", "-w", help="Workspace GeoPackage or postgresql:// URL (read and written)."
    ),
]


def _store(workspace: Path):
    """The store of a workspace GeoPackage or database URL (as every command opens it)."""
    from gridkit.store import check_workspace, database_url, open_store

    if database_url(workspace) is None and not workspace.exists():
        raise InputFileError(
            f"{shown(workspace)}: no such workspace.", hint="Build one first, e.g. gridkit demo."
        )
    return open_store(check_workspace(workspace))


def _layer(store, name: str):
    return store.read(name) if name in store.layers() else None


def _columns(pairs: list[str] | None) -> dict[str, str]:
    out = {}
    for p in pairs or []:
        if "=" not in p:
            raise typer.BadParameter(f"{p!r}: give SRC=DST, e.g. 编号=ticket_id.")
        src, dst = p.split("=", 1)
        out[src.strip()] = dst.strip()
    return out


@reports_app.command("import")
def import_cmd(
    export: Annotated[Path, typer.Argument(help="The hotline's export: .csv or .xlsx.")],
    workspace: WorkspaceOption,
    sheet: Annotated[
        str | None, typer.Option("--sheet", "--layer", help="Workbook sheet (layer).")
    ] = None,
    encoding: EncodingOption = None,
    columns: ColumnsOption = None,
    crs: CrsOption = None,
    min_confidence: Annotated[
        float,
        typer.Option("--min-confidence", min=0.0, max=1.0, help="Addresses matched below: review."),
    ] = 0.7,
    review: Annotated[
        Path | None,
        typer.Option("--review", help="Write the review queue here too (.csv or .xlsx)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be taken in; write nothing.")
    ] = False,
) -> None:
    """Take a 12345 export in: one case per ticket (a ticket sent again is the same
    case), address-only tickets placed by the workspace's gazetteer; uncertain places
    and unknown categories go to the review queue (layer ticket_review)."""
    import geopandas as gpd
    import pandas as pd

    from gridkit.crs import to_wgs84
    from gridkit.io import write_table
    from gridkit.ops.cases import auto_dispatch
    from gridkit.ops.hotline import read_hotline_export, take_in_tickets

    store = _store(workspace)
    tickets = read_hotline_export(export, sheet=sheet, encoding=encoding, columns=_columns(columns))
    datum = crs_for(crs, "reports")  # hotline systems often give GCJ-02 or BD-09 points
    if datum is not None and isinstance(tickets, gpd.GeoDataFrame):
        tickets = to_wgs84(tickets, crs=datum)
    got = take_in_tickets(
        tickets,
        reports=_layer(store, "reports"),
        units=_layer(store, "units"),
        admin_areas=_layer(store, "admin_areas"),
        communities=_layer(store, "communities"),
        buildings=_layer(store, "buildings"),
        min_confidence=min_confidence,
        actor_id="hotline",
    )
    console.print(
        f"{export}: {plural(len(tickets), 'ticket')}: {plural(len(got.created), 'new case')}, "
        f"{len(got.resent):,} sent again (same case), "
        f"{len(got.review):,} left for review"
    )
    if dry_run:
        return
    new = got.reports[got.reports["report_id"].isin(got.created).to_numpy()]
    events = got.events
    departments = _layer(store, "departments")
    originals = new.loc[new["duplicate_of"].isna().to_numpy(), "report_id"].tolist()
    if len(new) and departments is not None and originals:
        # as for any new case: the categories the rules open at once are dispatched
        # now (actor "system"); the others wait in 'collected' for 立案
        handed = auto_dispatch(
            new,
            departments=departments,
            assignments=_layer(store, "assignments"),
            report_ids=originals,
            warn_unrouted=False,
        )
        new = handed.reports
        events = pd.concat([events, handed.events.assign(actor_id="system")], ignore_index=True)
    if len(new):
        store.append_many({"reports": new.reset_index(drop=True), "report_events": events})
    queued = _layer(store, "ticket_review")
    fresh = got.review
    if queued is not None and len(fresh):  # a ticket sent again is queued once
        key = ["ticket_system", "ticket_id", "reason"]
        seen = pd.MultiIndex.from_frame(queued[key].astype(str))
        fresh = fresh[~pd.MultiIndex.from_frame(fresh[key].astype(str)).isin(seen)]
    if len(fresh):
        store.append("ticket_review", fresh)
        if review is not None:
            console.print(f"wrote the review queue to {write_table(got.review, review)}")


@reports_app.command("export")
def export_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace GeoPackage or postgresql:// URL.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Table: .csv or .xlsx.")],
    since: Annotated[pd.Timestamp | None, time_option("--since", help="Closed from.")] = None,
    until: Annotated[pd.Timestamp | None, time_option("--until", help="Closed before.")] = None,
) -> None:
    """Closed ticket cases with their handling notes (办理情况) and callback answers,
    for the hotline's system."""
    from gridkit.io import write_table
    from gridkit.ops.hotline import export_results

    store = _store(workspace)
    reports = _layer(store, "reports")
    if reports is None:
        raise InputFileError(f"{shown(workspace)}: no reports layer.", hint="Import tickets first.")
    out = export_results(
        reports,
        _layer(store, "report_events"),
        departments=_layer(store, "departments"),
        callbacks=_layer(store, "callbacks"),
        since=since,
        until=until,
    )
    write_table(out, output)
    console.print(f"wrote {plural(len(out), 'closed ticket')} to {output}")


@callbacks_app.command("record")
def record_cmd(
    calls: Annotated[
        Path, typer.Argument(help="Calls: .csv/.xlsx with report_id, result, at, caller_id, note.")
    ],
    workspace: WorkspaceOption,
    encoding: EncodingOption = None,
    columns: ColumnsOption = None,
) -> None:
    """Record callbacks (满意/基本满意/不满意/无法联系); a dissatisfied answer within the
    rules' days reopens its case."""
    from gridkit.io import read_table
    from gridkit.ops.callbacks import record_callbacks

    store = _store(workspace)
    table = read_table(calls, encoding=encoding, columns=_columns(columns))
    reports = _layer(store, "reports")
    if reports is None:
        raise InputFileError(
            f"{shown(workspace)}: no reports layer.", hint="There is nothing to call."
        )
    old = _layer(store, "callbacks")
    change = record_callbacks(
        table, reports=reports, events=_layer(store, "report_events"), existing=old
    )
    new = change.callbacks.iloc[0 if old is None else len(old) :]
    has_closed_at = "closed_at" in reports.columns
    for rid, ev in change.events.groupby("report_id", sort=False):
        values = {"status": "opened", **({"closed_at": None} if has_closed_at else {})}
        store.update("reports", "report_id", str(rid), values, append={"report_events": ev})
    store.append("callbacks", new.reset_index(drop=True))
    console.print(
        f"recorded {plural(len(new), 'callback')}; reopened {plural(len(change.reopened), 'case')}"
        + (f": {', '.join(change.reopened)}" if change.reopened else "")
    )


@callbacks_app.command("satisfaction")
def satisfaction_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace GeoPackage or postgresql:// URL.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Table: .csv or .xlsx.")],
    by: Annotated[str, typer.Option("--by", help="area, department or worker.")] = "area",
    level: Annotated[
        str | None, typer.Option("--level", help="Areas at this level (county, township ...).")
    ] = None,
) -> None:
    """Satisfaction (回访满意率) per area, department or worker."""
    from gridkit.io import write_table
    from gridkit.ops.callbacks import satisfaction

    column = {"area": "admin_code", "department": "lead_department_id", "worker": "assignee_id"}
    if by not in column:
        raise typer.BadParameter(f"--by {by}: give area, department or worker.")
    store = _store(workspace)
    calls, reports = _layer(store, "callbacks"), _layer(store, "reports")
    if calls is None or reports is None:
        raise InputFileError(
            f"{shown(workspace)}: no callbacks recorded.",
            hint="Record them: gridkit callbacks record.",
        )
    out = satisfaction(calls, reports, by=column[by], level=level)
    write_table(out, output)
    console.print(f"wrote satisfaction of {plural(len(out), by)} to {output}")


def missed_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace GeoPackage or postgresql:// URL.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Table: .csv, .xlsx or a layer file.")
    ],
    days: Annotated[
        float, typer.Option("--days", min=0.0, help="Patrolled within this many days before.")
    ] = 7.0,
    radius: Annotated[
        float,
        typer.Option(
            "--radius", min=0.0, help="The worker's own report within this (m) covers it."
        ),
    ] = 100.0,
) -> None:
    """漏报: resident, hotline and media reports in units their grid worker patrolled
    shortly before without reporting that category nearby, with the evidence."""
    from gridkit.ops.missed import missed_reports

    store = _store(workspace)
    need = {n: _layer(store, n) for n in ("reports", "patrols", "assignments", "units")}
    absent = [n for n, df in need.items() if df is None]
    if absent:
        raise InputFileError(
            f"{shown(workspace)}: no {', '.join(absent)} layer.",
            hint="Missed reports need reports, patrols, assignments and units.",
        )
    out = missed_reports(
        need["reports"],
        need["patrols"],
        assignments=need["assignments"],
        units=need["units"],
        events=_layer(store, "report_events"),
        within_days=days,
        radius_m=radius,
    )
    write_output({"missed_reports": out}, output)
    workers = out["worker_id"].nunique() if len(out) else 0
    console.print(
        f"{plural(len(out), 'possible miss', 'possible misses')} by {plural(workers, 'worker')}"
    )


def targets_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace GeoPackage or postgresql:// URL.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Table: .csv, .xlsx or a layer file.")
    ],
    radius: Annotated[
        float, typer.Option("--radius", min=0.0, help="A patrol fix this close (m) checks in.")
    ] = 30.0,
    at: Annotated[pd.Timestamp | None, time_option("--at", help="As of (default now).")] = None,
    overdue_only: Annotated[
        bool, typer.Option("--overdue", help="List the overdue targets only.")
    ] = False,
) -> None:
    """九小场所: each inspection target's last check-in by a patrol, when the next is
    due, and the overdue ones (never checked first)."""
    from gridkit.ops.targets import inspection_status, overdue_targets

    store = _store(workspace)
    targets, fixes = _layer(store, "inspection_targets"), _layer(store, "patrol_points")
    if targets is None or fixes is None:
        absent = "inspection_targets" if targets is None else "patrol_points"
        raise InputFileError(
            f"{shown(workspace)}: no {absent} layer.",
            hint="Targets need the inspection_targets layer and the patrols' fixes.",
        )
    if "worker_id" not in fixes.columns and (patrols := _layer(store, "patrols")) is not None:
        worker = patrols.set_index("patrol_id")["worker_id"]
        fixes = fixes.assign(worker_id=fixes["patrol_id"].map(worker))
    status = inspection_status(targets, fixes, radius_m=radius, at=at)
    late = overdue_targets(status)
    write_output({"inspection_targets": late if overdue_only else status}, output)
    console.print(f"{plural(len(late), 'target')} overdue of {len(status):,}")


def heads_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace GeoPackage or postgresql:// URL.")],
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="Buildings with their heads: a layer file or table."),
    ],
    at: Annotated[
        pd.Timestamp | None, time_option("--at", help="Appointments valid then (default: all).")
    ] = None,
) -> None:
    """楼栋长: every building with its head(s); buildings without a head counted."""
    from gridkit.ops.heads import head_coverage

    store = _store(workspace)
    buildings, heads = _layer(store, "buildings"), _layer(store, "building_heads")
    if buildings is None or heads is None:
        raise InputFileError(
            f"{shown(workspace)}: no "
            f"{'buildings' if buildings is None else 'building_heads'} layer.",
            hint="Link heads to buildings first (building_heads: building_id, worker_id).",
        )
    cov = head_coverage(buildings, heads, at=at)
    write_output({"buildings": cov}, output)
    console.print(
        f"{plural(int((~cov['has_head']).sum()), 'building')} without a head of {len(cov):,}"
    )


def register(app: typer.Typer) -> None:
    """Add these commands to the ``gridkit`` app (one call in :mod:`gridkit.cli.app`).

    Examples
    --------
    >>> import typer
    >>> app = typer.Typer()
    >>> register(app)
    >>> sorted(g.name for g in app.registered_groups)
    ['callbacks', 'reports']
    """
    app.add_typer(reports_app, name="reports")
    app.add_typer(callbacks_app, name="callbacks")
    for name, cmd in {"missed": missed_cmd, "targets": targets_cmd, "heads": heads_cmd}.items():
        app.command(name, help=" ".join((cmd.__doc__ or "").split()))(cmd)
