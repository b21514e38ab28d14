"""Building heads (楼栋长) on the sample: linked to buildings, and their 巡记做报 records.

The synthetic people (``gridkit.synth.people``) include building heads per community
(``role = building_head``, ``admin_code`` of their community) but no buildings;
:func:`link_building_heads` gives each building of a community one head of that
community, neighbouring buildings to the same head (several buildings per head), and
:func:`simulate_head_records` a month of their visits, household notes, small fixes and
reports up.

Examples
--------
>>> import geopandas as gpd, pandas as pd, shapely
>>> buildings = gpd.GeoDataFrame({"building_id": [f"B{i}" for i in range(6)],
...     "community_id": "C1", "households": 30},
...     geometry=[shapely.Point(113.1 + i * 0.0003, 27.8) for i in range(6)], crs=4326)
>>> communities = pd.DataFrame({"community_id": ["C1"], "admin_code": ["430202001001"]})
>>> workers = pd.DataFrame({"worker_id": ["H1", "H2", "G1"],
...     "role": ["building_head", "building_head", "grid_worker"],
...     "admin_code": ["430202001001"] * 3})
>>> heads = link_building_heads(buildings, workers, communities=communities)
>>> heads.groupby("worker_id")["building_id"].apply(list).to_dict()
{'H1': ['B0', 'B1', 'B2'], 'H2': ['B3', 'B4', 'B5']}
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import WGS84, to_wgs84

__all__ = ["HEAD_RECORD_KINDS", "link_building_heads", "simulate_head_records"]

#: 巡 visit, 记 note, 做 fix, 报 report, and their shares among the records
HEAD_RECORD_KINDS = {"visit": 0.6, "note": 0.2, "fix": 0.15, "report": 0.05}
_NOTES = {
    "visit": "楼栋巡查, 无异常",
    "note": "走访住户, 记录诉求",
    "fix": "楼道杂物清理 / 更换楼道灯",
    "report": "发现问题, 上报网格员",
}
BAND_DEG = 0.001  # rows of about 110 m: neighbours in a row go to the same head


def _utc(value: object) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def link_building_heads(
    buildings: gpd.GeoDataFrame,
    workers: pd.DataFrame,
    *,
    communities: pd.DataFrame | None = None,
    valid_from: object = None,
) -> pd.DataFrame:
    """Give each building a head of its community: buildings in rows of ~110 m (a
    serpentine order), cut into as many runs of neighbours as the area has heads.

    Parameters
    ----------
    buildings
        ``building_id``, ``community_id`` and footprints (or points).
    workers
        The people: rows with ``role == "building_head"`` and their ``admin_code``.
    communities
        ``community_id`` -> ``admin_code`` (default: a building's community id up to
        its first ``-`` is taken as the code, as in the sample's ids).
    valid_from
        Start of the appointments (UTC; default none: valid from always).

    Returns
    -------
    pandas.DataFrame
        The ``building_heads`` layer: ``building_id``, ``worker_id``, ``stairwell``
        (None: the whole building), ``valid_from``, ``valid_to``. Buildings of an area
        without heads get none (they show as buildings without a head).

    Examples
    --------
    See the module's example.
    """
    heads = workers[(workers["role"] == "building_head").to_numpy()]
    heads = heads.sort_values("worker_id", kind="stable")
    if communities is not None:
        code_of = pd.Series(
            communities["admin_code"].astype(str).to_numpy(),
            index=communities["community_id"].astype(str).to_numpy(),
        )
        area = buildings["community_id"].astype(str).map(code_of)
    else:
        area = buildings["community_id"].astype(str).str.split("-").str[0]
    pts = shapely.point_on_surface(np.asarray(to_wgs84(buildings).geometry.array))
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    band = np.floor((y - np.nanmin(y, initial=0.0)) / BAND_DEG)
    serpentine = np.where(band % 2 == 0, x, -x)  # alternate directions: runs stay compact
    order = pd.DataFrame(
        {"i": np.arange(len(buildings)), "area": area.to_numpy(), "band": band, "s": serpentine}
    ).sort_values(["area", "band", "s"], kind="stable")
    order["rank"] = order.groupby("area").cumcount()
    order["n_b"] = order.groupby("area")["i"].transform("size")
    n_h = heads.groupby("admin_code").size()
    order["n_h"] = order["area"].map(n_h).fillna(0).astype(int)
    order = order[order["n_h"] > 0]
    k = (order["rank"] * order["n_h"] // order["n_b"]).astype(int)
    first = heads.reset_index(drop=True).groupby("admin_code").cumcount()
    head_at = pd.Series(
        heads["worker_id"].to_numpy(),
        index=pd.MultiIndex.from_arrays([heads["admin_code"].to_numpy(), first.to_numpy()]),
    )
    who = head_at.reindex(pd.MultiIndex.from_arrays([order["area"], k])).to_numpy()
    out = pd.DataFrame(
        {
            "building_id": buildings["building_id"].to_numpy(dtype=object)[order["i"]],
            "worker_id": who,
            "stairwell": None,
            "valid_from": _utc(valid_from) if valid_from is not None else pd.NaT,
            "valid_to": pd.NaT,
        }
    )
    out["valid_from"] = pd.to_datetime(out["valid_from"], utc=True)
    out["valid_to"] = pd.to_datetime(out["valid_to"], utc=True)
    return out.sort_values("building_id", kind="stable").reset_index(drop=True)


def simulate_head_records(
    building_heads: pd.DataFrame,
    *,
    start: object,
    end: object,
    per_building_month: float = 4.0,
    seed: int = 0,
    buildings: gpd.GeoDataFrame | None = None,
) -> pd.DataFrame:
    """A period of building heads' 巡记做报: visits, household notes, small fixes and
    reports up, at daytime hours (08:00-20:00 Beijing time).

    Parameters
    ----------
    building_heads
        The ``building_heads`` layer.
    start, end
        The period (UTC, end excluded).
    per_building_month
        Records per building and 30 days, on average (Poisson).
    seed
        Random seed.
    buildings
        When given, records carry the building's point (a GeoDataFrame out).

    Returns
    -------
    pandas.DataFrame
        The ``head_records`` layer: ``record_id``, ``worker_id``, ``building_id``,
        ``kind`` (:data:`HEAD_RECORD_KINDS`), ``at``, ``note``, ``report_id`` (None).

    Examples
    --------
    >>> import pandas as pd
    >>> heads = pd.DataFrame({"building_id": ["B1", "B2"], "worker_id": ["H1", "H1"]})
    >>> rec = simulate_head_records(heads, start="2026-03-01", end="2026-04-01", seed=1)
    >>> set(rec["kind"]) <= set(HEAD_RECORD_KINDS), rec["at"].min() >= _utc("2026-03-01")
    (True, True)
    """
    rng = np.random.default_rng(seed)
    t0, t1 = _utc(start), _utc(end)
    days = (t1 - t0) / pd.Timedelta("1D")
    linked = building_heads[building_heads["worker_id"].notna().to_numpy()]
    n = rng.poisson(per_building_month * days / 30.0, size=len(linked))
    idx = np.repeat(np.arange(len(linked)), n)
    kinds = np.array(list(HEAD_RECORD_KINDS))
    kind = rng.choice(kinds, size=len(idx), p=list(HEAD_RECORD_KINDS.values()))
    day = rng.integers(0, max(int(days), 1), size=len(idx))
    local_h = rng.uniform(8.0, 20.0, size=len(idx))  # daytime, Beijing time
    at = t0 + pd.to_timedelta(day, unit="D") + pd.to_timedelta(local_h - 8.0, unit="h")
    out = pd.DataFrame(
        {
            "record_id": [f"HR{i:07d}" for i in range(1, len(idx) + 1)],
            "worker_id": linked["worker_id"].to_numpy(dtype=object)[idx],
            "building_id": linked["building_id"].to_numpy(dtype=object)[idx],
            "kind": kind,
            "at": at,
            "note": pd.Series(kind).map(_NOTES).to_numpy(dtype=object),
            "report_id": None,
        }
    )
    out = out.sort_values("at", kind="stable").reset_index(drop=True)
    out["record_id"] = [f"HR{i:07d}" for i in range(1, len(out) + 1)]
    if buildings is None:
        return out
    b = to_wgs84(buildings)
    pos = pd.Series(np.arange(len(b)), index=b["building_id"].to_numpy())
    geoms = shapely.point_on_surface(np.asarray(b.geometry.array))[
        out["building_id"].map(pos).to_numpy(dtype=int)
    ]
    return gpd.GeoDataFrame(out, geometry=geoms, crs=WGS84)
