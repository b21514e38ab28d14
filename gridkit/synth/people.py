"""Synthetic people and organisations: workers, river chiefs and departments."""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import WGS84
from gridkit.synth._shared import _person_names, _points_in

__all__ = ["CATEGORIES", "DEPARTMENTS", "chief_demo", "river_sections"]

#: Report categories (key -> Chinese label): river problems, then community ones.
CATEGORIES: dict[str, str] = {
    "encroachment": "侵占河道",
    "reclamation": "围垦",
    "illegal_discharge": "超标排污",
    "illegal_aquaculture": "违法养殖",
    "sand_mining": "非法采砂",
    "waterway_damage": "破坏航道",
    "illegal_fishing": "电毒炸鱼",
    "floating_garbage": "漂浮垃圾",
    "street_light": "路灯损坏",
    "road_damage": "道路破损",
    "cctv": "监控老化",
    "green_belt": "绿化带脏乱",
    "fire_equipment": "消防设施缺失",
    "sewage": "污水管网",
    "illegal_construction": "违章建筑",
    "vegetable_plot": "绿化带种菜",
}

#: Department templates (suffix of the area name -> categories it leads on).
DEPARTMENTS: dict[str, tuple[str, ...]] = {
    "水利局": ("encroachment", "reclamation", "sand_mining"),
    "生态环境局": ("illegal_discharge",),
    "农业农村局": ("illegal_aquaculture", "illegal_fishing"),
    "交通运输局": ("waterway_damage",),
    "城市管理局": (
        "floating_garbage",
        "street_light",
        "road_damage",
        "green_belt",
        "illegal_construction",
        "vegetable_plot",
    ),
    "公安局": ("cctv",),
    "消防救援大队": ("fire_equipment",),
    "住房和城乡建设局": ("sewage",),
}


_KM_PER_DEG = 105.0  # rough km per degree of line length around 27 N (for sizing only)


def river_sections(rivers: gpd.GeoDataFrame, admin: gpd.GeoDataFrame) -> pd.DataFrame:
    """River sections: every (river, admin area) pair where the river runs inside the area.

    Parameters
    ----------
    rivers
        ``rivers`` layer.
    admin
        ``admin_areas`` layer (any levels).

    Returns
    -------
    DataFrame with ``river_id``, ``admin_code``, ``level``, ``length_deg`` (the
    intersection length in degrees, > 0; use it only to rank).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> rivers = gpd.GeoDataFrame({"river_id": ["R1"]},
    ...                           geometry=[shapely.LineString([(0, 0.5), (2, 0.5)])])
    >>> admin = gpd.GeoDataFrame({"admin_code": ["430202", "430203"], "level": "county"},
    ...                          geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 3, 1)])
    >>> river_sections(rivers, admin)[["river_id", "admin_code", "length_deg"]].values.tolist()
    [['R1', '430202', 1.0], ['R1', '430203', 1.0]]
    """
    rg = np.asarray(rivers.geometry.array)
    ag = np.asarray(admin.geometry.array)
    r, a = shapely.STRtree(ag).query(rg, predicate="intersects")
    length = shapely.length(shapely.intersection(rg[r], ag[a]))
    keep = length > 0
    return pd.DataFrame(
        {
            "river_id": rivers["river_id"].to_numpy()[r[keep]],
            "admin_code": admin["admin_code"].to_numpy()[a[keep]],
            "level": admin["level"].to_numpy()[a[keep]],
            "length_deg": length[keep],
        }
    )


@dataclass
class _Staff:
    """The job of :func:`_people`: the worker rows made so far and their points.

    Stages add rows in a fixed order (chiefs, grid workers, building heads, river
    patrollers), each drawing from ``rng`` in turn, so the same seed gives the same
    people.
    """

    rng: np.random.Generator
    frames: list[pd.DataFrame] = field(default_factory=list)
    points: list[np.ndarray] = field(default_factory=list)

    def add(self, frame: pd.DataFrame, points: np.ndarray) -> None:
        self.frames.append(frame)
        self.points.append(points)


def _serial(own: np.ndarray) -> np.ndarray:
    """1-based serial of each row within its (sorted) owner."""
    return np.arange(len(own)) - np.searchsorted(own, own) + 1


def _placed(
    job: _Staff,
    areas: np.ndarray,
    counts: np.ndarray,
    ids: np.ndarray,
    codes: np.ndarray,
    *,
    id_format: str,
    role: str,
    capacity: float,
) -> None:
    """``counts[i]`` village-level workers at random points of ``areas[i]``, with ids
    ``ids[i] + id_format % serial`` and admin code ``codes[i]``."""
    x, y, own = _points_in(areas, counts, job.rng)
    frame = pd.DataFrame(
        {
            "worker_id": ids[own] + np.char.mod(id_format, _serial(own)).astype(object),
            "role": role,
            "level": "village",
            "admin_code": codes[own],
            "capacity": capacity,
        }
    )
    job.add(frame, shapely.points(x, y))


def _chiefs(
    job: _Staff, admin: gpd.GeoDataFrame, sections: pd.DataFrame, *, gap_share: float
) -> pd.DataFrame:
    """River chiefs: one person per area holding sections, appointed to each section
    there; a share of township and village sections deliberately has no chief."""
    low = sections["level"].isin(["township", "village"]).to_numpy()
    gap = low & (job.rng.random(len(sections)) < gap_share)
    if low.any() and not gap.any():
        gap[job.rng.choice(np.flatnonzero(low))] = True
    appointed = sections[~gap].reset_index(drop=True)
    areas = appointed.drop_duplicates("admin_code")[["admin_code", "level"]]
    areas = areas.reset_index(drop=True)
    area_geom = admin.set_index("admin_code").geometry.reindex(areas["admin_code"])
    chief_workers = pd.DataFrame(
        {
            "worker_id": [f"W-RC-{c}" for c in areas["admin_code"]],
            "role": "grid_worker",
            "level": areas["level"].to_numpy(),
            "admin_code": areas["admin_code"].to_numpy(),
            "capacity": appointed.groupby("admin_code")
            .size()
            .reindex(areas["admin_code"])
            .to_numpy(dtype=float),
        }
    )
    job.add(chief_workers, shapely.point_on_surface(np.asarray(area_geom.array)))
    by_area = dict(zip(areas["admin_code"], chief_workers["worker_id"], strict=True))
    chiefs = pd.DataFrame(
        {
            "chief_id": [f"RC{i + 1:05d}" for i in range(len(appointed))],
            "worker_id": appointed["admin_code"].map(by_area).to_numpy(),
            "level": appointed["level"].to_numpy(),
            "river_id": appointed["river_id"].to_numpy(),
            "admin_code": appointed["admin_code"].to_numpy(),
            "synthetic": True,
        }
    )
    for col in ("chief_id", "worker_id", "level", "river_id", "admin_code"):
        chiefs[col] = chiefs[col].astype("str")
    return chiefs


def _community_staff(
    job: _Staff, communities: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame
) -> None:
    """Community grid workers (~1 per 300 households, each able to hold two grids of
    ~250 households) and building heads (~1 per 8 buildings)."""
    per_community = buildings.groupby("community_id")
    hh = per_community["households"].sum().reindex(communities["community_id"]).fillna(0)
    nb = per_community.size().reindex(communities["community_id"]).fillna(0)
    geoms = np.asarray(communities.geometry.array)
    ids = communities["community_id"].to_numpy(dtype=object)
    codes = communities["admin_code"].to_numpy(dtype=object)
    n_grid = np.maximum(1, np.ceil(hh.to_numpy(dtype=float) / 300)).astype(np.int64)
    n_head = np.maximum(1, np.ceil(nb.to_numpy(dtype=np.int64) / 8)).astype(np.int64)
    _placed(job, geoms, n_grid, ids, codes, id_format="-G%03d", role="grid_worker", capacity=600.0)
    _placed(job, geoms, n_head, ids, codes, id_format="-H%03d", role="building_head", capacity=8.0)


def _river_patrollers(job: _Staff, admin: gpd.GeoDataFrame, sections: pd.DataFrame) -> None:
    """River patrollers: one per ~5 km of river in each village, 600 points = 6 km."""
    village_km = (
        sections[sections["level"] == "village"].groupby("admin_code")["length_deg"].sum()
        * _KM_PER_DEG
    )
    geoms = np.asarray(admin.set_index("admin_code").geometry.reindex(village_km.index).array)
    n_patrol = np.maximum(1, np.ceil(village_km.to_numpy() / 5.0)).astype(np.int64)
    codes = village_km.index.to_numpy(dtype=object)
    ids = "W-RP-" + codes
    _placed(job, geoms, n_patrol, ids, codes, id_format="-%02d", role="grid_worker", capacity=600.0)


_WORKER_COLUMNS = [
    "worker_id",
    "name",
    "role",
    "level",
    "admin_code",
    "capacity",
    "phone",
    "synthetic",
    "geometry",
]


def _workers(job: _Staff) -> gpd.GeoDataFrame:
    """The ``workers`` layer of everyone placed, with names and phone numbers."""
    people = pd.concat(job.frames, ignore_index=True)
    n = len(people)
    people["name"] = _person_names(job.rng, n)
    people["phone"] = np.char.add("199", np.char.mod("%08d", job.rng.integers(0, 10**8, n)))
    people["synthetic"] = True
    for col in ("worker_id", "name", "role", "level", "admin_code", "phone"):
        people[col] = people[col].astype("str")
    workers = gpd.GeoDataFrame(people, geometry=np.concatenate(job.points), crs=WGS84)
    return workers[_WORKER_COLUMNS]


def _departments(admin: gpd.GeoDataFrame) -> pd.DataFrame:
    """Departments at city and county level, one per template of :data:`DEPARTMENTS`."""
    top = admin[admin["level"].isin(["city", "county"])]
    rows = [
        (f"D{code}-{k:02d}", f"{name}{suffix}", code, ",".join(cats))
        for code, name in zip(top["admin_code"], top["name"], strict=True)
        for k, (suffix, cats) in enumerate(DEPARTMENTS.items(), 1)
    ]
    departments = pd.DataFrame(
        rows, columns=["department_id", "name", "admin_code", "categories"]
    ).astype("str")
    departments["synthetic"] = True
    return departments


def _people(
    admin: gpd.GeoDataFrame,
    rivers: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    rng: np.random.Generator,
    *,
    gap_share: float,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    """Workers (grid workers, building heads, chiefs), chief appointments, departments."""
    sections = river_sections(rivers, admin)
    job = _Staff(rng)
    chiefs = _chiefs(job, admin, sections, gap_share=gap_share)
    _community_staff(job, communities, buildings)
    _river_patrollers(job, admin, sections)
    return _workers(job), chiefs, _departments(admin)


def chief_demo(mode: str = "car") -> tuple[gpd.GeoDataFrame, pd.DataFrame, gpd.GeoDataFrame]:
    """A small river-chief case: two river units of river ``R1`` (two villages of
    county 430202), a county chief (``RC-CAR``, worker ``W-C``) who drove the riverside
    road 170 m from the water, there and back at about 30 km/h, declared as ``mode``,
    and a village chief (``RC-V``, worker ``W-V``) with one paper record (台账).

    Returns
    -------
    tuple
        ``units``, ``river_chiefs``, ``patrols`` (the drive with its track, the paper
        record without one).

    Examples
    --------
    >>> units, chiefs, patrols = chief_demo()
    >>> len(units), chiefs["level"].tolist(), patrols["mode"].tolist()
    (2, ['county', 'village'], ['car', nan])
    """
    x = np.array([113.10, 113.15, 113.20])
    river = [shapely.LineString([(x[i], 27.80), (x[i + 1], 27.80)]) for i in range(2)]
    units = gpd.GeoDataFrame(
        {
            "unit_id": ["430202001001R1-1", "430202001002R1-1"],
            "kind": "river_reach",
            "parent_id": "R1",
            "reach_id": ["R1-a", "R1-b"],
            "admin_code": ["430202001001", "430202001002"],
            "bank": "both",
            "length_m": 4932.0,
        },
        geometry=gpd.GeoSeries(river, crs=WGS84).to_crs(32649).buffer(50).to_crs(WGS84),
    )
    chiefs = pd.DataFrame(
        {
            "chief_id": ["RC-CAR", "RC-V"],
            "worker_id": ["W-C", "W-V"],
            "level": ["county", "village"],
            "river_id": "R1",
            "admin_code": ["430202", "430202001001"],
            "role": "chief",
        }
    )
    go = np.linspace(113.10, 113.20, 21)
    xs = np.r_[go, go[::-1][1:]]
    ys = np.r_[np.full(21, 27.8015), np.full(20, 27.8016)]
    start = pd.Timestamp("2026-05-06T01:00Z")
    patrols = gpd.GeoDataFrame(
        {
            "patrol_id": ["P-CAR", "P-LEDGER"],
            "worker_id": ["W-C", "W-V"],
            "started_at": [start, pd.Timestamp("2026-05-07T01:00Z")],
            "ended_at": [start + pd.Timedelta(minutes=40), pd.Timestamp("2026-05-07T02:00Z")],
            "mode": [mode, None],
            "source": ["app", "ledger"],
            "verified": [True, False],
            "chief_id": [None, "RC-V"],
        },
        geometry=[shapely.LineString(np.c_[xs, ys]), None],
        crs=WGS84,
    )
    return units, chiefs, patrols
