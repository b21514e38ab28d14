"""Seeded synthetic layers for map tests and benchmarks (a square grid near Zhuzhou).

Not sample data: just enough of the data contract to draw every kind of map.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["assignments", "compliance", "hotspot_units", "reports", "units"]

_ORIGIN = (113.1, 27.8)
_CELL_DEG = 0.002  # about 200 m x 220 m
_CATEGORIES = ("侵占河道", "超标排污", "漂浮垃圾", "路灯损坏", "违法建设")


def units(n: int, *, seed: int = 0, cell_deg: float = _CELL_DEG) -> gpd.GeoDataFrame:
    """``n`` square units in rows of ``ceil(sqrt(n))`` (ids embed an admin code).

    Examples
    --------
    >>> u = units(5)
    >>> u["unit_id"].tolist()[:3]
    ['430202000001-0000', '430202000001-0001', '430202000001-0002']
    >>> u["kind"].tolist()
    ['river_reach', 'community_grid', 'community_grid', 'river_reach', 'community_grid']
    """
    rng = np.random.default_rng(seed)
    cols = math.ceil(math.sqrt(n))
    i = np.arange(n)
    x0 = _ORIGIN[0] + (i % cols) * cell_deg
    y0 = _ORIGIN[1] + (i // cols) * cell_deg
    geoms = shapely.box(x0, y0, x0 + cell_deg, y0 + cell_deg)
    village = i // max(1, cols)  # one "village" per row
    admin = np.char.add("430202", np.char.zfill((village + 1).astype(str), 6))
    river = i % 3 == 0
    return gpd.GeoDataFrame(
        {
            "unit_id": [f"{a}-{k:04d}" for a, k in zip(admin, i, strict=True)],
            "kind": np.where(river, "river_reach", "community_grid"),
            "parent_id": np.where(river, "R1", [f"C{v:03d}" for v in village]),
            "admin_code": admin,
            "name": [f"荷塘区第{k + 1}网格" for k in i],
            "households": rng.integers(50, 400, n),
            "length_m": np.where(river, 200.0, np.nan),
            "version": 1,
        },
        geometry=geoms,
        crs=4326,
    )


def assignments(
    u: gpd.GeoDataFrame, *, n_workers: int, seed: int = 0, unassigned: float = 0.1
) -> pd.DataFrame:
    """Workers ``W001``... on all but about ``unassigned`` of the units.

    Examples
    --------
    >>> assignments(units(5), n_workers=2).to_dict("list")  # doctest: +NORMALIZE_WHITESPACE
    {'unit_id': ['430202000001-0000', '430202000001-0001', '430202000002-0004'],
     'worker_id': ['W001', 'W001', 'W002']}
    """
    rng = np.random.default_rng(seed)
    keep = rng.random(len(u)) >= unassigned
    ids = u["unit_id"].to_numpy()[keep]
    workers = (np.arange(len(ids)) * n_workers // max(1, len(ids))) + 1
    return pd.DataFrame({"unit_id": ids, "worker_id": [f"W{w:03d}" for w in workers]})


def compliance(a: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """A ``patrol_compliance``-shaped frame: in time, overdue and never-patrolled units.

    Examples
    --------
    >>> c = compliance(assignments(units(5), n_workers=2))
    >>> c.columns.tolist()[:6], len(c)
    (['unit_id', 'worker_id', 'level', 'required', 'done', 'compliant'], 3)
    """
    rng = np.random.default_rng(seed)
    n = len(a)
    required = np.full(n, 4)
    done = rng.integers(0, 6, n)
    never = rng.random(n) < 0.1
    done[never] = 0
    compliant = done >= required
    end = pd.Timestamp("2026-03-31")
    last = end - pd.to_timedelta(rng.integers(0, 40, n), unit="D")
    last = pd.Series(last).where(~never)
    overdue = np.where(compliant, 0.0, rng.integers(1, 30, n).astype(float))
    return pd.DataFrame(
        {
            "unit_id": a["unit_id"].to_numpy(),
            "worker_id": a["worker_id"].to_numpy(),
            "level": "village",
            "required": required,
            "done": done,
            "compliant": compliant,
            "last_patrol": last.to_numpy(),
            "days_overdue": overdue,
        }
    )


def reports(u: gpd.GeoDataFrame, n: int, *, seed: int = 0) -> gpd.GeoDataFrame:
    """``n`` report points inside random units, some open, some closed.

    Examples
    --------
    >>> u = units(5)
    >>> r = reports(u, 4)
    >>> len(r), bool(r.within(u.union_all()).all()), bool(r["unit_id"].isin(u["unit_id"]).all())
    (4, True, True)
    """
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(u), n)
    b = u.geometry.bounds.to_numpy()[pick]
    x = b[:, 0] + rng.random(n) * (b[:, 2] - b[:, 0])
    y = b[:, 1] + rng.random(n) * (b[:, 3] - b[:, 1])
    return gpd.GeoDataFrame(
        {
            "report_id": [f"R{k:05d}" for k in range(n)],
            "category": rng.choice(_CATEGORIES, n),
            "description": [f"第{k}号问题：河道旁发现垃圾" for k in range(n)],
            "source": "patrol",
            "status": rng.choice(["reported", "assigned", "resolved", "closed"], n),
            "unit_id": u["unit_id"].to_numpy()[pick],
            "reported_at": pd.Timestamp("2026-03-01")
            + pd.to_timedelta(rng.integers(0, 30 * 24, n), unit="h"),
        },
        geometry=shapely.points(x, y),
        crs=4326,
    )


def hotspot_units(u: gpd.GeoDataFrame, *, seed: int = 0) -> gpd.GeoDataFrame:
    """Units with ``count``, ``rate``, ``gi_z``, ``gi_p``, ``hotspot`` columns.

    Examples
    --------
    >>> hotspot_units(units(5))["hotspot"].tolist()
    ['not significant', 'hot-95', 'hot-99', 'not significant', 'hot-95']
    """
    from scipy.stats import norm  # heavy, and only these map frames need it

    rng = np.random.default_rng(seed)
    out = u.copy()
    b = out.geometry.bounds
    cx = ((b["minx"] + b["maxx"]) / 2).to_numpy()
    z = 3.5 * np.sin((cx - cx.min()) * 400) + rng.normal(0, 0.5, len(u))
    out["count"] = rng.poisson(3, len(u))
    out["rate"] = out["count"] / out["households"] * 100
    out["gi_z"] = z
    out["gi_p"] = 2 * norm.sf(np.abs(z))
    p = out["gi_p"].to_numpy()
    level = np.select([p < 0.01, p < 0.05, p < 0.1], ["99", "95", "90"], "")
    out["hotspot"] = np.where(
        level == "", "not significant", np.char.add(np.where(z > 0, "hot-", "cold-"), level)
    )
    return out
