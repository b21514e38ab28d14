"""The ``gridkit national`` commands: build the national dataset, split it per partition.

``--engine dask`` runs one task per partition on Dask: a ``LocalCluster`` of
``--dask-workers`` processes, or the scheduler at ``--scheduler``; ``--engine serial``
runs them one after the other in this process. (``--workers`` stays the workers
layer, as in ``gridkit assign``.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from gridkit.cli.engine import DaskWorkersOption, EngineOption, SchedulerOption, open_engine
from gridkit.cli.util import console, plural

national_app = typer.Typer(
    help="A whole country: the national synthetic dataset and partitioned runs on Dask.",
    no_args_is_help=True,
)

OutDirOption = Annotated[Path, typer.Option("-o", "--output", help="Output directory.")]


@national_app.command("build")
def build_cmd(
    scale: Annotated[
        float, typer.Option("--scale", help="Fraction of the country (1.0: 50 M buildings).")
    ],
    output: OutDirOption,
    seed: Annotated[int, typer.Option("--seed", help="Master seed.")] = 0,
    city_buildings: Annotated[
        int | None,
        typer.Option("--city-buildings", help="Buildings per city.", min=100),
    ] = None,
    months: Annotated[
        int,
        typer.Option(
            "--months",
            help="Activity window: patrols and reports of the first N months of the year "
            "(the year's rows, fewer; 1 is a twelfth of the disk).",
            min=1,
            max=12,
        ),
    ] = 12,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace an earlier national build in the output directory (its layer "
            "directories are removed first).",
        ),
    ] = False,
    engine: EngineOption = "serial",
    scheduler: SchedulerOption = None,
    dask_workers: DaskWorkersOption = 2,
) -> None:
    """Build the national synthetic dataset as GeoParquet partitioned by province/city
    into a new or empty directory (or over an earlier build, with --overwrite)."""
    from gridkit.national import build_national, check_build_output

    if not 0 < scale <= 4:
        raise typer.BadParameter(f"{scale} is not in (0, 4]; 1.0 is the whole country.")
    check_build_output(output, overwrite=overwrite)  # before starting a cluster
    t0 = time.perf_counter()
    with open_engine(engine, scheduler, dask_workers) as eng:
        ds = build_national(
            scale,
            output,
            seed=seed,
            mapper=eng.map,
            city_buildings=city_buildings,
            months=months,
            overwrite=overwrite,
        )
    meta = json.loads((ds.path / "national.json").read_text(encoding="utf-8"))
    rows = ", ".join(f"{k} {v:,}" for k, v in meta["rows"].items())
    console.print(
        f"{plural(meta['provinces'], 'province')}, {plural(meta['cities'], 'city', 'cities')}, "
        f"{meta['river_km']:,} km of river; {rows}; {time.perf_counter() - t0:.1f} s "
        f"-> {ds.path}",
        highlight=False,
    )


@national_app.command("split-communities")
def split_communities_cmd(
    dataset: Annotated[Path, typer.Argument(help="National dataset directory.")],
    output: OutDirOption,
    max_households: Annotated[int, typer.Option("--max-households", min=1)] = 1000,
    by: Annotated[str, typer.Option("--by", help="city or province.")] = "city",
    engine: EngineOption = "serial",
    scheduler: SchedulerOption = None,
    dask_workers: DaskWorkersOption = 2,
) -> None:
    """Split every community, one task per partition; units as partitioned GeoParquet."""
    from gridkit.national import open_national, write_partitioned
    from gridkit.scale import split_communities_partitioned

    ds = open_national(dataset)
    with open_engine(engine, scheduler, dask_workers) as eng:
        units = split_communities_partitioned(ds, engine=eng, by=by, max_households=max_households)
        seconds = eng.timings.get("communities", 0.0)
    write_partitioned(units, output, "units")
    console.print(
        f"{plural(len(units), 'unit')} in {seconds:.1f} s -> {output}/units", highlight=False
    )


@national_app.command("split-rivers")
def split_rivers_cmd(
    dataset: Annotated[Path, typer.Argument(help="National dataset directory.")],
    output: OutDirOption,
    max_length: Annotated[float, typer.Option("--max-length", help="Longest reach (m).")] = 2000.0,
    corridor: Annotated[float, typer.Option("--corridor", help="Corridor half-width (m).")] = 50.0,
    engine: EngineOption = "serial",
    scheduler: SchedulerOption = None,
    dask_workers: DaskWorkersOption = 2,
) -> None:
    """Split the national rivers, one task per province (whole basins, a halo of areas)."""
    from gridkit.national import open_national, write_partitioned
    from gridkit.scale.rivers import split_rivers_partitioned

    ds = open_national(dataset)
    with open_engine(engine, scheduler, dask_workers) as eng:
        reaches, units = split_rivers_partitioned(
            ds, engine=eng, max_length_m=max_length, corridor_m=corridor
        )
        seconds = eng.timings.get("rivers", 0.0)
    write_partitioned(reaches, output, "reaches")
    write_partitioned(units, output, "river_units")  # none: an earlier run's removed
    console.print(
        f"{plural(len(reaches), 'reach', 'reaches')}, {plural(len(units), 'unit')} "
        f"in {seconds:.1f} s -> {output}",
        highlight=False,
    )


@national_app.command("load")
def load_cmd(
    directory: Annotated[
        Path,
        typer.Argument(help="A national build, or the -o of split-communities/split-rivers."),
    ],
    url: Annotated[str, typer.Argument(help="postgresql://USER@HOST/DB")],
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Make again tables of the database that hold rows."),
    ] = False,
    engine: EngineOption = "serial",
    scheduler: SchedulerOption = None,
    dask_workers: DaskWorkersOption = 2,
) -> None:
    """Load partitioned GeoParquet into PostGIS: the tables made once, then one task per
    partition file COPYing its rows side by side (WGS84, as the store holds them)."""
    from gridkit.scale.load import load_partitioned
    from gridkit.store import database_url, shown

    db = database_url(url)
    if db is None:
        raise typer.BadParameter(f"{url!r} is not a postgresql:// URL.", param_hint="URL")
    t0 = time.perf_counter()
    with open_engine(engine, scheduler, dask_workers) as eng:
        counts = load_partitioned(directory, db, engine=eng, replace=replace)
    seconds = time.perf_counter() - t0
    total = sum(counts.values())
    for table, n in counts.items():
        console.print(f"{table}: {plural(n, 'row')}", highlight=False)
    console.print(
        f"loaded {plural(total, 'row')} into {len(counts)} tables of {shown(db)} in "
        f"{seconds:.1f} s ({total / max(seconds, 1e-9):,.0f} rows/s)",
        highlight=False,
    )
