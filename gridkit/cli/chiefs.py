"""``gridkit compliance``, ``gridkit summons`` and ``gridkit patrols import|ledger``: the
river chiefs' duty at the command line (:mod:`gridkit.ops.chiefs`,
:mod:`gridkit.ops.summons`, :mod:`gridkit.ops.ledger`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from gridkit.cli.engine import (
    DaskWorkersOption,
    EngineOption,
    PartitionByOption,
    SchedulerOption,
    check_partitions,
    open_engine,
    partitions_line,
)
from gridkit.cli.times import date_option
from gridkit.cli.util import console, plural
from gridkit.errors import GridkitError
from gridkit.io import write_table

__all__ = ["chiefs_app"]

chiefs_app = typer.Typer(no_args_is_help=True)
patrols_app = typer.Typer(no_args_is_help=True, help="Patrol records: paper ledgers (台账).")
chiefs_app.add_typer(patrols_app, name="patrols")

Workspace = Annotated[Path, typer.Argument(help="Workspace GeoPackage or postgresql:// URL.")]
PeriodOpt = Annotated[
    str,
    typer.Option("--period", help="2026, 2026-H1, 2026-Q1, 2026-03 or 2026-W10 (Asia/Shanghai)."),
]
LevelOpt = Annotated[
    str | None,
    typer.Option("--level", help="Only this level: province city county township village general."),
]
RulesOpt = Annotated[
    Path | None, typer.Option("--rules", help="A patrol_rules.toml (default: the packaged one).")
]
_LAYERS = ("river_chiefs", "units", "patrols", "workers", "reports", "summons")


def _layers(workspace: Path) -> dict[str, pd.DataFrame]:
    from gridkit.store import open_store

    store = open_store(workspace)
    have = set(store.layers())
    return {n: store.read(n) for n in _LAYERS if n in have}


def _write_table(table: pd.DataFrame, output: Path, sheet: str) -> None:
    """A table to .csv (UTF-8 with BOM: Excel opens Chinese right; times in UTC with
    their offset) or .xlsx (times as Beijing wall time), as :func:`gridkit.io.write_table`
    writes every table, so that gridkit reads it back the same."""
    write_table(table, output, sheet=sheet)
    console.print(f"wrote {plural(len(table), 'row')} to {output}")


def compliance_cmd(
    workspace: Workspace,
    period: PeriodOpt,
    output: Annotated[Path, typer.Option("-o", "--output", help="A .csv or .xlsx table.")],
    level: LevelOpt = None,
    rules: RulesOpt = None,
    partition_by: PartitionByOption = "county",
    engine: EngineOption = "serial",
    scheduler: SchedulerOption = None,
    dask_workers: DaskWorkersOption = 2,
) -> None:
    """River chiefs' patrol compliance: one row per chief (appointment) and rule of his
    level (chief_id, worker_id, name, level, admin_code, river_id, rule, required, done,
    unverified, compliant).

    --engine dask judges the chiefs of one admin partition per task (their patrols,
    the tracks near them, their sections' units): the same rows."""
    from gridkit.ops.summons import chief_assessment

    layers = _layers(workspace)
    if engine != "serial" or scheduler is not None:
        season = _partitioned_season(layers, period, level, rules, workspace, partition_by,
                                     (engine, scheduler, dask_workers))  # fmt: skip
    else:
        season = chief_assessment(layers, period, level=level, rules=rules)
    for r in season.by_level().itertuples():
        console.print(
            f"{r.level}: {r.compliant:,} of {plural(r.rules, 'rule')} met "
            f"({r.chiefs:,} chiefs), {r.unverified:,} unverified paper record(s)"
        )
    if season.compliance.empty:
        console.print(
            f"nothing to judge in {period}: no rule of the chiefs' levels has a whole window "
            "in it (a rule per year is judged over a year: e.g. --period 2026)",
            highlight=False,
        )
    _write_table(season.compliance, output, "河长巡河")


def _partitioned_season(layers, period, level, rules, workspace, by, engine_opts):
    """The compliance of ``gridkit compliance --engine dask``, as a season to print."""
    from gridkit.ops.chiefs import duty_chiefs
    from gridkit.ops.summons import ChiefAssessment
    from gridkit.scale.chiefs import chief_compliance_partitioned

    if layers.get("river_chiefs") is None or layers.get("units") is None:
        raise GridkitError(
            "river chiefs' compliance needs the layers river_chiefs and units.",
            hint="Run it on a workspace with river units and chiefs (gridkit demo makes one).",
        )
    chiefs = duty_chiefs(layers["river_chiefs"], level=level)
    check_partitions(chiefs, by, what=f"{workspace}, layer river_chiefs")
    patrols = layers.get("patrols")
    if patrols is None:  # as chief_assessment: no patrol recorded yet
        import geopandas as gpd

        patrols = gpd.GeoDataFrame({"patrol_id": [], "worker_id": []}, geometry=[], crs=4326)
    with open_engine(*engine_opts) as eng:
        comp = chief_compliance_partitioned(
            patrols, chiefs, layers["units"], period, workers=layers.get("workers"),
            rules=rules, engine=eng, by=by,
        )  # fmt: skip
        console.print(partitions_line(comp, eng, "compliance"), highlight=False)
    comp.attrs.clear()
    empty = pd.DataFrame()
    return ChiefAssessment(comp, empty, empty, empty)


def summons_cmd(
    workspace: Workspace,
    period: PeriodOpt,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="The summons list, .csv or .xlsx.")
    ] = None,
    bottom_share: Annotated[
        float, typer.Option("--bottom-share", min=0.0, max=0.5, help="Bottom of each ranking.")
    ] = 0.1,
    record: Annotated[
        str | None, typer.Option("--record", help="Record a summons held with this worker_id.")
    ] = None,
    held_on: Annotated[str | None, date_option("--held-on", help="Date held.")] = None,
    held_by: Annotated[str | None, typer.Option("--by", help="Who held it.")] = None,
    outcome: Annotated[str, typer.Option("--outcome", help="Outcome (限期整改 ...).")] = "",
) -> None:
    """The summons list (约谈): chiefs below a rule or at the bottom of their ranking, and
    why; --record keeps a summons held in the workspace (table 'summons')."""
    from gridkit.ops.summons import chief_assessment, summons_record
    from gridkit.store import open_store

    if record is not None:
        if not (held_on and held_by):
            raise GridkitError("--record needs --held-on DATE and --by NAME.")
        row = summons_record(
            record, period=period, held_on=held_on, held_by=held_by, outcome=outcome
        )
        store = open_store(workspace)
        if "summons" in store.layers():
            store.append("summons", row)
        else:
            store.save_layer("summons", row)
        console.print(f"recorded the summons of {record} on {row['held_on'].iloc[0]}")
        if output is None:
            return
    if output is None:
        raise GridkitError("give -o summons.csv (or --record ... to keep a summons held).")
    season = chief_assessment(_layers(workspace), period, bottom_share=bottom_share)
    console.print(
        f"{plural(len(season.summons), 'chief')} to summon of "
        f"{plural(len(season.assessment), 'chief')} assessed"
    )
    if output.suffix.lower() == ".xlsx":
        with pd.ExcelWriter(output, engine="openpyxl") as xw:
            season.summons.to_excel(xw, sheet_name="约谈名单", index=False)
            season.assessment.to_excel(xw, sheet_name="河长考核", index=False)
        console.print(f"wrote the summons list and the assessment to {output}")
    else:
        _write_table(season.summons, output, "约谈名单")


@patrols_app.command(
    "import",
    help="Read a paper ledger (日期, 河长, 河段, 时长(分钟), 发现问题, 备注) into the "
    "workspace's patrols, marked source=ledger and unverified.",
)
def import_cmd(
    ledger: Annotated[Path, typer.Argument(help="A paper ledger workbook (台账, .xlsx).")],
    workspace: Annotated[
        Path, typer.Option("--workspace", help="Workspace GeoPackage or postgresql:// URL.")
    ],
) -> None:
    """Read a paper ledger (日期, 河长, 河段, 时长(分钟), 发现问题, 备注) into the
    workspace's patrols, marked source=ledger and unverified."""
    from gridkit.ops.ledger import read_ledger
    from gridkit.store import open_store

    store = open_store(workspace)
    if "river_chiefs" not in store.layers():
        raise GridkitError(f"{workspace}: no river_chiefs layer: the ledger names chiefs.")
    have = store.read("patrols") if "patrols" in store.layers() else None
    taken = 0
    if have is not None and len(have):
        nums = have["patrol_id"].astype(str).str.extract(r"^L(\d+)$")[0].dropna()
        taken = int(nums.astype(int).max()) if len(nums) else 0
    new = read_ledger(ledger, store.read("river_chiefs"), first_id=taken + 1)
    with store.exclusive():
        if have is None:
            store.save_layer("patrols", new)
        else:
            both = pd.concat([have, new.to_crs(have.crs)], ignore_index=True)
            store.save_layer("patrols", both)
    console.print(
        f"imported {plural(len(new), 'paper record')} ({new['patrol_id'].iloc[0]}..) "
        f"into {workspace}: unverified, counted apart in gridkit compliance"
        if len(new)
        else "the ledger has no rows"
    )


@patrols_app.command(
    "ledger", help="Write the chiefs' patrols of a period as a paper ledger (台账) workbook."
)
def ledger_cmd(
    workspace: Workspace,
    period: PeriodOpt,
    output: Annotated[Path, typer.Option("-o", "--output", help="The ledger, .xlsx.")],
) -> None:
    """Write the chiefs' patrols of a period as a paper ledger (台账) workbook."""
    from gridkit.ops.ledger import ledger_frame
    from gridkit.ops.patrols import load_patrol_rules, period_bounds

    layers = _layers(workspace)
    patrols = layers.get("patrols")
    if patrols is None or "chief_id" not in patrols:
        raise GridkitError(f"{workspace}: no patrols recorded for a chief (chief_id).")
    tz = load_patrol_rules().timezone
    a, b = period_bounds(period, tz=tz)
    t = pd.to_datetime(patrols["started_at"], utc=True)
    mine = patrols[patrols["chief_id"].notna() & (t >= a) & (t < b)]
    frame = ledger_frame(mine, layers["river_chiefs"], tz=tz)
    _write_table(frame, output, "巡河台账")


def _help(cmd: object) -> str:
    """A docstring as one paragraph per blank line (typer keeps its line breaks)."""
    return "\n\n".join(" ".join(p.split()) for p in (cmd.__doc__ or "").split("\n\n"))


chiefs_app.command("compliance", help=_help(compliance_cmd))(compliance_cmd)
chiefs_app.command("summons", help=_help(summons_cmd))(summons_cmd)
