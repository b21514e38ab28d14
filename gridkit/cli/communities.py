"""``gridkit split-communities``: the command function (registered by gridkit.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridkit.cli.util import CrsOption, OutputOption, console, write_output
from gridkit.io import read_input


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
) -> None:
    """Split communities into grid units balanced by households (writes layer 'units')."""
    import geopandas as gpd

    from gridkit.communities.split import split_communities
    from gridkit.io import read_layer

    comm = read_input(communities, "communities", crs=crs)
    # households may be missing (estimated), so read buildings without the contract check
    bld = read_layer(
        buildings,
        None if buildings.suffix != ".gpkg" else _layer(buildings, "buildings"),
        crs=crs,
        check=False,
    )
    bar = None
    if barriers is not None:
        bar = read_layer(
            barriers,
            None if barriers.suffix != ".gpkg" else _layer(barriers, None),
            crs=crs,
            check=False,
        )
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


def _layer(path: Path, prefer: str | None) -> str | None:
    import pyogrio

    names = [n for n, _ in pyogrio.list_layers(path)]
    if prefer in names:
        return prefer
    return names[0] if len(names) == 1 else prefer
