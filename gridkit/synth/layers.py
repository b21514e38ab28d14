"""Seeded synthetic layers: townships, villages, tributaries, reservoirs, communities,
buildings, workers, river chiefs and departments.

No public data gives these for Zhuzhou, so they are generated *inside the real
districts* (``geodata``) around the real Xiang River. Every generated row carries
``synthetic=True`` (the real city, districts and Xiang have ``synthetic=False``); the
names are plausible Chinese names, not real places or people.

Two entry points:

- :func:`sample_layers` -- the Zhuzhou demo sample (a few hundred villages, a few
  dozen communities, ~10^4 buildings);
- :func:`synthetic_layers` -- the same layers on a synthetic rectangle, sized for
  benchmarks (10^6 buildings, 10^5 km of river, thousands of villages); its rivers
  come from :func:`synthetic_rivers`, a planar dendritic network built basin by basin
  (10^5 km in well under a second).

Both are deterministic: the same seed gives identical layers. Geometry is built
with numpy and shapely 2 array functions; Python loops run over areas or
communities (one Voronoi diagram per parent), never over buildings or vertices.

Examples
--------
>>> layers = sample_layers(seed=1)
>>> sorted(layers["admin_areas"]["level"].unique())
['city', 'county', 'township', 'village']
>>> bool(layers["buildings"]["synthetic"].all())
True
"""

from __future__ import annotations

import math
from collections.abc import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

import geodata
from gridkit.crs import WGS84
from gridkit.layers import check_layer
from gridkit.synth._shared import (
    _default_bbox,
    _names,
    _points_in,
    _polygonal,
    _project,
    _transformer,
)
from gridkit.synth.admin import URBAN_DISTRICTS, _admin_hierarchy
from gridkit.synth.communities import _buildings, _communities
from gridkit.synth.people import _people
from gridkit.synth.rivers import _river_network, _river_rng, _rivers_frame, _scale_rivers_frame
from gridkit.synth.water import _water_bodies

__all__ = ["sample_layers", "synthetic_layers"]


def _assemble(
    top: gpd.GeoDataFrame,
    make_rivers: Callable[[pyproj.CRS, shapely.Geometry], gpd.GeoDataFrame],
    rng: np.random.Generator,
    *,
    villages_per_km2: float,
    villages_per_township: float,
    n_water: int,
    n_communities: int,
    n_buildings: int,
    urban_codes: tuple[str, ...],
    gap_share: float = 0.04,
) -> dict[str, pd.DataFrame]:
    metric = pyproj.CRS.from_epsg(
        32600 + int(np.floor((np.mean(top.total_bounds[[0, 2]]) + 180) / 6) + 1)
    )
    counties = top[top["level"] == "county"].reset_index(drop=True)
    city = top[top["level"] == "city"]
    townships, villages = _admin_hierarchy(
        counties,
        rng,
        villages_per_km2=villages_per_km2,
        villages_per_township=villages_per_township,
        metric=metric,
    )
    outline = city.geometry.iloc[0]
    rivers = make_rivers(metric, outline)
    to_m, to_w = _transformer(metric, to_metric=True), _transformer(metric, to_metric=False)
    outline_m = _project(np.array([outline]), to_m)[0]
    water = _water_bodies(
        outline_m, _project(np.asarray(rivers.geometry.array), to_m), rng, n=n_water, to_w=to_w
    )
    communities = _communities(
        villages, rng, n=n_communities, urban_codes=urban_codes, metric=metric
    )
    buildings = _buildings(communities, n_buildings, rng, metric=metric)
    villages.attrs.pop("seed_points")
    top = top.assign(synthetic=top.get("synthetic", False))
    admin = gpd.GeoDataFrame(
        pd.concat([top, townships, villages], ignore_index=True),
        geometry="geometry",
        crs=WGS84,
    )
    admin["synthetic"] = admin["synthetic"].astype(bool)
    workers, chiefs, departments = _people(
        admin, rivers, communities, buildings, rng, gap_share=gap_share
    )
    layers = {
        "admin_areas": admin,
        "rivers": rivers,
        "water_bodies": water,
        "communities": communities,
        "buildings": buildings,
        "workers": workers,
        "river_chiefs": chiefs,
        "departments": departments,
    }
    return {name: check_layer(df, name) for name, df in layers.items()}


def sample_layers(
    *,
    seed: int = 20261122,
    admin: gpd.GeoDataFrame | None = None,
    river: gpd.GeoDataFrame | None = None,
    n_buildings: int = 10_000,
    n_communities: int = 40,
    tributary_km: float = 500.0,
) -> dict[str, pd.DataFrame]:
    """Every layer of the Zhuzhou demo: real city, districts and Xiang, synthetic rest.

    Parameters
    ----------
    seed
        Seed of the random generator; the same seed gives identical layers.
    admin
        City and county rows (``admin_areas``); default :func:`geodata.zhuzhou_admin`.
    river
        The main stem (``rivers``, one line drawn upstream -> downstream); default
        :func:`geodata.xiang_river`.
    n_buildings
        Number of buildings (plus about 1 % overlapping building parts).
    n_communities
        Number of communities, mostly in the four urban districts.
    tributary_km
        Length budget of the synthetic tributary network, km.

    Returns
    -------
    dict
        ``admin_areas`` (city, county, township, village), ``rivers`` (main stem and
        tributaries), ``water_bodies``, ``communities``, ``buildings``, ``workers``,
        ``river_chiefs``, ``departments``; each passes :func:`gridkit.check_layer`.
        Generated rows have ``synthetic=True``.

    Examples
    --------
    >>> layers = sample_layers()
    >>> layers["admin_areas"].groupby("level").size()["county"]
    np.int64(9)
    """
    if admin is None or river is None:
        admin = geodata.zhuzhou_admin() if admin is None else admin
        river = geodata.xiang_river() if river is None else river
    top = admin[admin["level"].isin(["city", "county"])].reset_index(drop=True)
    top = top.assign(synthetic=False)
    main = river.geometry.iloc[0]
    if main.geom_type == "MultiLineString":
        main = shapely.line_merge(main)
    rng = np.random.default_rng(seed)

    def make_rivers(metric: pyproj.CRS, outline: shapely.Geometry) -> gpd.GeoDataFrame:
        lines_w, ids, names, parents = _river_network(
            shapely.get_coordinates(main),
            outline,
            rng,
            tributary_km=tributary_km,
            metric=metric,
            first_km=(6.0, 30.0),
            second_km=(2.0, 8.0),
        )
        return _rivers_frame(lines_w, ids, names, parents, main_synthetic=False)

    return _assemble(
        top,
        make_rivers,
        rng,
        villages_per_km2=1 / 40,
        villages_per_township=5.0,
        n_water=80,
        n_communities=n_communities,
        n_buildings=n_buildings,
        urban_codes=URBAN_DISTRICTS,
    )


def synthetic_layers(
    *,
    seed: int = 0,
    n_buildings: int = 100_000,
    river_km: float = 1_000.0,
    n_areas: int = 200,
    bbox: tuple[float, float, float, float] | None = None,
    n_counties: int | None = None,
) -> dict[str, pd.DataFrame]:
    """The same layers on a synthetic rectangle, sized for scale tests and benchmarks.

    Parameters
    ----------
    seed
        Seed; the same arguments give identical layers.
    n_buildings
        Buildings (plus ~1 % parts); communities hold ~400 buildings each.
    river_km
        Total river length, km: the network of :func:`synthetic_rivers` (separate
        basins of main stems with two orders of tributaries), equal to
        ``synthetic_rivers(river_km=river_km, bbox=bbox, seed=seed)``.
    n_areas
        Approximate number of villages (thousands are fine); villages, townships and
        counties each tile the box.
    bbox
        lon/lat box of the synthetic city; default: a square near Zhuzhou large
        enough for the buildings and rivers.
    n_counties
        Number of synthetic counties (at most 99); default ``max(4, n_areas / 600)``
        so a county keeps below 1000 villages (3-digit village serials).

    Returns
    -------
    dict
        As :func:`sample_layers`, all rows synthetic.

    Examples
    --------
    >>> layers = synthetic_layers(seed=3, n_buildings=2_000, river_km=200, n_areas=30)
    >>> len(layers["buildings"]) >= 2_000
    True
    """
    rng = np.random.default_rng(seed)
    n_comm = max(4, math.ceil(n_buildings / 400))
    if n_counties is None:
        n_counties = min(99, max(4, math.ceil(n_areas / 600)))
    if bbox is None:
        # communities of ~1 km2 on at most a third of the area; ~1 km river per 6 km2
        bbox = _default_bbox(max(30.0, math.sqrt(max(n_comm * 3.0, river_km * 6.0, n_areas * 4.0))))
    bbox = tuple(bbox)
    box = shapely.box(*bbox)
    # counties: Voronoi of random points in the box
    cx, cy, _ = _points_in(np.array([box]), np.array([n_counties]), rng)
    vor = shapely.voronoi_polygons(
        shapely.multipoints(shapely.points(cx, cy)),
        extend_to=shapely.buffer(box, 0.1),
        ordered=True,
    )
    cgeoms = _polygonal(shapely.intersection(shapely.get_parts(vor), box))
    ccodes = [f"9902{k + 1:02d}" for k in range(n_counties)]
    top = gpd.GeoDataFrame(
        {
            "admin_code": pd.array(["990200", *ccodes], dtype="str"),
            "name": pd.array(["示例市", *_names(rng, n_counties, "区")], dtype="str"),
            "level": pd.array(["city"] + ["county"] * n_counties, dtype="str"),
            "parent_code": pd.array(["990000"] + ["990200"] * n_counties, dtype="str"),
            "synthetic": True,
        },
        geometry=np.array([shapely.coverage_union_all(cgeoms), *cgeoms], dtype=object),
        crs=WGS84,
    )
    area_km2 = (
        (bbox[2] - bbox[0])
        * 111.0
        * math.cos(math.radians((bbox[1] + bbox[3]) / 2))
        * (bbox[3] - bbox[1])
        * 111.0
    )
    return _assemble(
        top,
        lambda _metric, _outline: _scale_rivers_frame(bbox, float(river_km), _river_rng(seed)),
        rng,
        villages_per_km2=n_areas / area_km2,
        villages_per_township=5.0,
        n_water=max(10, int(area_km2 / 50)),
        n_communities=n_comm,
        n_buildings=n_buildings,
        urban_codes=tuple(ccodes),
    )
