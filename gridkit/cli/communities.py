"""``gridkit split-communities``: the command function (registered by gridkit.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridkit.cli.engine import (
    DaskWorkersOption,
    EngineOption,
    PartitionByOption,
    SchedulerOption,
    open_engine,
)
from gridkit.cli.util import (
    ColumnsOption,
    CrsOption,
    EncodingOption,
    Inputs,
    LayerOption,
    OutputOption,
    console,
    plural,
    write_output,
)
from gridkit.errors import GridkitError


def split_communities_cmd(
    communities: Annotated[Path, typer.Argument(help="Communities layer file.")],
    buildings: Annotated[Path, typer.Option("--buildings", help="Buildings layer file.")],
    max_households: Annotated[
        int, typer.Option("--max-households", min=1, help="Household cap per unit.")
    ],
    output: OutputOption,
    households_col: Annotated[
        str, typer.Option("--households-col", help="Buildings column with households.")
    ] = "households",
    barriers: Annotated[
        Path | None, typer.Option("--barriers", help="Lines (roads, rivers) to follow.")
    ] = None,
    min_households: Annotated[
        int | None,
        typer.Option("--min-households", min=0, help="Household floor per unit (best effort)."),
    ] = None,
    n_units: Annotated[
        int | None,
        typer.Option(
            "--n-units",
            min=1,
            help="Units wanted in EACH community, locked units included (4 communities and "
            "--n-units 20: 80 units); the household cap wins, misses are reported.",
        ),
    ] = None,
    method: Annotated[str, typer.Option("--method", help="balanced, square or h3.")] = "balanced",
    crs: CrsOption = None,
    layer: LayerOption = None,
    columns: ColumnsOption = None,
    encoding: EncodingOption = None,
    locked: Annotated[
        Path | None,
        typer.Option("--locked", help="Units layer of units to keep exactly (id and shape)."),
    ] = None,
    seeds: Annotated[
        Path | None,
        typer.Option("--seeds", help="Points: at least one unit grown from each seed."),
    ] = None,
    cell_area: Annotated[
        float | None,
        typer.Option("--cell-area", min=1.0, help="Cell area in m² for --method square or h3."),
    ] = None,
    engine: EngineOption = "serial",
    scheduler: SchedulerOption = None,
    dask_workers: DaskWorkersOption = 2,
    partition_by: PartitionByOption = "city",
) -> None:
    """Split communities into grid units balanced by households (writes layer 'units').
    ``--engine dask`` splits one admin partition per task (the same units and ids,
    sorted by unit_id)."""
    import geopandas as gpd

    from gridkit.communities.split import split_communities

    inputs = Inputs(crs=crs, encoding=encoding, columns=columns)
    comm = inputs.read(communities, "communities", source_layer=layer)
    # households may be missing (estimated), so read buildings without the contract check
    bld = inputs.read(buildings, "buildings", check=False)
    bar = None
    if barriers is not None:
        bar = inputs.read(barriers, None, check=False)
        bar = gpd.GeoDataFrame(bar, geometry=bar.geometry.name, crs=bar.crs)
    extra = _extra_inputs(inputs, locked, seeds, cell_area, method)
    if engine != "serial" or scheduler is not None:
        options = dict(
            max_households=max_households,
            households_col=households_col,
            barriers=bar,
            min_households=min_households,
            n_units=n_units,
            method=method,
            **extra,
        )
        engine_opts = (engine, scheduler, dask_workers, partition_by)
        return _split_partitioned(comm, bld, options, engine_opts, output)
    units = split_communities(
        comm,
        bld,
        max_households=max_households,
        households_col=households_col,
        barriers=bar,
        min_households=min_households,
        n_units=n_units,
        method=method,
        **extra,
    )  # type: ignore[arg-type]
    console.print(
        summary_line(
            units.attrs["report"], n_units, len(comm), min_households, barriers=bar is not None
        )
    )
    write_output({"units": units}, output)


def _split_partitioned(comm, bld, options: dict, engine_opts: tuple, output: Path) -> None:
    """``--engine dask``: :func:`gridkit.scale.split_communities_partitioned` on the files."""
    from gridkit.scale import Frames, split_communities_partitioned

    if "locked" in options or "seeds" in options:
        raise GridkitError(
            "--locked and --seeds are not split per partition yet.",
            hint="Leave out --engine (one process) for runs with locked units or seeds.",
        )
    engine, scheduler, dask_workers, by = engine_opts
    source = Frames({"communities": comm, "buildings": bld})
    with open_engine(engine, scheduler, dask_workers) as eng:
        units = split_communities_partitioned(source, engine=eng, by=by, **options)
        seconds = eng.timings.get("communities", 0.0)
    parts = units.attrs.pop("partitions", None)
    console.print(
        f"{plural(len(units), 'unit')} of {plural(len(comm), 'community', 'communities')} in "
        f"{plural(0 if parts is None else len(parts), 'partition')}, {seconds:.1f} s",
        highlight=False,
    )
    write_output({"units": units}, output)


def _extra_inputs(
    inputs: Inputs, locked: Path | None, seeds: Path | None, cell_area: float | None, method: str
) -> dict:
    """The ``locked``, ``seeds`` and ``cell_area_m2`` arguments from the options."""
    import geopandas as gpd

    extra: dict = {}
    if locked is not None:
        extra["locked"] = gpd.GeoDataFrame(inputs.read(locked, "units"))
    if seeds is not None:
        pts = inputs.read(seeds, "seeds", check=False)
        extra["seeds"] = gpd.GeoDataFrame(pts, geometry=pts.geometry.name, crs=pts.crs)
    if cell_area is not None:
        if method == "balanced":
            raise GridkitError(
                "--cell-area is the cell size of --method square or h3.",
                hint="Add --method square (or h3), or leave --cell-area out.",
            )
        extra["cell_area_m2"] = cell_area
    return extra


def summary_line(
    r, n_units: int | None, n_communities: int, floor: int | None, *, barriers: bool = False
) -> str:
    """The figures of a split that apply to it, in one line.

    Examples
    --------
    >>> from gridkit.communities.split import CommunitySplitReport
    >>> r = CommunitySplitReport(method="square", n_units=12, min_units=10,
    ...                          max_households=90, mean_households=50)
    >>> summary_line(r, None, 4, None)
    '12 units (lower bound 10); households max 90, mean 50.0, CV 0.00; Polsby-Popper 0.00'
    """
    import math

    parts = [
        f"{plural(r.n_units, 'unit')} (lower bound {r.min_units:,}); households max "
        f"{r.max_households:.0f}, mean {r.mean_households:.1f}, CV {r.cv_households:.2f}; "
        f"Polsby-Popper {r.mean_polsby_popper:.2f}"
    ]
    if barriers and not math.isnan(r.barrier_share):  # regular cells have none
        parts.append(f"on barriers {r.barrier_share:.0%}")
    if n_units is not None and r.method == "balanced":  # regular cells ignore it (warned)
        asked = (
            f"{n_units:,} asked per community x {plural(n_communities, 'community', 'communities')}"
        )
        missed = r.target_missed
        parts.append(
            asked
            + (
                f", missed in {plural(len(missed), 'community', 'communities')}: "
                + ", ".join(f"{c} {m} of {a}" for c, (a, m) in list(missed.items())[:5])
                + (" ..." if len(missed) > 5 else "")
                if missed
                else ", met"
            )
        )
    if floor:
        parts.append(f"{plural(len(r.under_floor_units), 'unit')} below the floor")
    return "; ".join(parts)
