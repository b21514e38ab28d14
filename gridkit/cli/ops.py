"""``gridkit locate``, ``gridkit hotspots`` and ``gridkit assess``: the operations of a
season at the command line (the functions of :mod:`gridkit.ops`, chained as the demo
chains them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import shapely
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
from gridkit.cli.times import ZONE_HELP, cli_time, time_option
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
from gridkit.errors import GridkitError, InputFileError
from gridkit.ops.locate import NEAREST_WITHIN_M

__all__ = ["assess_cmd", "hotspots_cmd", "locate_cmd"]


def locate_cmd(
    points: Annotated[
        Path, typer.Argument(help="Points: a layer file, or a CSV/XLSX with lon/lat columns.")
    ],
    units: Annotated[Path, typer.Argument(help="Units layer (unit_id, polygons).")],
    output: OutputOption,
    crs: CrsOption = None,
    layer: LayerOption = None,
    columns: ColumnsOption = None,
    encoding: EncodingOption = None,
    accuracy: Annotated[
        float | None,
        typer.Option(
            "--accuracy", min=0.0, help="GPS accuracy in metres: flags points near an edge."
        ),
    ] = None,
    max_distance: MaxDistanceOption = NEAREST_WITHIN_M,
    partition_by: PartitionByOption = "county",
    engine: EngineOption = "serial",
    scheduler: SchedulerOption = None,
    dask_workers: DaskWorkersOption = 2,
) -> None:
    """Put each point in its grid unit: adds unit_id, distance_m and ambiguous
    (writes a layer file, or a .csv/.xlsx table with lon/lat). A point outside every
    unit gets the nearest one within --max-distance (500 m), else no unit (counted
    apart, with a warning). Times without a zone in a CSV/XLSX are Beijing time.
    ``--engine dask`` locates the points of one admin partition of the units per task
    (the same answers)."""
    from gridkit.ops import locate

    inputs = Inputs(crs=crs, encoding=encoding, columns=columns)
    pts = inputs.read(points, "reports", source_layer=layer, check=False)
    if not hasattr(pts, "geometry") or not _located_rows(pts).any():
        raise InputFileError(
            f"{points}: no points to locate (columns: {', '.join(map(str, pts.columns))}).",
            hint="Give lon and lat columns (or lng/longitude/经度 and latitude/纬度), x/y with "
            "--crs, or a wkt column.",
        )
    # --crs is the datum of the points (a phone's, a hotline's); units are the grid's own
    un = Inputs(encoding=encoding, columns=columns).read(units, "units")
    options = {"accuracy_m": accuracy, "max_distance_m": max_distance}
    if engine == "serial" and scheduler is None:
        out = locate(pts, un, **options)
    else:
        from gridkit.scale.ops import locate_points_partitioned

        check_partitions(un, partition_by, what=str(units))  # before starting a cluster
        with open_engine(engine, scheduler, dask_workers) as eng:
            out = locate_points_partitioned(pts, un, engine=eng, by=partition_by, **options)
            console.print(partitions_line(out, eng, "locate"), highlight=False)
    console.print(_located_line(out, max_distance), highlight=False)
    write_output({"located": out}, output)


MaxDistanceOption = Annotated[
    float,
    typer.Option(
        "--max-distance",
        min=0.0,
        help="A point outside every unit gets the nearest one within this many metres; "
        "farther ones get no unit (a warning says how many). A large value (e.g. 1e9) "
        "gives every point the nearest unit.",
    ),
]


def _located_rows(df: pd.DataFrame) -> np.ndarray:
    """Rows with a location: a geometry neither missing nor empty (shapely's tests, not
    GeoSeries.notna(), which warns of empty geometries)."""
    g = np.asarray(df.geometry.array)
    return ~(shapely.is_missing(g) | shapely.is_empty(g))


def _located_line(out: pd.DataFrame, max_distance: float) -> str:
    """How the points were placed: inside, nearest (within the limit), beyond it, and
    rows without a location."""
    d = out["distance_m"].to_numpy(dtype=float)
    placed = out["unit_id"].notna().to_numpy()
    located = _located_rows(out)
    inside = int((d == 0).sum())
    parts = [
        f"{inside:,} inside a unit",
        f"{int((placed & (d > 0)).sum()):,} given the nearest (within {max_distance:,.0f} m)",
        f"{int((located & ~placed).sum()):,} farther: no unit",
    ]
    if (~located).any():
        parts.append(f"{int((~located).sum()):,} without a location")
    parts.append(f"{int(out['ambiguous'].sum()):,} ambiguous")
    return f"{plural(len(out), 'point')}: " + ", ".join(parts)


def hotspots_cmd(
    reports: Annotated[
        Path, typer.Argument(help="Reports: a layer file, or a CSV/XLSX with lon/lat or unit_id.")
    ],
    units: Annotated[Path, typer.Argument(help="Units layer (unit_id, polygons).")],
    output: OutputOption,
    category: Annotated[
        list[str] | None, typer.Option("--category", help="Only this category (repeatable).")
    ] = None,
    start: Annotated[
        pd.Timestamp | None, time_option("--start", help="Reported from this time.")
    ] = None,
    end: Annotated[
        pd.Timestamp | None, time_option("--end", help="Reported before this time.")
    ] = None,
    value: Annotated[
        str, typer.Option("--value", help="rate (smoothed, default), raw_rate or count.")
    ] = "rate",
    permutations: Annotated[
        int, typer.Option("--permutations", min=9, help="Permutations for the p-values.")
    ] = 999,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the permutations.")] = 12345,
    draws: Annotated[
        str | None,
        typer.Option(
            "--draws",
            help="esda (one random matrix for all units; one process) or unit (seeded per "
            "unit: the same p-values on every engine). Default: esda, unit with --engine dask.",
        ),
    ] = None,
    crs: CrsOption = None,
    layer: LayerOption = None,
    columns: ColumnsOption = None,
    encoding: EncodingOption = None,
    max_distance: MaxDistanceOption = NEAREST_WITHIN_M,
    partition_by: PartitionByOption = "county",
    engine: EngineOption = "serial",
    scheduler: SchedulerOption = None,
    dask_workers: DaskWorkersOption = 2,
) -> None:
    """Hot and cold spots of reports per unit (Getis-Ord Gi*): writes the units with
    count, rate, gi_z, gi_p and hotspot. Reports without a unit_id count in the unit
    holding them, else the nearest within --max-distance (500 m); farther ones are not
    counted (a warning says how many). ``--engine dask`` locates the reports and
    computes Gi* one admin partition per task (permutations drawn per unit: the
    one-process run with ``--draws unit`` gives the same answers)."""
    from gridkit.ops import hotspots

    inputs = Inputs(crs=crs, encoding=encoding, columns=columns)
    rep = inputs.read(reports, "reports", source_layer=layer, check=False)
    # --crs is the datum of the points (a phone's, a hotline's); units are the grid's own
    un = Inputs(encoding=encoding, columns=columns).read(units, "units")
    options = {
        "category": category or None,
        "start": start,
        "end": end,
        "value": value,
        "permutations": permutations,
        "seed": seed,
        "max_distance_m": max_distance,
    }
    if draws not in (None, "esda", "unit"):
        raise typer.BadParameter(f"--draws is esda or unit, not {draws!r}")
    if engine == "serial" and scheduler is None:
        hot = hotspots(rep, un, draws=draws or "esda", **options)
    else:
        from gridkit.scale.ops import hotspots_points_partitioned

        if draws == "esda":
            raise GridkitError(
                "--draws esda shares one random matrix between all units: no partition "
                "can reproduce its p-values.",
                hint="Use --draws unit (the default with --engine dask), or run without --engine.",
            )
        check_partitions(un, partition_by, what=str(units))  # before starting a cluster
        with open_engine(engine, scheduler, dask_workers) as eng:
            hot = hotspots_points_partitioned(rep, un, engine=eng, by=partition_by, **options)
            console.print(partitions_line(hot, eng, "hotspots"), highlight=False)
    classes = hot["hotspot"].value_counts()
    shown = ", ".join(f"{k} {v:,}" for k, v in classes.items() if k != "not significant")
    console.print(
        f"{plural(int(hot['count'].sum()), 'report')} in {plural(len(hot), 'unit')}: "
        + (shown or "no significant spot")
    )
    write_output({"hotspots": hot}, output)


def parse_period(text: str) -> tuple[pd.Timestamp, pd.Timestamp] | str:
    """``START..END`` as a pair of times (:func:`gridkit.cli.times.cli_time`: Beijing
    time unless a zone is given; END excluded), or a calendar period as given
    (``2026-Q2``, ``2026-05``: Beijing time too, :func:`gridkit.ops.patrols.period_bounds`).

    Examples
    --------
    >>> [str(t) for t in parse_period("2026-03-01..2026-04-01T00:00Z")]
    ['2026-03-01 00:00:00+08:00', '2026-04-01 00:00:00+00:00']
    >>> parse_period("2026-Q2")
    '2026-Q2'
    """
    if ".." not in text:
        return text
    hint = f"e.g. --period 2026-03-01..2026-04-01 (END excluded; {ZONE_HELP}), or 2026-Q1."
    try:
        start, end = (cli_time(part, option="--period") for part in text.split("..", 1))
    except GridkitError as exc:
        raise GridkitError(exc.message, hint=hint) from None
    if not start < end:
        raise GridkitError(f"--period {text!r} is not START..END with START before END.", hint=hint)
    return start, end


#: the layers an assessment reads
_SEASON_LAYERS = (
    "units",
    "workers",
    "assignments",
    "patrols",
    "reports",
    "report_events",
    "departments",
    "admin_areas",
)


def assess_cmd(
    workspace: Annotated[
        Path,
        typer.Argument(help="Workspace GeoPackage or postgresql:// URL (patrols, reports)."),
    ],
    period: Annotated[
        object,  # parse_period's: a (start, end) pair of times, or a calendar period
        typer.Option(
            "--period",
            parser=parse_period,
            metavar="PERIOD",
            help=f"START..END ({ZONE_HELP}; END excluded) or a calendar period: 2026-Q1.",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="An .xlsx workbook, or a directory for CSV files."),
    ],
    area_digits: Annotated[
        int | None,
        typer.Option("--area-digits", help="Areas by this many code digits: 6 county, 9 town."),
    ] = None,
    flag_share: Annotated[
        float,
        typer.Option("--flag-share", min=0.0, max=0.5, help="Share on the red and black lists."),
    ] = 0.1,
    min_cases: Annotated[
        int,
        typer.Option("--min-cases", min=0, help="Rank only rows with at least this many cases."),
    ] = 5,
    calendar: Annotated[
        Path | None,
        typer.Option("--calendar", help="Workday calendar (an edited rules/workdays.toml)."),
    ] = None,
) -> None:
    """Score and rank grid workers (patrols, collection, verification), departments
    (handling: on time, rework, first-time fix, working hours) and areas (every stage)
    over a period (红黑榜)."""
    from gridkit.ops.assess import assess_period
    from gridkit.store import open_store

    store = open_store(workspace)
    have = set(store.layers())
    layers = {n: store.read(n) for n in _SEASON_LAYERS if n in have}
    if "patrols" not in layers and "reports" not in layers:
        raise GridkitError(
            "the workspace has neither patrols nor reports: nothing to assess.",
            hint="Assess a served workspace (gridkit serve) or the demo's.",
        )
    result = assess_period(
        layers,
        period,
        flag_share=flag_share,
        min_cases=min_cases,
        area_digits=area_digits,
        calendar=calendar,
    )
    if output.suffix.lower() == ".xlsx":
        result.to_xlsx(output)
    elif output.suffix:
        raise GridkitError(
            f"{output}: an assessment is written as .xlsx or into a directory of CSV files.",
            hint="e.g. -o assessment.xlsx, or -o assessment/",
        )
    else:
        result.to_csv(output)
    for name, table in result.tables().items():
        lists = table["list"].value_counts() if "list" in table else pd.Series(dtype=int)
        console.print(
            f"{name}: {plural(len(table), 'row')}, 红榜 {int(lists.get('红榜', 0))}, "
            f"黑榜 {int(lists.get('黑榜', 0))}"
        )
    console.print(f"wrote the assessment to {output}")
