"""One city of the synthetic country, and the national river network.

A city is :func:`gridkit.synth.synthetic_layers` drawn in a reference lon/lat box and
mapped affinely onto the city's square in the national Albers projection (so
neighbouring cities share their edges exactly), with its codes rewritten to the
city's real-shaped codes. Rivers are national (:func:`gridkit.synth.synthetic_rivers`
over the whole country, basin by basin, crossing province lines); each city appoints
chiefs on the sections inside it. On each east and north city line that has a city
behind it, one community straddles the line (the "border community", owned by the
west/south city), so partitioned runs meet a community cut by a partition line.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.national.activity import patrols_and_reports, river_staff
from gridkit.national.plan import ALBERS, CityPlan, NationalPlan
from gridkit.synth import building_footprints, synthetic_layers, synthetic_rivers

__all__ = ["border_discs", "city_layers", "national_rivers", "river_box"]

_REF_LON, _REF_LAT = 113.0, 27.8  # where cities are drawn before they are mapped
_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(_REF_LAT))
_BORDER_RADIUS_M = 600.0
_CODE_COLUMNS = (
    "admin_code",
    "parent_code",
    "community_id",
    "building_id",
    "worker_id",
    "department_id",
)


def _ref_box(side_m: float) -> tuple[float, float, float, float]:
    return (
        _REF_LON,
        _REF_LAT,
        _REF_LON + side_m / _M_PER_DEG_LON,
        _REF_LAT + side_m / _M_PER_DEG_LAT,
    )


def _mapper(ref: tuple[float, float, float, float], box: tuple[float, float, float, float]):
    sx = (box[2] - box[0]) / (ref[2] - ref[0])
    sy = (box[3] - box[1]) / (ref[3] - ref[1])

    def f(c: np.ndarray) -> np.ndarray:
        return np.column_stack([box[0] + (c[:, 0] - ref[0]) * sx, box[1] + (c[:, 1] - ref[1]) * sy])

    return f


def _to_box(df: gpd.GeoDataFrame, ref, box) -> gpd.GeoDataFrame:
    geoms = shapely.transform(np.asarray(df.geometry.array), _mapper(ref, box))
    return gpd.GeoDataFrame(df.drop(columns="geometry"), geometry=geoms, crs=ALBERS)


def national_rivers(plan: NationalPlan) -> gpd.GeoDataFrame:
    """The country's river network in Albers metres: basins tile the whole country,
    so main stems and tributaries cross city and province lines.

    Built by :func:`gridkit.synth.synthetic_rivers` (numpy per sub-basin, one
    ``shapely.linestrings`` call): 10^5 km take well under a second.

    Examples
    --------
    >>> from gridkit.national import national_plan
    >>> r = national_rivers(national_plan(0.001))
    >>> round(float(r.length.sum()) / 1000, -1), r.crs.name
    (300.0, 'unknown')
    """
    x0, y0, x1, y1 = plan.bounds()
    ref = (
        _REF_LON,
        _REF_LAT,
        _REF_LON + (x1 - x0) / _M_PER_DEG_LON,
        _REF_LAT + (y1 - y0) / _M_PER_DEG_LAT,
    )
    rivers = synthetic_rivers(river_km=plan.river_km, bbox=ref, seed=plan.seed)
    out = _to_box(rivers, ref, (x0, y0, x1, y1))
    # rescale to the requested length in the national metres (the generator measures
    # in a local UTM, within ~1 %)
    return out


def river_box(plan: NationalPlan, city: CityPlan) -> tuple[float, float, float, float]:
    """The box whose rivers :func:`city_layers` uses: the city's, or the province's in
    its first city (which holds the province row), grown by a kilometre (an area drawn
    by Voronoi may reach a few metres over its city line).

    Examples
    --------
    >>> from gridkit.national import national_plan
    >>> p = national_plan(0.0032, city_buildings=10_000)
    >>> [round(v) for v in river_box(p, p.cities[1])], p.cities[1].box[0]
    ([-1381000, 2599000, -1359000, 2621000], -1380000.0)
    >>> river_box(p, p.cities[0])[2] - river_box(p, p.cities[0])[0]
    62000.0
    """
    if city.index % plan.cities_per_province == 0:
        b = np.array([c.box for c in plan.cities if c.province == city.province])
        box = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
    else:
        box = city.box
    return (
        float(box[0]) - 1000.0,
        float(box[1]) - 1000.0,
        float(box[2]) + 1000.0,
        float(box[3]) + 1000.0,
    )


def border_discs(plan: NationalPlan, city: CityPlan) -> list[tuple[str, shapely.Point]]:
    """Centres of the border communities on this city's east and north lines (only where a
    city lies behind the line), each with the side it faces.

    Examples
    --------
    >>> from gridkit.national import national_plan
    >>> p = national_plan(0.001)
    >>> [side for side, _ in border_discs(p, p.cities[0])]
    ['east']
    """
    boxes = {(round(c.box[0]), round(c.box[1])) for c in plan.cities}
    x0, y0, x1, y1 = city.box
    rng = np.random.default_rng([plan.seed, city.index, 0xB0])
    u = rng.uniform(0.3, 0.7, 2)
    out = []
    if (round(x1), round(y0)) in boxes:
        out.append(("east", shapely.Point(x1, y0 + u[0] * (y1 - y0))))
    if (round(x0), round(y1)) in boxes:
        out.append(("north", shapely.Point(x0 + u[1] * (x1 - x0), y1)))
    return out


def _recode(df: pd.DataFrame, city: CityPlan) -> pd.DataFrame:
    df = df.copy()
    for col in _CODE_COLUMNS:
        if col in df.columns:
            s = df[col].astype(str)
            s = s.str.replace(r"^990000$", city.province_code, regex=True)
            # bureaus (D…), township offices (T…), committees (C…), property firms (P…)
            s = s.str.replace(r"(^[A-Z]?|-)9902", rf"\g<1>{city.code4}", regex=True)
            df[col] = s.where(df[col].notna(), None).astype("str")
    return df


def _neighbour_discs(plan: NationalPlan, city: CityPlan) -> np.ndarray:
    """Discs of every border community touching this city (its own and its west and
    south neighbours')."""
    discs = []
    for other in plan.cities:
        if abs(other.box[0] - city.box[0]) + abs(other.box[1] - city.box[1]) > 1.5 * (
            city.box[2] - city.box[0]
        ):
            continue
        discs += [
            shapely.buffer(pt, _BORDER_RADIUS_M, quad_segs=16)
            for _, pt in border_discs(plan, other)
        ]
    return np.array(discs, dtype=object)


def _in_box(comm: gpd.GeoDataFrame, box: tuple[float, float, float, float]) -> gpd.GeoDataFrame:
    """Communities clipped to their city's square (a village drawn by Voronoi may reach
    a few metres over the city line, onto the neighbour's communities)."""
    g = np.asarray(comm.geometry.array)
    out = shapely.intersection(g, shapely.box(*box))
    parts, idx = shapely.get_parts(out, return_index=True)
    parts, idx = parts[shapely.get_type_id(parts) == 3], idx[shapely.get_type_id(parts) == 3]
    order = np.lexsort((-shapely.area(parts), idx))
    first = order[np.unique(idx[order], return_index=True)[1]]
    keep = np.zeros(len(g), dtype=bool)
    keep[idx[first]] = True
    geoms = np.empty(len(g), dtype=object)
    geoms[idx[first]] = parts[first]
    return gpd.GeoDataFrame(
        comm.drop(columns="geometry")[keep], geometry=geoms[keep], crs=comm.crs
    ).reset_index(drop=True)


def _no_overlaps(comm: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Communities made disjoint: where two overlap (villages drawn by Voronoi per
    township meet with float noise), the one with the higher id gives up the overlap."""
    g = np.asarray(comm.geometry.array).copy()
    ids = comm["community_id"].to_numpy(dtype=object)
    i, j = shapely.STRtree(g).query(g, predicate="overlaps")
    keep = ids[i] > ids[j]
    i, j = i[keep], j[keep]
    if not len(i):
        return comm
    order = np.argsort(i, kind="stable")
    i, j = i[order], j[order]
    starts = np.r_[0, np.flatnonzero(np.diff(i)) + 1]
    for s, e in zip(starts, np.r_[starts[1:], len(i)], strict=True):  # per loser, few
        cut = shapely.difference(g[i[s]], shapely.union_all(g[j[s:e]]))
        parts = shapely.get_parts(cut)
        g[i[s]] = parts[np.argmax(shapely.area(parts))]
    return gpd.GeoDataFrame(comm.drop(columns="geometry"), geometry=g, crs=comm.crs)


def _drop_near_discs(layers: dict, discs: np.ndarray) -> None:
    """Communities under a border disc go (with their buildings and staff)."""
    if not len(discs):
        return
    comm = layers["communities"]
    hit = shapely.STRtree(discs).query(np.asarray(comm.geometry.array), predicate="intersects")[0]
    gone = set(comm["community_id"].to_numpy()[np.unique(hit)].tolist())
    if not gone:
        return
    layers["communities"] = comm[~comm["community_id"].isin(gone)].reset_index(drop=True)
    b = layers["buildings"]
    layers["buildings"] = b[~b["community_id"].isin(gone)].reset_index(drop=True)
    w = layers["workers"]
    owner = w["worker_id"].str.extract(r"^(.*-C\d+)-[GH]\d+$")[0]
    layers["workers"] = w[~owner.isin(gone)].reset_index(drop=True)


def _border_community(
    plan: NationalPlan, city: CityPlan, villages: gpd.GeoDataFrame, rng: np.random.Generator
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The border communities this city owns: a disc across the line, buildings on a
    jittered grid on both sides (some straddle the line), one grid worker each."""
    comms, blds, workers = [], [], []
    vgeo = np.asarray(villages.geometry.array)
    tree = shapely.STRtree(vgeo)
    for k, (side, centre) in enumerate(border_discs(plan, city)):
        inward = (-300.0, 0.0) if side == "east" else (0.0, -300.0)
        probe = shapely.Point(centre.x + inward[0], centre.y + inward[1])
        hit = tree.query(probe, predicate="intersects")
        code = str(villages["admin_code"].to_numpy()[hit.min()])
        cid = f"{code}-C9{k}"
        disc = shapely.buffer(centre, _BORDER_RADIUS_M, quad_segs=16)
        g = np.arange(-_BORDER_RADIUS_M + 40, _BORDER_RADIUS_M - 40, 48.0)
        gx, gy = np.meshgrid(g, g)
        inside = np.hypot(gx, gy) < _BORDER_RADIUS_M - 45
        x = centre.x + gx[inside] + rng.normal(0, 3, inside.sum())
        y = centre.y + gy[inside] + rng.normal(0, 3, inside.sum())
        n = len(x)
        levels = rng.integers(4, 19, n)
        polys = building_footprints(
            x,
            y,
            width_m=rng.uniform(18, 30, n),
            depth_m=rng.uniform(11, 16, n),
            angle_rad=np.full(n, 0.02),
        )
        comms.append((cid, f"跨界{k + 1}社区", code, disc))
        blds.append(
            pd.DataFrame(
                {
                    "building_id": [f"{cid}-B{i:05d}" for i in range(n)],
                    "community_id": cid,
                    "households": pd.array(levels * rng.integers(2, 5, n), dtype="Int64"),
                    "levels": levels.astype(np.int64),
                    "is_part": False,
                    "straddles": False,
                    "synthetic": True,
                    "geometry": polys,
                }
            )
        )
        workers.append((f"{cid}-G001", "grid_worker", "village", code, 600.0, centre))
    comm = gpd.GeoDataFrame(
        pd.DataFrame(comms, columns=["community_id", "name", "admin_code", "geometry"]),
        geometry="geometry",
        crs=ALBERS,
    )
    comm["synthetic"] = True
    bld = (
        gpd.GeoDataFrame(pd.concat(blds, ignore_index=True), geometry="geometry", crs=ALBERS)
        if blds
        else None
    )
    wk = gpd.GeoDataFrame(
        pd.DataFrame(
            workers,
            columns=["worker_id", "role", "level", "admin_code", "capacity", "geometry"],
        ),
        geometry="geometry",
        crs=ALBERS,
    )
    return comm, bld, wk


def _admin(plan: NationalPlan, city: CityPlan, admin: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    names = _place_names(plan, city)
    admin = admin.copy()
    is_city = admin["level"] == "city"
    admin.loc[is_city, "name"] = names[1]
    if city.index % plan.cities_per_province == 0:  # the province row, in its first city
        pcities = [c for c in plan.cities if c.province == city.province]
        b = np.array([c.box for c in pcities])
        prov = gpd.GeoDataFrame(
            {
                "admin_code": [city.province_code],
                "name": [names[0]],
                "level": ["province"],
                "parent_code": [None],
                "synthetic": [True],
            },
            geometry=[shapely.box(b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())],
            crs=ALBERS,
        )
        admin = pd.concat([prov, admin], ignore_index=True)
    for col in ("admin_code", "name", "level", "parent_code"):
        admin[col] = admin[col].astype("str")
    return gpd.GeoDataFrame(admin, geometry="geometry", crs=ALBERS)


_P1 = list("云川江河湖岭海山平安宁华嘉兴昌")
_P2 = list("东南西北中阳源泽原州")


def _place_names(plan: NationalPlan, city: CityPlan) -> tuple[str, str]:
    p = city.province
    prov = _P1[p % len(_P1)] + _P2[(p // len(_P1) + p) % len(_P2)] + "省"
    k = city.index % plan.cities_per_province
    return prov, _P2[k % len(_P2)] + _P1[(k + p) % len(_P1)] + "市"


def city_layers(
    plan: NationalPlan, city: CityPlan, rivers: gpd.GeoDataFrame, *, months: int = 12
) -> dict[str, pd.DataFrame]:
    """Every layer of one city, in Albers metres, with the city's codes.

    Parameters
    ----------
    plan, city
        The country and the city (``plan.cities[i]``).
    rivers
        The national rivers (:func:`national_rivers`), or those meeting
        :func:`river_box` in the national order (the same layers); chiefs are
        appointed on the sections inside this city (and, in the province's first city,
        the province's).
    months
        Patrols and reports of the first ``months`` months of the year (the year's
        rows, fewer; see :func:`gridkit.national.activity.patrols_and_reports`).

    Returns
    -------
    dict
        ``admin_areas`` (the province row in the province's first city), ``communities``,
        ``buildings``, ``water_bodies``, ``workers``, ``river_chiefs``, ``departments``,
        ``patrols`` and ``reports`` (a year or ``months``, see
        :mod:`gridkit.national.activity`).

    Examples
    --------
    >>> from gridkit.national import national_plan
    >>> p = national_plan(0.0002)
    >>> layers = city_layers(p, p.cities[1], national_rivers(p))
    >>> sorted(layers["admin_areas"]["level"].unique())
    ['city', 'county', 'province', 'township', 'village']
    >>> layers["communities"]["admin_code"].str[:4].unique().tolist()
    ['1201']
    """
    ref = _ref_box(plan.city_side_m)
    raw = synthetic_layers(
        seed=city.seed,
        n_buildings=plan.buildings_per_city,
        river_km=10.0,
        n_areas=plan.villages_per_city,
        bbox=ref,
        n_counties=plan.counties_per_city,
    )
    layers: dict[str, pd.DataFrame] = {}
    for name in ("admin_areas", "communities", "buildings", "water_bodies", "workers"):
        layers[name] = _recode(_to_box(raw[name], ref, city.box), city)
    layers["departments"] = _recode(raw["departments"], city)
    w = layers["workers"]
    # the city sample's river people (chiefs, patrollers, general and province chiefs,
    # police, civilian chiefs, cleaners) give way to the country's own river staff
    river_people = w["worker_id"].str.match(r"^W-(RC|RP|PC|GC|PO|CV|CL|HO)-")
    layers["workers"] = w[~river_people.to_numpy(dtype=bool)]
    wb = layers["water_bodies"]
    wb["water_body_id"] = f"WB{city.code4}-" + wb["water_body_id"].str[2:]
    layers["admin_areas"] = _admin(plan, city, layers["admin_areas"])
    layers["communities"] = _no_overlaps(_in_box(layers["communities"], city.box))
    _drop_near_discs(layers, _neighbour_discs(plan, city))
    rng = np.random.default_rng([plan.seed, city.index, 0xC1])
    villages = layers["admin_areas"][layers["admin_areas"]["level"] == "village"]
    comm, bld, wk = _border_community(plan, city, villages, rng)
    layers["communities"] = _concat(layers["communities"], comm)
    if bld is not None:
        layers["buildings"] = _concat(layers["buildings"], bld)
    staff, chiefs = river_staff(layers["admin_areas"], rivers, city.box, rng)
    layers["workers"] = _people(_concat(layers["workers"], wk, staff), rng)
    layers["river_chiefs"] = chiefs
    patrols, reports = patrols_and_reports(layers, rivers, city, rng, months=months)
    layers["patrols"], layers["reports"] = patrols, reports
    layers["workers"] = layers["workers"].drop(columns="home", errors="ignore")
    return layers


def _concat(*frames: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    frames = [f for f in frames if f is not None and len(f)]
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=ALBERS)


_SURNAMES = np.array(list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何罗谭彭曾邓易"), dtype=object)
_GIVEN = np.array(list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红"), dtype=object)


def _people(workers: gpd.GeoDataFrame, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Names and phone numbers for staff added here (the city's own keep theirs)."""
    n = len(workers)
    missing = workers["name"].isna().to_numpy() if "name" in workers else np.ones(n, bool)
    k = int(missing.sum())
    names = _SURNAMES[rng.integers(0, len(_SURNAMES), k)] + _GIVEN[rng.integers(0, len(_GIVEN), k)]
    phones = np.char.add("199", np.char.mod("%08d", rng.integers(0, 10**8, k))).astype(object)
    workers = workers.copy()
    workers.loc[missing, "name"] = names
    workers.loc[missing, "phone"] = phones
    workers["synthetic"] = True
    for col in ("worker_id", "name", "role", "level", "admin_code", "phone"):
        workers[col] = workers[col].astype("str")
    return workers.reset_index(drop=True)
