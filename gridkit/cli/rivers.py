"""CLI commands ``gridkit split-rivers`` and ``gridkit validate`` (registered in cli.py).

Register with::

    app.command("split-rivers")(split_rivers_cmd)
    app.command("validate")(validate_cmd)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
from gridkit.cli.util import (
    ColumnsOption,
    CrsOption,
    EncodingOption,
    Inputs,
    LayerOption,
    OutputOption,
    console,
    err_console,
    plural,
    write_output,
)
from gridkit.errors import GridkitError

__all__ = ["split_rivers_cmd", "validate_cmd"]


def _parse_outlet(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    from gridkit.errors import GridkitError

    try:
        x, y = (float(v) for v in value.split(","))
    except ValueError:
        raise GridkitError(
            f"--outlet {value!r} is not 'LON,LAT'.",
            hint="Give the outlet as two numbers, e.g. --outlet 113.05,28.05.",
        ) from None
    return x, y


def split_rivers_cmd(
    rivers: Annotated[Path, typer.Argument(help="Rivers layer (river_id, name; lines).")],
    admin: Annotated[
        Path, typer.Option("--admin", help="Admin areas layer (finest level is used for cutting).")
    ],
    max_length: Annotated[
        float, typer.Option("--max-length", min=0.0, help="Longest reach in metres.")
    ],
    output: OutputOption,
    min_length: Annotated[
        float | None,
        typer.Option("--min-length", min=0.0, help="Merge pieces shorter than this (metres)."),
    ] = None,
    corridor: Annotated[
        float, typer.Option("--corridor", min=0.0, help="Corridor half-width in metres.")
    ] = 50.0,
    water_bodies: Annotated[
        Path | None, typer.Option("--water-bodies", help="Water bodies layer: units of their own.")
    ] = None,
    outlet: Annotated[
        str | None,
        typer.Option("--outlet", help="Outlet point LON,LAT (WGS84): sets the flow direction."),
    ] = None,
    no_confluences: Annotated[
        bool, typer.Option("--no-confluences", help="Do not cut at confluences.")
    ] = False,
    sliver: Annotated[
        float,
        typer.Option(
            "--sliver",
            min=0.0,
            help="Merge corridor pieces smaller than this (m²) into a neighbour.",
        ),
    ] = 100.0,
    max_shoreline: Annotated[
        float | None,
        typer.Option(
            "--max-shoreline",
            min=1.0,
            help="Split water bodies with a longer outline into equal parts (m).",
        ),
    ] = None,
    crs: CrsOption = None,
    layer: LayerOption = None,
    columns: ColumnsOption = None,
    encoding: EncodingOption = None,
    partition_by: PartitionByOption = "county",
    engine: EngineOption = "serial",
    scheduler: SchedulerOption = None,
    dask_workers: DaskWorkersOption = 2,
) -> None:
    """Split rivers into reaches and corridor units; writes layers reaches and units.
    ``--engine dask`` cuts one admin partition of the finest areas per task, with a
    halo of neighbouring areas (the same reaches, units and ids)."""
    import geopandas as gpd
    import shapely

    from gridkit.rivers.split import split_rivers

    inputs = Inputs(crs=crs, encoding=encoding, columns=columns)
    riv = inputs.read(rivers, "rivers", source_layer=layer)
    adm = inputs.read(admin, "admin_areas")
    wb = inputs.read(water_bodies, "water_bodies") if water_bodies else None
    pt = _parse_outlet(outlet)
    if pt is not None:
        pt = gpd.GeoSeries([shapely.Point(pt)], crs=4326).to_crs(riv.crs).iloc[0]
    options = {
        "max_length_m": max_length,
        "min_length_m": min_length,
        "corridor_m": corridor or None,
        "water_bodies": wb,
        "outlet": pt,
        "split_at_confluences": not no_confluences,
        "max_shoreline_m": max_shoreline,
        "sliver_m2": sliver,
    }
    if engine != "serial" or scheduler is not None:
        from gridkit.rivers.admin import finest_level
        from gridkit.scale.rivers import split_river_layers_partitioned

        if wb is not None:
            raise GridkitError(
                "--water-bodies are not split per partition yet.",
                hint="Leave out --engine (one process) for runs with --water-bodies.",
            )
        level = finest_level(adm)
        fine = adm[(adm["level"] == level).to_numpy()]
        check_partitions(fine, partition_by, what=f"{admin} ({level} areas)")
        with open_engine(engine, scheduler, dask_workers) as eng:
            r, units = split_river_layers_partitioned(
                riv, adm, engine=eng, by=partition_by, **options
            )
            done = partitions_line(r, eng, "rivers")
        r.attrs.clear()
        write_output({"reaches": r, "units": units}, output)
        notes = done
    else:
        result = split_rivers(riv, adm, **options)
        r, units = result.reaches, result.units
        write_output({"reaches": r, "units": units}, output)
        notes = plural(len(result.report.problems), "note")
    console.print(
        f"{plural(r['river_id'].nunique(), 'river')}, {plural(len(r), 'reach', 'reaches')} "
        f"({int(r['boundary'].sum())} on boundaries), {r['length_m'].sum() / 1000:,.2f} km, "
        f"{plural(len(units), 'unit')}; {notes}.",
        highlight=False,
    )


def validate_cmd(
    units: Annotated[
        Path, typer.Argument(help="Units layer (a GeoPackage may also hold reaches).")
    ],
    against: Annotated[
        Path | None,
        typer.Option("--against", help="Admin areas (or an outer boundary) the units must lie in."),
    ] = None,
    reaches: Annotated[
        Path | None,
        typer.Option(
            "--reaches",
            help="Reaches layer of river units (default: layer 'reaches' of UNITS if present).",
        ),
    ] = None,
    rivers: Annotated[
        Path | None, typer.Option("--rivers", help="Rivers layer: check that reach lengths add up.")
    ] = None,
    max_length: Annotated[
        float | None,
        typer.Option("--max-length", min=0.0, help="Longest reach allowed, in metres."),
    ] = None,
    min_length: Annotated[
        float | None,
        typer.Option("--min-length", min=0.0, help="Shortest reach allowed, in metres."),
    ] = None,
    communities: Annotated[
        Path | None,
        typer.Option("--communities", help="Communities: check exact coverage and nesting."),
    ] = None,
    buildings: Annotated[
        Path | None, typer.Option("--buildings", help="Buildings: check no footprint is cut.")
    ] = None,
    max_households: Annotated[
        int | None, typer.Option("--max-households", min=1, help="Household cap per unit.")
    ] = None,
    crs: CrsOption = None,
    layer: LayerOption = None,
    columns: ColumnsOption = None,
    encoding: EncodingOption = None,
) -> None:
    """Validate units (and reaches); exit 0 when valid, 1 with the list of problems."""
    from gridkit.cli.util import input_layers
    from gridkit.io import split_source
    from gridkit.store import shown
    from gridkit.validate.units import validate_units

    inputs = Inputs(crs=crs, encoding=encoding, columns=columns)
    un = inputs.read(units, "units", source_layer=layer)
    re_ = None
    base = split_source(units)[0]
    if reaches is not None:
        re_ = inputs.read(reaches, "reaches")
    elif "reaches" in input_layers(units):
        re_ = inputs.read(base, "reaches", source_layer="reaches")
    adm = boundary = None
    if against is not None:
        import geopandas as gpd

        raw = inputs.read(against, "admin_areas", check=False)
        if {"admin_code", "level"} <= set(raw.columns):
            adm = inputs.read(against, "admin_areas")
        else:
            boundary = gpd.GeoDataFrame(raw)
    riv = inputs.read(rivers, "rivers") if rivers is not None else None
    com = inputs.read(communities, "communities") if communities is not None else None
    bld = None
    if buildings is not None:  # households may be missing (estimated by the splitter)
        bld = inputs.read(buildings, "buildings", check=False)
    report = validate_units(
        un,
        reaches=re_,
        rivers=riv,
        admin_areas=adm,
        boundary=boundary,
        max_length_m=max_length,
        min_length_m=min_length,
        communities=com,
        buildings=bld,
        max_households=max_households,
    )
    if report.ok:
        console.print(
            f"[green]valid[/] {shown(units)}: {plural(len(un), 'unit')}"
            + (f", {plural(len(report.problems), 'warning')}" if report.problems else ""),
            highlight=False,
        )
        for p in report.problems:
            console.print(f"  [yellow][warning][/] {p.code}: {p.message}", highlight=False)
        return
    err_console.print(str(report), highlight=False, markup=False)
    raise typer.Exit(1)
