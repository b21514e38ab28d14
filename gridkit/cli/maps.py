"""``gridkit map``: write a coverage, compliance, hotspot or diff map as one HTML file.

Registered by the CLI as ``app.command("map")(map_cmd)``. Maps need the optional
``maps`` extra (folium, XStatic-Leaflet): without it the command says which extra to
install, and ``gridkit --help`` still works.
"""

from __future__ import annotations

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
from gridkit.errors import GridkitError, require_extra
from gridkit.layers import LAYERS
from gridkit.ops.hotspots import hotspots
from gridkit.ops.locate import locate


class MapKind(StrEnum):
    coverage = "coverage"
    compliance = "compliance"
    hotspots = "hotspots"
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
    placed = locate(reports, units)["unit_id"]
    return reports.assign(unit_id=reports["unit_id"].fillna(placed) if has else placed)


def _need(value: object, message: str, hint: str) -> None:
    if value is None:
        raise GridkitError(message, hint=hint)


def map_cmd(
    units: Annotated[Path, typer.Argument(help="Units layer (.gpkg/.geojson/.parquet).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="HTML file to write.")],
    kind: Annotated[MapKind, typer.Option("--kind", help="What the map shows.")] = (
        MapKind.coverage
    ),
    reports: Annotated[Path | None, typer.Option("--reports", help="Reports layer.")] = None,
    patrols: Annotated[
        Path | None,
        typer.Option(
            "--patrols",
            help="Per-unit patrol compliance (CSV/Parquet/layer with unit_id, worker_id, "
            "required, done, compliant, last_patrol, days_overdue).",
        ),
    ] = None,
    assignments: Annotated[
        Path | None, typer.Option("--assignments", help="Assignments (unit_id, worker_id).")
    ] = None,
    old: Annotated[
        Path | None, typer.Option("--old", help="Old units (--kind diff; UNITS is the new).")
    ] = None,
    lineage: Annotated[
        Path | None, typer.Option("--lineage", help="Lineage table (--kind diff).")
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
        str, typer.Option("--tiles", help="'osm' (default), a tile URL template, or 'none'.")
    ] = "osm",
    tiles_datum: Annotated[
        str, typer.Option("--tiles-datum", help="'wgs84' or 'gcj02' (Chinese web tiles).")
    ] = "wgs84",
    lang: Annotated[MapLang, typer.Option("--lang", help="Label language.")] = MapLang.zh,
    title: Annotated[str | None, typer.Option("--title", help="Map title.")] = None,
    period: Annotated[str | None, typer.Option("--period", help="Period in the title.")] = None,
    level: Annotated[
        str | None, typer.Option("--level", help="Compliance level (--kind compliance).")
    ] = None,
    crs: CrsOption = None,
    layer: LayerOption = None,
    columns: ColumnsOption = None,
    encoding: EncodingOption = None,
) -> None:
    """Write a map page (coverage, compliance, hotspots or diff) and report its size."""
    maps = load_maps()
    options = maps.MapOptions(
        title=title,
        period=period,
        lang=lang.value,
        tiles={"osm": "OpenStreetMap", "none": None}.get(tiles.lower(), tiles),
        tiles_datum=tiles_datum,
        offline=offline,
    )
    inputs = Inputs(crs=crs, encoding=encoding, columns=columns)
    u = inputs.read(units, "units", source_layer=layer)
    uses = ("report_id", "category") + (("status",) if kind is MapKind.coverage else ())
    rep = inputs.read(reports, "reports", require=uses) if reports else None
    comp = _read(inputs, patrols, "compliance") if patrols else None
    if kind is MapKind.coverage:
        asg = _read(inputs, assignments, "assignments") if assignments else None
        located = _located(rep, u) if rep is not None else None
        m = maps.coverage_map(u, assignments=asg, compliance=comp, reports=located, options=options)
    elif kind is MapKind.compliance:
        _need(
            comp, "--kind compliance needs --patrols.",
            "Pass the per-unit compliance table from patrol_compliance.",
        )  # fmt: skip
        m = maps.compliance_map(u, comp, level=level, options=options)
    elif kind is MapKind.hotspots:
        if "hotspot" not in u.columns:  # raw units: Gi* of the reports first
            _need(
                rep, "--kind hotspots needs --reports (or units with a hotspot column).",
                "Pass the reports; gridkit hotspots REPORTS UNITS -o HOT.gpkg writes such units.",
            )  # fmt: skip
            u = hotspots(rep, u)
        m = maps.hotspot_map(u, reports=rep, options=options)
    else:
        _need(
            None if old is None or lineage is None else old,
            "--kind diff needs --old OLD_UNITS and --lineage LINEAGE.",
            "UNITS is the new version; gridkit diff OLD NEW -o LINEAGE writes lineage.",
        )
        old_units = inputs.read(old, "units")
        m = maps.diff_map(old_units, u, _read(inputs, lineage, "lineage"), options=options)
    page = maps.map_html(m)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(page, encoding="utf-8")
    size = len(page.encode("utf-8"))
    console.print(f"wrote {kind.value} map to {output} ({size / 2**20:.2f} MB)")
