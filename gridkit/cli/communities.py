"""``gridkit split-communities``: the command function (registered by gridkit.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridkit.cli.util import (
    ColumnsOption,
    CrsOption,
    EncodingOption,
    Inputs,
    LayerOption,
    OutputOption,
    console,
    write_output,
)


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
        typer.Option("--n-units", min=1, help="Units wanted per community (the cap wins)."),
    ] = None,
    method: Annotated[str, typer.Option("--method", help="balanced, square or h3.")] = "balanced",
    crs: CrsOption = None,
    layer: LayerOption = None,
    columns: ColumnsOption = None,
    encoding: EncodingOption = None,
) -> None:
    """Split communities into grid units balanced by households (writes layer 'units')."""
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
    units = split_communities(
        comm,
        bld,
        max_households=max_households,
        households_col=households_col,
        barriers=bar,
        min_households=min_households,
        n_units=n_units,
        method=method,
    )  # type: ignore[arg-type]
    r = units.attrs["report"]
    console.print(
        f"{r.n_units:,} units (lower bound {r.min_units:,}); households max "
        f"{r.max_households:.0f}, mean {r.mean_households:.1f}, CV {r.cv_households:.2f}; "
        f"Polsby-Popper {r.mean_polsby_popper:.2f}; on barriers {r.barrier_share:.0%}"
        + (f"; {len(r.under_floor_units):,} below the floor" if min_households else "")
    )
    write_output({"units": units}, output)
