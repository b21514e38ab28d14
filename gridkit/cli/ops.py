"""``gridkit locate``, ``gridkit hotspots`` and ``gridkit assess``: the operations of a
season at the command line (the functions of :mod:`gridkit.ops`, chained as the demo
chains them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from gridkit.cli.util import CrsOption, OutputOption, console, plural, read_input, write_output
from gridkit.errors import GridkitError, InputFileError

__all__ = ["assess_cmd", "hotspots_cmd", "locate_cmd", "read_points"]

#: column names taken for longitude / latitude in point tables (lower case)
LON = ("lon", "lng", "long", "longitude", "x", "经度")
LAT = ("lat", "latitude", "y", "纬度")
TABLES = (".csv", ".txt", ".xlsx", ".xls")


def _read_table(path: Path) -> pd.DataFrame:
    """A CSV (UTF-8, or GB18030 as Excel saves it on Chinese Windows) or a sheet."""
    if not path.exists():
        raise InputFileError(f"{path}: no such file.", hint="Check the path.")
    if path.suffix.lower() in (".xlsx", ".xls"):
        return pd.read_excel(path)
    try:
        return pd.read_csv(path, encoding="utf-8-sig")
    except UnicodeDecodeError:
        return pd.read_csv(path, encoding="gb18030")


def _column(df: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    by_lower = {str(c).strip().lower(): c for c in df.columns}
    return next((by_lower[n] for n in names if n in by_lower), None)


def read_points(
    path: Path, layer: str, *, crs: str | None = None, need_xy: bool = True
) -> pd.DataFrame:
    """Points from any layer file, or from a CSV/XLSX table with lon/lat columns
    (``lon``/``lng``/``longitude``/``x``/``经度`` and ``lat``/``latitude``/``y``/``纬度``),
    in WGS84. ``crs`` is the datum of the coordinates (default WGS84; ``gcj02`` for
    phone map SDKs). Without ``need_xy`` a table may have no coordinates (rows then
    carry their ``unit_id``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     sheet = pathlib.Path(tmp) / "hotline.csv"
    ...     _ = sheet.write_text("编号,经度,纬度\\nA1,113.1,27.8\\n", encoding="utf-8")
    ...     pts = read_points(sheet, "reports")
    >>> pts.crs.to_epsg(), pts.geometry.x.tolist()
    (4326, [113.1])
    """
    import geopandas as gpd

    from gridkit.crs import to_wgs84

    if path.suffix.lower() not in TABLES:
        from gridkit.io import read_layer

        return read_layer(path, _only_layer(path, layer), crs=crs, check=False)
    df = _read_table(path)
    lon, lat = _column(df, LON), _column(df, LAT)
    if lon is None or lat is None:
        if not need_xy and "unit_id" in df.columns:
            return df
        raise InputFileError(
            f"{path}: no longitude/latitude columns (columns: {', '.join(map(str, df.columns))}).",
            hint="Name them lon and lat (or lng/longitude/x/经度 and latitude/y/纬度).",
        )
    xy = df[[lon, lat]].apply(pd.to_numeric, errors="coerce")
    bad = xy.isna().any(axis=1) & df[[lon, lat]].notna().all(axis=1)
    if bad.any():
        rows = ", ".join(str(i + 2) for i in np.flatnonzero(bad.to_numpy())[:10])
        raise InputFileError(
            f"{path}: {lon}/{lat} not numbers on line(s) {rows}.",
            hint="Coordinates are decimal degrees, e.g. 113.134, 27.827.",
        )
    geometry = gpd.points_from_xy(xy[lon], xy[lat])
    points = gpd.GeoDataFrame(df.drop(columns=[lon, lat]), geometry=geometry)
    return to_wgs84(points, crs=crs if crs is not None else 4326, source=str(path))


def _only_layer(path: Path, prefer: str) -> str | None:
    from gridkit.io import MULTI_LAYER, format_of, list_layers

    if format_of(path) not in MULTI_LAYER:
        return None
    names = list_layers(path)
    return prefer if prefer in names or len(names) != 1 else names[0]


def _write(df: pd.DataFrame, name: str, out: Path) -> None:
    """A layer file, or a table (``.csv``/``.xlsx``: lon/lat columns for points)."""
    if out.suffix.lower() not in (".csv", ".xlsx"):
        write_output({name: df}, out)
        return
    table = pd.DataFrame(df.drop(columns=df.geometry.name) if hasattr(df, "geometry") else df)
    if hasattr(df, "geometry") and (df.geom_type == "Point").all():
        table["lon"], table["lat"] = df.geometry.x, df.geometry.y
    if out.suffix.lower() == ".csv":
        table.to_csv(out, index=False, encoding="utf-8-sig")  # BOM: Excel reads UTF-8
    else:
        table.to_excel(out, index=False)
    console.print(f"wrote [bold]{name}[/] ({plural(len(table), 'row')}) to {out}")


def locate_cmd(
    points: Annotated[
        Path, typer.Argument(help="Points: a layer file, or a CSV/XLSX with lon/lat columns.")
    ],
    units: Annotated[Path, typer.Argument(help="Units layer (unit_id, polygons).")],
    output: OutputOption,
    crs: CrsOption = None,
    accuracy: Annotated[
        float | None,
        typer.Option(
            "--accuracy", min=0.0, help="GPS accuracy in metres: flags points near an edge."
        ),
    ] = None,
    max_distance: Annotated[
        float | None,
        typer.Option("--max-distance", min=0.0, help="Farther from every unit: no unit (metres)."),
    ] = None,
) -> None:
    """Put each point in its grid unit: adds unit_id, distance_m and ambiguous
    (writes a layer file, or a .csv/.xlsx table with lon/lat)."""
    from gridkit.ops import locate

    pts = read_points(points, "reports", crs=crs)
    un = read_input(units, "units")
    out = locate(pts, un, accuracy_m=accuracy, max_distance_m=max_distance)
    inside = int((out["distance_m"] == 0).sum())
    console.print(
        f"{plural(len(out), 'point')}: {inside:,} inside a unit, "
        f"{int(out['unit_id'].notna().sum()) - inside:,} given the nearest, "
        f"{int(out['unit_id'].isna().sum()):,} without a unit, "
        f"{int(out['ambiguous'].sum()):,} ambiguous"
    )
    _write(out, "located", output)


def hotspots_cmd(
    reports: Annotated[
        Path, typer.Argument(help="Reports: a layer file, or a CSV/XLSX with lon/lat or unit_id.")
    ],
    units: Annotated[Path, typer.Argument(help="Units layer (unit_id, polygons).")],
    output: OutputOption,
    category: Annotated[
        list[str] | None, typer.Option("--category", help="Only this category (repeatable).")
    ] = None,
    start: Annotated[str | None, typer.Option("--start", help="From this time (UTC).")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Until this time (UTC).")] = None,
    value: Annotated[
        str, typer.Option("--value", help="rate (smoothed, default), raw_rate or count.")
    ] = "rate",
    permutations: Annotated[
        int, typer.Option("--permutations", min=9, help="Permutations for the p-values.")
    ] = 999,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the permutations.")] = 12345,
    crs: CrsOption = None,
) -> None:
    """Hot and cold spots of reports per unit (Getis-Ord Gi*): writes the units with
    count, rate, gi_z, gi_p and hotspot."""
    from gridkit.ops import hotspots

    rep = read_points(reports, "reports", crs=crs, need_xy=False)
    un = read_input(units, "units")
    hot = hotspots(
        rep,
        un,
        category=category or None,
        start=start,
        end=end,
        value=value,
        permutations=permutations,
        seed=seed,
    )
    classes = hot["hotspot"].value_counts()
    shown = ", ".join(f"{k} {v:,}" for k, v in classes.items() if k != "not significant")
    console.print(
        f"{plural(int(hot['count'].sum()), 'report')} in {plural(len(hot), 'unit')}: "
        + (shown or "no significant spot")
    )
    _write(hot, "hotspots", output)


def parse_period(text: str) -> tuple[str, str] | str:
    """``START..END`` as a pair (UTC, END excluded), or a calendar period as given
    (``2026-Q2``, ``2026-05``).

    Examples
    --------
    >>> parse_period("2026-03-01..2026-04-01"), parse_period("2026-Q2")
    (('2026-03-01', '2026-04-01'), '2026-Q2')
    """
    if ".." not in text:
        return text
    start, end = (part.strip() for part in text.split("..", 1))
    try:
        ok = pd.Timestamp(start) < pd.Timestamp(end)
    except ValueError:
        ok = False
    if not ok:
        raise GridkitError(
            f"--period {text!r} is not START..END with START before END.",
            hint="e.g. --period 2026-03-01..2026-04-01 (END excluded), or --period 2026-Q1.",
        )
    return start, end


def _season(store: object, period: tuple[str, str] | str) -> dict[str, pd.DataFrame | None]:
    from gridkit.ops import patrol_compliance
    from gridkit.ops.patrols import flag_patrols, period_bounds

    have = set(store.layers())  # type: ignore[attr-defined]
    read = {n: store.read(n) if n in have else None for n in  # type: ignore[attr-defined]
            ("units", "workers", "assignments", "patrols", "reports", "departments")}  # fmt: skip
    if read["patrols"] is None and read["reports"] is None:
        raise GridkitError(
            "the workspace has neither patrols nor reports: nothing to assess.",
            hint="Assess a served workspace (gridkit serve) or the demo's.",
        )
    start, end = period if isinstance(period, tuple) else period_bounds(period)
    compliance = None
    if read["patrols"] is not None and read["assignments"] is not None:
        flagged = flag_patrols(read["patrols"], workers=read["workers"])
        compliance = patrol_compliance(
            flagged,
            read["assignments"],
            period=(start, end),
            units=read["units"],
            workers=read["workers"],
            now=end,
        )
    reports = read["reports"]
    if reports is not None:
        t = pd.to_datetime(reports["reported_at"], utc=True)
        reports = reports[(t >= pd.Timestamp(start, tz="UTC")) & (t < pd.Timestamp(end, tz="UTC"))]
    return {
        "compliance": compliance,
        "reports": reports,
        "workers": read["workers"],
        "departments": read["departments"],
        "now": end,
    }


def assess_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace GeoPackage (patrols, reports).")],
    period: Annotated[
        str,
        typer.Option(
            "--period", help="START..END (UTC, END excluded) or a calendar period: 2026-Q1."
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
) -> None:
    """Score and rank workers, departments and areas over a period (红黑榜): patrol
    compliance, reports handled on time, returns."""
    from gridkit.ops import assess
    from gridkit.store import open_store

    store = open_store(workspace)
    season = _season(store, parse_period(period))
    result = assess(**season, flag_share=flag_share, area_digits=area_digits)  # type: ignore[arg-type]
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
