"""River staff of a city and a year of its patrols and reports (vectorised), or the
first months of the year (an activity window: the same rows as the year's, fewer).

Chiefs are appointed per section (river x area) at every level, one person per area
holding sections (``W-RC-{code}``, based on the river); river patrollers (``W-RP-``)
walk about 5 km of river each in villages. Every grid worker patrols at the
frequency of their level (village weekly, township monthly, county quarterly, city
quarterly, province twice a year) and misses a seeded share of the windows; a patrol
is a short track (along the river for river staff, a walk round the base for
community staff). Reports fall near buildings (community categories) and along the
rivers (river categories) through the year.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.national.plan import ALBERS, CityPlan
from gridkit.synth import CATEGORIES, river_sections

__all__ = ["YEAR", "patrols_and_reports", "river_staff", "window_end"]

#: The simulated year (UTC).
YEAR = 2026
_PER_YEAR = {"village": 52, "township": 12, "county": 4, "city": 4, "province": 2}
_RIVER_CATS = np.array(list(CATEGORIES)[:8], dtype=object)
_COMMUNITY_CATS = np.array(list(CATEGORIES)[8:], dtype=object)
_FIXES = 12
_SOURCES = np.array(["patrol", "resident", "hotline"], dtype=object)


def window_end(months: int = 12) -> pd.Timestamp:
    """End (exclusive, UTC) of an activity window of the first ``months`` months of
    :data:`YEAR`.

    Raises
    ------
    ValueError
        For ``months`` outside 1-12.

    Examples
    --------
    >>> str(window_end(1)), str(window_end())
    ('2026-02-01 00:00:00+00:00', '2027-01-01 00:00:00+00:00')
    """
    if not 1 <= int(months) <= 12:
        raise ValueError(f"months must be 1-12 (the first months of {YEAR}), got {months}.")
    return pd.Timestamp(year=YEAR, month=1, day=1, tz="UTC") + pd.DateOffset(months=int(months))


def river_staff(
    admin: gpd.GeoDataFrame,
    rivers: gpd.GeoDataFrame,
    box: tuple[float, float, float, float],
    rng: np.random.Generator,
    *,
    gap_share: float = 0.03,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Chiefs and river patrollers of the areas in ``admin``.

    Returns the workers (``worker_id``, ``role``, ``level``, ``admin_code``,
    ``capacity``; geometry: a point on the area's longest river section) and the
    ``river_chiefs`` rows (``chief_id``, ``worker_id``, ``level``, ``river_id``,
    ``admin_code``); a ``gap_share`` of township and village sections has no chief.

    Examples
    --------
    >>> import geopandas as gpd, numpy as np, shapely
    >>> r = gpd.GeoDataFrame({"river_id": ["R1"]},
    ...                      geometry=[shapely.LineString([(0, 500), (9000, 500)])])
    >>> a = gpd.GeoDataFrame({"admin_code": ["430200"], "level": ["city"]},
    ...                      geometry=[shapely.box(0, 0, 5000, 1000)])
    >>> staff, chiefs = river_staff(a, r, (0, 0, 5000, 1000), np.random.default_rng(0))
    >>> chiefs["chief_id"].tolist(), staff["worker_id"].tolist()
    (['RC-430200-R1'], ['W-RC-430200'])
    """
    near = rivers.iloc[
        shapely.STRtree(np.asarray(rivers.geometry.array)).query(
            shapely.box(*admin.total_bounds), predicate="intersects"
        )
    ]
    near = near.sort_index()
    sec = river_sections(near, admin).rename(columns={"length_deg": "length_m"})
    low = sec["level"].isin(["township", "village"]).to_numpy()
    sec = sec[~(low & (rng.random(len(sec)) < gap_share))].reset_index(drop=True)
    chiefs = pd.DataFrame(
        {
            "chief_id": "RC-" + sec["admin_code"] + "-" + sec["river_id"],
            "worker_id": "W-RC-" + sec["admin_code"],
            "level": sec["level"],
            "river_id": sec["river_id"],
            "admin_code": sec["admin_code"],
            "synthetic": True,
        }
    ).astype({c: "str" for c in ("chief_id", "worker_id", "level", "river_id", "admin_code")})
    longest = sec.sort_values(["admin_code", "length_m"], ascending=[True, False])
    longest = longest.drop_duplicates("admin_code").reset_index(drop=True)
    line = _section_lines(longest, near, admin)
    capacity = sec.groupby("admin_code").size().reindex(longest["admin_code"]).to_numpy(float)
    chief_workers = pd.DataFrame(
        {
            "worker_id": "W-RC-" + longest["admin_code"],
            "role": "grid_worker",
            "level": longest["level"].to_numpy(),
            "admin_code": longest["admin_code"].to_numpy(),
            "capacity": capacity,
        }
    )
    # river patrollers: one per ~5 km of river in each village
    vil = sec[sec["level"] == "village"].groupby("admin_code", sort=True)["length_m"].sum()
    n = np.maximum(1, np.ceil(vil.to_numpy() / 5000.0)).astype(np.int64)
    code = np.repeat(vil.index.to_numpy(dtype=object), n)
    serial = np.arange(len(code)) - np.repeat(np.cumsum(n) - n, n) + 1
    patrollers = pd.DataFrame(
        {
            "worker_id": "W-RP-" + code + np.char.mod("-%02d", serial).astype(object),
            "role": "grid_worker",
            "level": "village",
            "admin_code": code,
            "capacity": 600.0,
        }
    )
    at = dict(zip(longest["admin_code"], line, strict=True))
    home = np.concatenate([line, np.array([at[c] for c in code], dtype=object)])
    staff = pd.concat([chief_workers, patrollers], ignore_index=True)
    staff["home"] = home
    pts = shapely.line_interpolate_point(home, rng.random(len(home)), normalized=True)
    return gpd.GeoDataFrame(staff, geometry=pts, crs=ALBERS), chiefs


def _section_lines(
    sections: pd.DataFrame, rivers: gpd.GeoDataFrame, admin: gpd.GeoDataFrame
) -> np.ndarray:
    rg = rivers.set_index("river_id").geometry.reindex(sections["river_id"]).to_numpy()
    ag = admin.set_index("admin_code").geometry.reindex(sections["admin_code"]).to_numpy()
    inter = shapely.intersection(rg, ag)
    parts, idx = shapely.get_parts(inter, return_index=True)
    lines = shapely.get_type_id(parts) == 1
    parts, idx = parts[lines], idx[lines]
    order = np.lexsort((-shapely.length(parts), idx))
    first = order[np.unique(idx[order], return_index=True)[1]]
    out = np.empty(len(sections), dtype=object)
    out[idx[first]] = parts[first]
    return out


def _windows(levels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(worker position, start ns) of every patrol of the year."""
    per_year = pd.Series(levels).map(_PER_YEAR).fillna(52).to_numpy(np.int64)
    miss = rng.uniform(0.0, 0.3, len(levels))
    who = np.repeat(np.arange(len(levels)), per_year)
    k = np.arange(len(who)) - np.repeat(np.cumsum(per_year) - per_year, per_year)
    keep = rng.random(len(who)) >= miss[who]
    who, k = who[keep], k[keep]
    span = pd.Timestamp(f"{YEAR + 1}-01-01", tz="UTC") - pd.Timestamp(f"{YEAR}-01-01", tz="UTC")
    length = span.value / per_year[who]
    t0 = pd.Timestamp(f"{YEAR}-01-01", tz="UTC").value
    start = t0 + (k + rng.uniform(0.05, 0.85, len(k))) * length
    return who, start.astype(np.int64)


def _tracks(homes: np.ndarray, keep: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Twelve-fix tracks of ~2.5-3 km (the rules ask >= 2 km): along a line home
    (250 m steps), a walk round a point home. The random draws are the whole year's
    (``homes``), the tracks only those of ``keep`` (the window), so a window's tracks
    are the year's."""
    is_line = shapely.get_type_id(homes) == 1
    steps = np.arange(_FIXES)
    out = np.empty(int(keep.sum()), dtype=object)
    line_k, walk_k = is_line[keep], ~is_line[keep]
    if is_line.any():
        u = rng.random(int(is_line.sum()))[keep[is_line]]
        lines = homes[keep & is_line]
        length = shapely.length(lines)
        d0 = u * np.maximum(length - 2750.0, 0.0)
        d = np.minimum(d0[:, None] + 250.0 * steps[None, :], length[:, None])
        pts = shapely.line_interpolate_point(np.repeat(lines, _FIXES), d.reshape(-1))
        xy = shapely.get_coordinates(pts).reshape(-1, _FIXES, 2)
        out[line_k] = shapely.linestrings(xy) if len(xy) else []
    if (~is_line).any():
        step = rng.normal(0, 180.0, (int((~is_line).sum()), _FIXES, 2))[keep[~is_line]]
        base = shapely.get_coordinates(homes[keep & ~is_line])
        walk = np.cumsum(step, axis=1)
        walk[:, 0] = 0.0
        out[walk_k] = shapely.linestrings(base[:, None, :] + walk) if len(base) else []
    return out


def patrols_and_reports(
    layers: dict[str, pd.DataFrame],
    rivers: gpd.GeoDataFrame,
    city: CityPlan,
    rng: np.random.Generator,
    *,
    months: int = 12,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """A year of patrols (tracks) of the city's grid workers and of reports, or those of
    the first ``months`` months (the year's rows started before :func:`window_end`,
    ids included: the random draws are the year's either way).

    Examples
    --------
    >>> from gridkit.national import city_layers, national_plan, national_rivers
    >>> p = national_plan(0.0002)
    >>> layers = city_layers(p, p.cities[0], national_rivers(p))
    >>> layers["patrols"]["started_at"].dt.year.unique().tolist()
    [2026]
    >>> sorted(layers["reports"]["source"].unique())
    ['hotline', 'patrol', 'resident']
    >>> jan = city_layers(p, p.cities[0], national_rivers(p), months=1)
    >>> jan["patrols"]["started_at"].dt.month.unique().tolist()
    [1]
    """
    end = window_end(months).value
    workers = layers["workers"]
    walkers = workers[workers["role"] == "grid_worker"].reset_index(drop=True)
    homes = np.asarray(walkers.geometry.array).copy()
    if "home" in walkers:
        has = walkers["home"].notna().to_numpy()
        homes[has] = walkers["home"].to_numpy()[has]
    who, start = _windows(walkers["level"].to_numpy(dtype=object), rng)
    minutes = rng.uniform(45, 150, len(who))
    keep = start < end
    started = pd.to_datetime(start[keep], utc=True)
    ids = np.char.mod(f"P{city.code4}-%07d", np.flatnonzero(keep)).astype(object)
    patrols = gpd.GeoDataFrame(
        {
            "patrol_id": ids,
            "worker_id": walkers["worker_id"].to_numpy(dtype=object)[who[keep]],
            "started_at": started,
            "ended_at": started + pd.to_timedelta(minutes[keep], unit="min"),
            "synthetic": True,
        },
        geometry=_tracks(homes[who], keep, rng),
        crs=ALBERS,
    ).astype({"patrol_id": "str", "worker_id": "str"})
    reports = _reports(layers, rivers, city, rng)
    in_window = (reports["reported_at"] < window_end(months)).to_numpy()
    return patrols, reports[in_window].reset_index(drop=True)


def _reports(layers, rivers, city: CityPlan, rng: np.random.Generator) -> gpd.GeoDataFrame:
    bld = layers["buildings"]
    n_c = max(1, len(bld) // 20)
    pick = rng.integers(0, len(bld), n_c)
    pc = shapely.get_coordinates(shapely.centroid(np.asarray(bld.geometry.array)[pick]))
    pc = pc + rng.normal(0, 15.0, pc.shape)
    box = shapely.box(*city.box)
    r = np.asarray(rivers.geometry.array)
    # in the rivers' order (the tree's order would depend on which rivers were given)
    hit = np.sort(shapely.STRtree(r).query(box, predicate="intersects"))
    inside = shapely.intersection(r[hit], box)
    km = float(shapely.length(inside).sum()) / 1000.0
    n_r = round(2 * km)
    if n_r:
        w = shapely.length(inside)
        line = rng.choice(len(inside), n_r, p=w / w.sum())
        at = shapely.line_interpolate_point(inside[line], rng.random(n_r), normalized=True)
        pr = shapely.get_coordinates(at)
    else:
        pr = np.zeros((0, 2))
    xy = np.vstack([pc, pr])
    n = len(xy)
    cat = np.concatenate(
        [
            _COMMUNITY_CATS[rng.integers(0, len(_COMMUNITY_CATS), n_c)],
            _RIVER_CATS[rng.integers(0, len(_RIVER_CATS), n_r)],
        ]
    )
    t0 = pd.Timestamp(f"{YEAR}-01-01", tz="UTC")
    reported = t0 + pd.to_timedelta(rng.uniform(0, 365, n), unit="D")
    return gpd.GeoDataFrame(
        {
            "report_id": pd.array([f"R{city.code4}-{i:06d}" for i in range(n)], dtype="str"),
            "category": pd.array(cat, dtype="str"),
            "description": None,
            "source": pd.array(_SOURCES[rng.integers(0, 3, n)], dtype="str"),
            "status": "reported",
            "unit_id": None,
            "reported_at": reported,
            "synthetic": True,
        },
        geometry=shapely.points(xy),
        crs=ALBERS,
    )
