"""The ``gridkit assign`` command (registered in :mod:`gridkit.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
        float, typer.Option("--time-limit", help="Solver time limit in seconds.", min=0.1)
    ] = 30.0,
    columns: ColumnsOption = None,
    encoding: EncodingOption = None,
) -> None:
    """Assign grid workers to units (capacity, jurisdiction, least travel); writes
    layers ``assignments``, ``worker_loads`` and ``unassigned``."""
    from gridkit.staffing.model import assign_workers

    inputs = Inputs(crs=crs, encoding=encoding, columns=columns)
    u = inputs.read(units, "units")
    w = inputs.read(workers, "workers", require=("worker_id", "admin_code", "capacity"))
    prev = inputs.read(previous, "assignments") if previous is not None else None
    result = assign_workers(
        u,
        w,
        previous=prev,
        max_distance_m=max_distance_m,
        max_units=max_units,
        neighbour_levels=neighbour_levels,
        churn_penalty=churn_penalty,
        method=method,
        time_limit_s=time_limit_s,
    )
    console.print(result.report(), highlight=False)
    layers = {"assignments": result.assignments, "worker_loads": result.loads}
    if len(result.unassigned):
        layers["unassigned"] = result.unassigned
    write_output(layers, output)
