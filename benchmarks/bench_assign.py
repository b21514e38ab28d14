"""Worker assignment: the heuristic (LP rounding, local search, knapsack-Lagrangian bound
and heuristic, neighbourhood MIPs) against the exact MIP (scipy/HiGHS per jurisdiction
component), on a seeded synthetic city.

The synthetic city nests 9 districts, their townships and villages (hierarchical
admin codes); units cluster around village centres, most workers are village workers,
some township and district workers overlap them. Capacities total ~1.3x the load
(``capacity_factor``).
Reported per case: time of both sides, objective, proven lower bound, and gap (the
heuristic's own proven gap and its distance to the MIP's answer).
"""

from __future__ import annotations

import sys
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from benchmarks._runner import Case
from gridkit.staffing import assign_workers

LON0, LAT0 = 113.13, 27.83


def synthetic_city(n_units: int, n_workers: int, *, seed: int = 0, capacity_factor: float = 1.3):
    """Seeded ``units`` and ``workers`` layers of a nested district/township/village city."""
    rng = np.random.default_rng(seed)
    n_villages = max(1, n_workers // 4)
    n_towns = max(1, n_villages // 10)
    n_districts = min(9, n_towns)
    d_xy = rng.uniform(-25, 25, (n_districts, 2))
    t_dist = np.arange(n_towns) % n_districts
    t_xy = d_xy[t_dist] + rng.normal(0, 5, (n_towns, 2))
    v_town = np.arange(n_villages) % n_towns
    v_xy = t_xy[v_town] + rng.normal(0, 1.5, (n_villages, 2))
    d_code = np.array([f"4302{d + 2:02d}" for d in range(n_districts)])
    t_code = np.array([f"{d_code[t_dist[t]]}{t + 1:03d}" for t in range(n_towns)])
    v_code = np.array([f"{t_code[v_town[v]]}{v + 1:03d}" for v in range(n_villages)])

    uv = rng.integers(0, n_villages, n_units)
    uxy = v_xy[uv] + rng.normal(0, 0.5, (n_units, 2))
    households = rng.integers(50, 300, n_units)
    lon, lat = LON0 + uxy[:, 0] / 98.5, LAT0 + uxy[:, 1] / 111.0
    d = 0.0004
    units = gpd.GeoDataFrame(
        {
            "unit_id": [f"U{i:06d}" for i in range(n_units)],
            "kind": "community_grid",
            "parent_id": v_code[uv],
            "admin_code": v_code[uv],
            "households": households,
        },
        geometry=shapely.box(lon - d, lat - d, lon + d, lat + d),
        crs=4326,
    )
    # 80 % village workers, 15 % township, 5 % district
    level = rng.choice(["village", "township", "county"], n_workers, p=[0.8, 0.15, 0.05])
    # workers live where the load is: every village has one, the rest follow the load
    v_load = np.bincount(uv, households, minlength=n_villages)
    wv = np.r_[
        np.arange(n_villages),
        rng.choice(n_villages, n_workers - n_villages, p=v_load / v_load.sum()),
    ]
    level[:n_villages] = "village"
    code = np.where(
        level == "village",
        v_code[wv],
        np.where(level == "township", t_code[v_town[wv]], d_code[t_dist[v_town[wv]]]),
    )
    spread = np.where(level == "village", 0.6, np.where(level == "township", 2.0, 6.0))
    wxy = v_xy[wv] + rng.normal(0, 1, (n_workers, 2)) * spread[:, None]
    # capacity: ~1.15x the total load, proportional to the load near each worker
    v_workers = np.bincount(wv, minlength=n_villages)
    cap = v_load[wv] / v_workers[wv] * rng.uniform(0.8, 1.3, n_workers)
    cap = np.maximum(cap / cap.sum() * households.sum() * capacity_factor, 300)
    workers = gpd.GeoDataFrame(
        {
            "worker_id": [f"W{j:05d}" for j in range(n_workers)],
            "name": [f"worker {j}" for j in range(n_workers)],
            "role": "grid_worker",
            "level": level,
            "admin_code": code,
            "capacity": np.round(cap),
            "phone": None,
        },
        geometry=shapely.points(LON0 + wxy[:, 0] / 98.5, LAT0 + wxy[:, 1] / 111.0),
        crs=4326,
    )
    return units, workers


def _figures(result) -> dict:
    return {
        "objective": round(result.objective, 1),
        "bound": round(result.bound, 1),
        "gap": round(result.gap, 5),
        "unassigned": len(result.unassigned),
        "travel_km": round(result.travel_m / 1000, 1),
        "components": result.stats.get("components"),
        "arcs": result.stats.get("arcs"),
        "solve_s": round(result.stats.get("solve_s", 0.0), 3),
    }


def _case(n_units: int, n_workers: int, *, time_limit_s: float, with_mip: bool) -> Case:
    def setup():
        return synthetic_city(n_units, n_workers, seed=n_units)

    def ours(data):
        return assign_workers(
            *data, method="heuristic", time_limit_s=time_limit_s, valid_from="2026-01-01"
        )

    def peer(data):
        return assign_workers(
            *data, method="mip", time_limit_s=time_limit_s, valid_from="2026-01-01"
        )

    def check(a, b):
        if a.bound > b.objective + 1e-6 * abs(b.objective):
            return {
                "error": "heuristic bound above the MIP objective",
                "bound": a.bound,
                "mip": b.objective,
            }
        if b.bound > a.objective + 1e-6 * abs(a.objective):
            return {"error": "MIP bound above the heuristic objective"}
        return None

    def extra(data, result):
        fig = {"heuristic": _figures(result)}
        if with_mip:
            mip = peer(data)
            fig["mip"] = _figures(mip)
            fig["heuristic_vs_mip"] = round(result.objective / mip.objective - 1, 5)
        return fig

    return Case(
        name=f"assign {n_units}u x {n_workers}w",
        setup=setup,
        ours=ours,
        peer=peer if with_mip else None,
        peer_name="scipy milp (HiGHS)" if with_mip else "",
        size={"units": n_units, "workers": n_workers},
        check=check if with_mip else None,
        repeat=1,
        extra=extra,
    )


def cases(quick: bool) -> list[Case]:
    if quick:
        return [
            _case(300, 75, time_limit_s=10, with_mip=True),
            _case(1_000, 250, time_limit_s=10, with_mip=True),
        ]
    return [
        _case(1_000, 250, time_limit_s=30, with_mip=True),
        _case(5_000, 1_250, time_limit_s=30, with_mip=True),
        _case(20_000, 5_000, time_limit_s=30, with_mip=True),
    ]


if __name__ == "__main__":  # pragma: no cover - manual timing
    n_u, n_w = (int(a) for a in sys.argv[1:3])
    data = synthetic_city(n_u, n_w, seed=n_u)
    for method in sys.argv[3:] or ["heuristic"]:
        t0 = time.perf_counter()
        res = assign_workers(*data, method=method, time_limit_s=30)
        print(method, f"{time.perf_counter() - t0:.2f} s")
        print(res.report())
        print(pd.Series(res.stats).to_string())
