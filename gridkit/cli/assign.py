"""The ``gridkit assign`` command (registered in :mod:`gridkit.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridkit.cli.engine import DaskWorkersOption, EngineOption, SchedulerOption, open_engine
from gridkit.cli.util import (
    ColumnsOption,
    CrsOption,
    EncodingOption,
    Inputs,
    OutputOption,
    console,
    write_output,
)


def assign_cmd(
    units: Annotated[Path, typer.Option("--units", help="Units layer (file).")],
    workers: Annotated[Path, typer.Option("--workers", help="Workers layer (file).")],
    output: OutputOption,
    previous: Annotated[
        Path | None, typer.Option("--previous", help="Current assignments to keep if possible.")
    ] = None,
    crs: CrsOption = None,
    max_distance_m: Annotated[
        float | None, typer.Option("--max-distance", help="Longest base-to-unit distance (m).")
    ] = None,
    max_units: Annotated[
        int | None, typer.Option("--max-units", help="Most units per worker.", min=1)
    ] = None,
    neighbour_levels: Annotated[
        int, typer.Option("--neighbour-levels", help="Admin levels up a worker may serve.", min=0)
    ] = 0,
    churn_penalty: Annotated[
        float, typer.Option("--churn-penalty", help="Cost (m) of changing a unit's worker.")
    ] = 1000.0,
    method: Annotated[str, typer.Option("--method", help="auto, mip or heuristic.")] = "auto",
    time_limit_s: Annotated[
        float,
        typer.Option(
            "--time-limit",
            help="Solver time limit in seconds (with --budget or --engine dask: a safety "
            "cap per jurisdiction).",
            min=0.1,
        ),
    ] = 30.0,
    budget: Annotated[
        int | None,
        typer.Option(
            "--budget",
            min=1,
            help="Solver work per jurisdiction in Lagrangian iterations (neighbourhood MIPs "
            "5x as many), not seconds: the same answer on any machine and engine.",
        ),
    ] = None,
    partition_by: Annotated[
        str,
        typer.Option("--partition-by", help="county, city or province (with --engine dask)."),
    ] = "county",
    engine: EngineOption = "serial",
    scheduler: SchedulerOption = None,
    dask_workers: DaskWorkersOption = 2,
    columns: ColumnsOption = None,
    encoding: EncodingOption = None,
) -> None:
    """Assign grid workers to units (capacity, jurisdiction, least travel); writes
    layers ``assignments``, ``worker_loads`` and ``unassigned``. ``--engine dask``
    solves one admin partition per task (on a budget: the answer equals the serial
    run with the same ``--budget``)."""
    from gridkit.staffing import Budget
    from gridkit.staffing.model import assign_workers

    inputs = Inputs(crs=crs, encoding=encoding, columns=columns)
    u = inputs.read(units, "units")
    w = inputs.read(workers, "workers", require=("worker_id", "admin_code", "capacity"))
    prev = inputs.read(previous, "assignments") if previous is not None else None
    options = {
        "previous": prev,
        "max_distance_m": max_distance_m,
        "max_units": max_units,
        "neighbour_levels": neighbour_levels,
        "churn_penalty": churn_penalty,
        "method": method,
        "time_limit_s": time_limit_s,
    }
    if engine == "serial" and scheduler is None:
        result = assign_workers(u, w, budget=budget, **options)
        console.print(result.report(), highlight=False)
        loads, unassigned = result.loads, result.unassigned
    else:
        from gridkit.scale.staffing import assign_partitioned

        if budget is None:
            console.print(
                f"On a budget of {Budget().iterations} iterations per jurisdiction "
                "(--budget), so that every engine gives the same answer.",
                highlight=False,
            )
        with open_engine(engine, scheduler, dask_workers) as eng:
            result = assign_partitioned(u, w, by=partition_by, engine=eng, budget=budget, **options)
        console.print(_partitioned_report(result), highlight=False)
        loads, unassigned = result.loads, result.unassigned
    layers = {"assignments": result.assignments, "worker_loads": loads}
    if len(unassigned):
        layers["unassigned"] = unassigned
    write_output(layers, output)


def _partitioned_report(result) -> str:
    """The figures of a partitioned run (what ``AssignmentResult.report`` says)."""
    lines = [
        f"{len(result.assignments):,} assignments, {len(result.unassigned):,} units not "
        f"fully staffed",
        f"objective {result.objective:,.1f}, bound {result.bound:,.1f}, gap {result.gap:.3%}",
        f"{len(result.partitions)} partitions",
    ]
    if result.time_capped:
        lines.append(
            "stopped on the time limit before the budget was spent: the answer may "
            "depend on the machine's load"
        )
    return "\n".join(lines)
