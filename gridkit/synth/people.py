"""Synthetic people and organisations: workers, river chiefs and departments."""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.codes import level as codes_level
from gridkit.crs import WGS84
from gridkit.synth._shared import _person_names, _points_in

__all__ = ["CATEGORIES", "DEPARTMENTS", "LOCAL_HANDLERS", "chief_demo", "river_sections"]

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


#: Categories handled on site by township offices, community committees and property
#: companies (分级处置: "小事不出门, 大事不出小区").
LOCAL_HANDLERS: dict[str, tuple[str, ...]] = {
    "township_office": (
        "floating_garbage",
        "illegal_aquaculture",
        "street_light",
        "road_damage",
        "green_belt",
        "fire_equipment",
        "sewage",
        "illegal_construction",
        "vegetable_plot",
        "cctv",
    ),
    "community_committee": (
        "street_light",
        "green_belt",
        "vegetable_plot",
        "fire_equipment",
        "cctv",
    ),
    "property_company": (
        "street_light",
        "green_belt",
        "vegetable_plot",
        "fire_equipment",
        "sewage",
    ),
}
_TOWN_OFFICE = {"街道": "街道办事处", "镇": "镇人民政府", "乡": "乡人民政府"}


def _bureaus(admin: gpd.GeoDataFrame) -> pd.DataFrame:
    """Bureaus at city and county level, one per template of :data:`DEPARTMENTS`."""
    top = admin[admin["level"].isin(["city", "county"])]
    rows = [
        (f"D{code}-{k:02d}", f"{name}{suffix}", code, ",".join(cats), "bureau")
        for code, name in zip(top["admin_code"], top["name"], strict=True)
        for k, (suffix, cats) in enumerate(DEPARTMENTS.items(), 1)
    ]
    return pd.DataFrame(rows, columns=_DEPT_COLUMNS)


def _local_handlers(admin: gpd.GeoDataFrame, communities: gpd.GeoDataFrame) -> pd.DataFrame:
    """A township office per township (T + code), a committee per community (C + id) and
    a property company for every other community (P + id), with real-shaped codes."""
    town = admin[admin["level"] == "township"]
    suffix = town["name"].astype(str).str.extract(r"(街道|镇|乡)$", expand=False).fillna("街道")
    offices = pd.DataFrame(
        {
            "department_id": "T" + town["admin_code"].astype(str),
            "name": town["name"].astype(str).str.replace(r"(街道|镇|乡)$", "", regex=True)
            + suffix.map(_TOWN_OFFICE),
            "admin_code": town["admin_code"].astype(str),
            "categories": ",".join(LOCAL_HANDLERS["township_office"]),
            "handler_type": "township_office",
        }
    )
    com = communities.sort_values("community_id")
    cid, cname = com["community_id"].astype(str), com["name"].astype(str)
    committees = pd.DataFrame(
        {
            "department_id": "C" + cid,
            "name": cname.str.replace(r"(社区|村)$", "", regex=True)
            + np.where(cname.str.endswith("村"), "村民委员会", "社区居民委员会"),
            "admin_code": com["admin_code"].astype(str),
            "categories": ",".join(LOCAL_HANDLERS["community_committee"]),
            "handler_type": "community_committee",
        }
    )
    half = com.iloc[::2]  # every other community has a property company (物业)
    companies = pd.DataFrame(
        {
            "department_id": "P" + half["community_id"].astype(str),
            "name": half["name"].astype(str).str[:2] + "物业服务有限公司",
            "admin_code": half["admin_code"].astype(str),
            "categories": ",".join(LOCAL_HANDLERS["property_company"]),
            "handler_type": "property_company",
        }
    )
    return pd.concat([offices, committees, companies], ignore_index=True)


_DEPT_COLUMNS = ["department_id", "name", "admin_code", "categories", "handler_type"]


def _departments(admin: gpd.GeoDataFrame, communities: gpd.GeoDataFrame) -> pd.DataFrame:
    """Handlers at every level: bureaus of the city and counties, township offices,
    community committees and property companies."""
    departments = pd.concat(
        [_bureaus(admin), _local_handlers(admin, communities)], ignore_index=True
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
    workers = _workers(job)
    # the rest of the practice from a generator of its own: the rows above stay as they were
    more = _Staff(np.random.default_rng(len(sections) * 7919 + len(workers)))
    chiefs = _practice_chiefs(more, admin, rivers, chiefs, workers["worker_id"])
    if more.frames:
        workers = pd.concat([workers, _workers(more)], ignore_index=True)
    return workers, chiefs, _departments(admin, communities)


#: the sample's appointments start here; a few chiefs change on _HANDOVER
_TERM_START = pd.Timestamp("2025-01-01", tz="UTC")
_HANDOVER = pd.Timestamp("2026-04-01", tz="UTC")


def _new_people(
    job: _Staff, admin: gpd.GeoDataFrame, ids: np.ndarray, codes: np.ndarray, levels: np.ndarray
) -> None:
    """Worker rows for new people ``ids`` placed at a point of their area."""
    geom = admin.set_index("admin_code").geometry
    area = np.asarray(geom.reindex(codes).array)
    # an area above the layer (the province of a city's sample) has no polygon of its
    # own: its people sit in the highest area the layer has
    top = admin.geometry.iloc[int(np.argmax(shapely.area(np.asarray(admin.geometry.array))))]
    area = np.where(shapely.is_missing(area), top, area)
    pts = shapely.point_on_surface(area)
    job.add(
        pd.DataFrame(
            {
                "worker_id": ids,
                "role": "grid_worker",
                # a general chief (总河长) is a person of his area's level
                "level": np.where(levels == "general", codes_level(codes), levels),
                "admin_code": codes,
                "capacity": 0.0,
            }
        ),
        pts,
    )


def _practice_chiefs(
    job: _Staff,
    admin: gpd.GeoDataFrame,
    rivers: gpd.GeoDataFrame,
    chiefs: pd.DataFrame,
    people: pd.Series,
) -> pd.DataFrame:
    """Appointments as the practice makes them, on top of the four levels: a province
    chief for the main stem, a general chief (总河长) per city, county and township,
    terms (``valid_from``/``valid_to``) with a few chiefs handed over on 1 April 2026,
    and the supporting roles (river police chief per county section, civilian chief
    and cleaner on some village sections), which carry no patrol duty. In a village the
    supporting roles and a successor are the village's river patroller (an existing
    grid worker); new people are placed above village level only."""
    rng = job.rng
    main = rivers["river_id"].iloc[0]
    city = admin.loc[admin["level"] == "city", "admin_code"].astype(str)
    prov = [f"{c[:2]}0000" for c in city.iloc[:1]]
    rows = [chiefs.assign(role="chief", valid_from=_TERM_START, valid_to=None)]
    rows.append(_role_rows(prov, "province", [main] * len(prov), "chief", "PC"))
    # a general chief (总河长) in every city, county and township with river sections
    tops = admin[admin["level"].isin(["city", "county", "township"])]
    tops = tops[tops["admin_code"].astype(str).isin(chiefs["admin_code"])]
    g_codes = tops["admin_code"].astype(str).to_numpy()
    rows.append(_role_rows(g_codes, "general", [None] * len(g_codes), "chief", "GC"))
    county = chiefs[chiefs["level"] == "county"]
    rows.append(_role_rows(county["admin_code"], "county", county["river_id"], "police", "PO"))
    village = chiefs[chiefs["level"] == "village"]
    patroller = "W-RP-" + village["admin_code"] + "-01"
    village = village[patroller.isin(people).to_numpy()]
    for role, prefix, share in (("civilian", "CV", 0.15), ("cleaner", "CL", 0.3)):
        pick = village[rng.random(len(village)) < share]
        r = _role_rows(pick["admin_code"], "village", pick["river_id"], role, prefix)
        rows.append(r.assign(worker_id=("W-RP-" + pick["admin_code"] + "-01").to_numpy()))
    # a few township and village chiefs hand over to a successor
    low = chiefs[chiefs["level"].eq("township") | chiefs["chief_id"].isin(village["chief_id"])]
    old = low[rng.random(len(low)) < 0.05]
    successor = np.where(
        old["level"].eq("village"), "W-RP-" + old["admin_code"] + "-01", "W-HO-" + old["chief_id"]
    )
    new = old.assign(chief_id="HO-" + old["chief_id"], worker_id=successor, role="chief")
    rows.append(new.assign(valid_from=_HANDOVER, valid_to=None))
    out = pd.concat(rows, ignore_index=True)
    out["valid_from"] = pd.to_datetime(out["valid_from"], utc=True)
    out["valid_to"] = pd.to_datetime(out["valid_to"], utc=True)
    out.loc[out["chief_id"].isin(old["chief_id"]), "valid_to"] = _HANDOVER
    fresh = out[~out["worker_id"].isin(people)].drop_duplicates("worker_id")
    _new_people(
        job,
        admin,
        fresh["worker_id"].to_numpy(dtype=object),
        fresh["admin_code"].to_numpy(dtype=object),
        fresh["level"].to_numpy(dtype=object),
    )
    out["synthetic"] = True
    return out


def _role_rows(
    codes: object, level: str, river_ids: object, role: str, prefix: str
) -> pd.DataFrame:
    """Appointments of one kind: one person per (area, role), one row per section."""
    c = np.asarray(codes, dtype=object).astype(str)
    r = np.asarray(river_ids, dtype=object)
    suffix = np.where(pd.isna(r), "", "-" + r.astype(str))
    return pd.DataFrame(
        {
            "chief_id": prefix + "-" + c + suffix,
            "worker_id": "W-" + prefix + "-" + c,
            "level": level,
            "river_id": r,
            "admin_code": c,
            "role": role,
            "valid_from": _TERM_START,
            "valid_to": None,
        }
    )


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
