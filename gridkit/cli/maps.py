"""``gridkit map``: write a coverage, compliance, hotspot, review or diff map as one HTML
file, or print it as PNG/PDF (headless Chromium).

Registered by the CLI as ``app.command("map")(map_cmd)``. Maps need the optional
``maps`` extra (folium, XStatic-Leaflet): without it the command says which extra to
install, and ``gridkit --help`` still works.
"""

from __future__ import annotations

import warnings
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Annotated

import pandas as pd
import typer

from gridkit.cli.util import (
    ColumnsOption,
    CrsOption,
    EncodingOption,
    Inputs,
    LayerOption,
    console,
)
from gridkit.errors import GridkitError, GridkitWarning, require_extra
from gridkit.io import list_layers, split_source
from gridkit.layers import LAYERS
from gridkit.ops.hotspots import hotspots
from gridkit.ops.locate import NEAREST_WITHIN_M, locate
from gridkit.ops.patrols import patrol_compliance
from gridkit.ops.reports import report_rules

LARGE = 10_000  # units: above this a single-file page gets slow to open


class MapKind(StrEnum):
    coverage = "coverage"
    compliance = "compliance"
    hotspots = "hotspots"
    review = "review"
    diff = "diff"


class MapLang(StrEnum):
    zh = "zh"
    en = "en"


def load_maps() -> ModuleType:
    """:mod:`gridkit.maps`, or a plain error naming the extra when folium or
    XStatic-Leaflet is missing (:func:`gridkit.errors.require_extra`)."""
    require_extra("maps", "gridkit map")
    from gridkit import maps  # the optional extra, loaded on use

    return maps


def _read(inputs: Inputs, path: Path, layer: str) -> pd.DataFrame:
    """A contract layer checked; other tables (compliance) as they are, from any
    format (.gpkg, .csv, .xlsx, .parquet ...)."""
    df = inputs.read(path, layer, check=layer in LAYERS)
    if "last_patrol" in df.columns and not pd.api.types.is_datetime64_any_dtype(
        df["last_patrol"].dtype
    ):
        df = df.assign(last_patrol=pd.to_datetime(df["last_patrol"], utc=True, format="mixed"))
    return df


def _located(reports: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """Reports with ``unit_id`` (maps take joined data): missing ones placed by
    :func:`gridkit.ops.locate.locate`."""
    has = "unit_id" in reports.columns
    if has and reports["unit_id"].notna().all():
        return reports
    # as hotspots count them: nearest unit only within 500 m (a warning for the rest)
    placed = locate(reports, units, max_distance_m=NEAREST_WITHIN_M)["unit_id"]
    return reports.assign(unit_id=reports["unit_id"].fillna(placed) if has else placed)


def _need(value: object, message: str, hint: str) -> None:
    if value is None:
        raise GridkitError(message, hint=hint)


def _context(maps: ModuleType, inputs: Inputs, units: Path, files: dict[str, Path | None]):
    """Context layers: those named on the command line, else the units' workspace's own
    (a GeoPackage holding ``admin_areas``, ``rivers``, ``water_bodies``)."""
    source, _ = split_source(units)
    have = set(list_layers(source)) if source.suffix.lower() == ".gpkg" else set()
    layers = {}
    for layer, path in files.items():
        if path is not None:
            layers[layer] = inputs.read(path, layer, check=False)
        elif layer in have:
            layers[layer] = inputs.read(source, layer, check=False)
    return maps.Context.from_layers(layers) if layers else None


def _compliance(inputs: Inputs, patrols: Path, u: pd.DataFrame, asg, workers, period):
    """The compliance table: read as given, or computed from a raw patrols layer (tracks
    with ``patrol_id``) and the assignments by the frequency rules."""
    source, named = split_source(patrols)
    raw = named == "patrols" or (
        named is None and source.suffix.lower() == ".gpkg" and "patrols" in list_layers(source)
    )
    df = _read(inputs, patrols, "patrols" if raw else "compliance")
    if "required" in df.columns or "patrol_id" not in df.columns:
        return df, period
    _need(
        asg, "compliance from raw patrols needs --assignments.",
        "Pass the assignments layer (unit_id, worker_id), e.g. --assignments WORKSPACE.gpkg.",
    )  # fmt: skip
    if period is None:
        t = pd.to_datetime(df["started_at"], utc=True, format="mixed")
        period = (t.min().strftime("%Y-%m-01"), (t.max() + pd.offsets.MonthBegin(1)).strftime(
            "%Y-%m-01"))  # fmt: skip
    rows = patrol_compliance(df, asg, period=period, units=u, workers=workers)
    shown = period if isinstance(period, str) else f"{period[0]} – {period[1]}"
    return rows, shown


def _print_or_write(maps: ModuleType, m, output: Path, paper: str, portrait: bool) -> int:
    page = maps.map_html(m)
    if output.suffix.lower() in (".png", ".pdf"):
        maps.print_map(page, output, paper=paper, landscape=not portrait)
        return output.stat().st_size
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(page, encoding="utf-8")
    return len(page.encode("utf-8"))


def _tiles(value: str) -> str | None:
    low = value.strip().lower()
    if low.endswith((".mbtiles", ".pmtiles")):
        raise GridkitError(
            f"a saved map file cannot serve the tile package {value!r}.",
            hint="Serve it: GRIDKIT_MBTILES=FILE gridkit serve WORKSPACE, then open the "
            "/maps pages (tiles at /maps/tiles/{z}/{x}/{y}); or pass the URL of a tile server.",
        )
    return {"osm": "OpenStreetMap", "none": None, "": None}.get(low, value)


def map_cmd(
    units: Annotated[Path, typer.Argument(help="Units layer (.gpkg/.geojson/.parquet).")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="HTML page, or .png/.pdf to print it.")
    ],
    kind: Annotated[MapKind, typer.Option("--kind", help="What the map shows.")] = (
        MapKind.coverage
    ),
    reports: Annotated[Path | None, typer.Option("--reports", help="Reports layer.")] = None,
    patrols: Annotated[
        Path | None,
        typer.Option(
            "--patrols",
            help="Patrols layer (tracks; with --assignments, compliance is computed by the "
            "frequency rules) or a per-unit compliance table (unit_id, worker_id, required, "
            "done, compliant, last_patrol).",
        ),
    ] = None,
    assignments: Annotated[
        Path | None, typer.Option("--assignments", help="Assignments (unit_id, worker_id).")
    ] = None,
    workers: Annotated[
        Path | None, typer.Option("--workers", help="Workers layer: names instead of ids.")
    ] = None,
    old: Annotated[
        Path | None, typer.Option("--old", help="Old units (--kind diff; UNITS is the new).")
    ] = None,
    lineage: Annotated[
        Path | None, typer.Option("--lineage", help="Lineage table (--kind diff).")
    ] = None,
    admin: Annotated[
        Path | None,
        typer.Option("--admin", help="Admin areas for outlines and names (default: UNITS' own)."),
    ] = None,
    rivers: Annotated[Path | None, typer.Option("--rivers", help="Rivers for context.")] = None,
    water: Annotated[Path | None, typer.Option("--water", help="Water bodies for context.")] = None,
    buildings: Annotated[
        Path | None, typer.Option("--buildings", help="Buildings (--kind review: cut footprints).")
    ] = None,
    max_households: Annotated[
        float | None, typer.Option("--max-households", help="Household cap (--kind review).")
    ] = None,
    max_length: Annotated[
        float | None, typer.Option("--max-length", help="Maximum reach length, m (review).")
    ] = None,
    rules: Annotated[
        Path | None, typer.Option("--rules", help="reports.toml for category names.")
    ] = None,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline/--online",
            help="Inline Leaflet from local packages (default; works on intranets) or load "
            "it from public CDNs.",
        ),
    ] = True,
    tiles: Annotated[
        str,
        typer.Option(
            "--tiles",
            help="'none' (default: admin outlines and water as the base), "
            "'osm', or a tile URL template.",
        ),
    ] = "none",
    tiles_datum: Annotated[
        str, typer.Option("--tiles-datum", help="'wgs84' or 'gcj02' (Chinese web tiles).")
    ] = "wgs84",
    lang: Annotated[MapLang, typer.Option("--lang", help="Label language.")] = MapLang.zh,
    title: Annotated[str | None, typer.Option("--title", help="Map title.")] = None,
    period: Annotated[
        str | None,
        typer.Option("--period", help="Period (title; with raw patrols: 2026-03, 2026-Q1...)."),
    ] = None,
    level: Annotated[
        str | None, typer.Option("--level", help="Compliance level (--kind compliance).")
    ] = None,
    paper: Annotated[str, typer.Option("--paper", help="A4 or A3 (.png/.pdf output).")] = "A4",
    portrait: Annotated[
        bool, typer.Option("--portrait/--landscape", help="Paper orientation.")
    ] = False,
    crs: CrsOption = None,
    layer: LayerOption = None,
    columns: ColumnsOption = None,
    encoding: EncodingOption = None,
) -> None:
    """Write a map page (coverage, compliance, hotspots, review or diff), or print it."""
    maps = load_maps()
    inputs = Inputs(crs=crs, encoding=encoding, columns=columns)
    u = inputs.read(units, "units", source_layer=layer)
    ctx = _context(maps, inputs, units, {"admin_areas": admin, "rivers": rivers,
                                         "water_bodies": water})  # fmt: skip
    people = inputs.read(workers, "workers", require=("worker_id",)) if workers else None
    names = pd.DataFrame(people[["worker_id", "name"]]) if people is not None else None
    asg = _read(inputs, assignments, "assignments") if assignments else None
    comp = None
    if patrols:
        comp, period = _compliance(inputs, patrols, u, asg, people, period)
    options = maps.MapOptions(
        title=title, period=period, lang=lang.value, tiles=_tiles(tiles),
        tiles_datum=tiles_datum, offline=offline,
    )  # fmt: skip
    common = dict(context=ctx, options=options)
    uses = ("report_id", "category") + (("status",) if kind is MapKind.coverage else ())
    rep = inputs.read(reports, "reports", require=uses) if reports else None
    cats = report_rules(rules).categories
    if kind is MapKind.coverage:
        located = _located(rep, u) if rep is not None else None
        m = maps.coverage_map(u, assignments=asg, compliance=comp, reports=located,
                              workers=names, categories=cats, **common)  # fmt: skip
    elif kind is MapKind.compliance:
        _need(
            comp, "--kind compliance needs --patrols.",
            "Pass the patrols layer and --assignments, or the compliance table.",
        )  # fmt: skip
        m = maps.compliance_map(u, comp, level=level, workers=names, **common)
    elif kind is MapKind.hotspots:
        m = _hotspot_map(maps, u, rep, cats, common)
    elif kind is MapKind.review:
        bld = inputs.read(buildings, "buildings", check=False) if buildings else None
        m = maps.review_map(u, max_households=max_households, max_length_m=max_length,
                            buildings=bld, assignments=asg, workers=names, **common)  # fmt: skip
    else:
        _need(
            None if old is None or lineage is None else old,
            "--kind diff needs --old OLD_UNITS and --lineage LINEAGE.",
            "UNITS is the new version; gridkit diff OLD NEW -o LINEAGE writes lineage.",
        )
        old_units = inputs.read(old, "units")
        m = maps.diff_map(old_units, u, _read(inputs, lineage, "lineage"), **common)
    size = _print_or_write(maps, m, output, paper, portrait)
    console.print(f"wrote {kind.value} map to {output} ({size / 2**20:.2f} MB)")
    if len(u) > LARGE and output.suffix.lower() == ".html":
        console.print(
            f"note: {len(u):,} units make a heavy single file; `gridkit serve` serves "
            "/maps/view, which loads only the units in view (any size)."
        )


def _hotspot_map(maps: ModuleType, u, rep, cats, common):
    if "hotspot" not in u.columns:  # raw units: Gi* of the reports first
        _need(
            rep, "--kind hotspots needs --reports (or units with a hotspot column).",
            "Pass the reports; gridkit hotspots REPORTS UNITS -o HOT.gpkg writes such units.",
        )  # fmt: skip
        u = hotspots(rep, u)  # warns of reports far from every unit: once
        if "unit_id" not in rep.columns:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", ".* from every unit", GridkitWarning)
                rep = _located(rep, u)
    elif rep is not None and "unit_id" not in rep.columns:
        rep = _located(rep, u)
    return maps.hotspot_map(u, reports=rep, categories=cats, **common)
