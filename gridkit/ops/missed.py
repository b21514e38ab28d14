"""漏报 missed reports: what a grid worker walked past (GB/T 30428 漏报率, spatially).

A report from a resident, the hotline or the media (``sources``) in a unit whose grid
worker patrolled it within ``within_days`` before, while that worker reported nothing
of the same category within ``radius_m`` of it in those days, is a possible miss.
Each is listed per worker with the evidence: the last such patrol, when it ended,
how close its track came to the reported point, and how many patrols crossed the
unit in the window.

Who reported a case: the ``reporter_id`` column where the reports have one, else the
actor of the case's first event; a patrol report with neither counts as the unit's
grid worker's own (that is who files patrol reports in the unit).

Costs: one join of reports to the assignments of their units, then to the patrols of
those workers in the window (bounded by the patrols a worker makes in
``within_days``), each pair tested once, vectorised (shapely 2).

Examples
--------
>>> import geopandas as gpd, pandas as pd
>>> from shapely import LineString, Point
>>> from gridkit.synth.ops import grid_units
>>> units = grid_units(2, 1)  # two 500 m cells
>>> assignments = pd.DataFrame({"unit_id": units["unit_id"], "worker_id": ["W1", "W2"]})
>>> patrols = gpd.GeoDataFrame({"patrol_id": ["P1"], "worker_id": ["W1"],
...     "started_at": pd.to_datetime(["2026-05-01T01:00Z"]),
...     "ended_at": pd.to_datetime(["2026-05-01T02:00Z"])},
...     geometry=[LineString([(113.1005, 27.8025), (113.1045, 27.8025)])], crs=4326)
>>> reports = gpd.GeoDataFrame({"report_id": ["R1"], "category": ["street_light"],
...     "source": ["hotline"], "unit_id": [units["unit_id"][0]],
...     "reported_at": pd.to_datetime(["2026-05-02T08:00Z"])},
...     geometry=[Point(113.1025, 27.8030)], crs=4326)
>>> m = missed_reports(reports, patrols, assignments=assignments, units=units)
>>> m[["worker_id", "report_id", "patrol_id", "patrols"]].values.tolist()
[['W1', 'R1', 'P1', 1]]
>>> round(float(m["distance_m"].iloc[0]))
55
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import WGS84, local_metric_crs
from gridkit.ops.times import utc_series

__all__ = ["MISSED_COLUMNS", "missed_reports", "reporters"]

MISSED_COLUMNS = [
    "worker_id",
    "report_id",
    "category",
    "source",
    "unit_id",
    "reported_at",
    "patrol_id",
    "patrol_ended_at",
    "distance_m",
    "patrols",
    "days_before",
]
PUBLIC = ("hotline", "resident", "media")


def reporters(
    reports: pd.DataFrame,
    *,
    events: pd.DataFrame | None = None,
    assignments: pd.DataFrame | None = None,
) -> pd.Series:
    """Who reported each case (see the module): ``reporter_id``, else the first event's
    actor, else for a patrol report the grid worker of its unit.

    Examples
    --------
    >>> import pandas as pd
    >>> reports = pd.DataFrame({"report_id": ["R1", "R2"], "source": ["patrol", "hotline"],
    ...                         "unit_id": ["U1", "U1"]})
    >>> a = pd.DataFrame({"unit_id": ["U1"], "worker_id": ["W1"]})
    >>> reporters(reports, assignments=a).tolist()
    ['W1', None]
    """
    out = pd.Series(None, index=reports.index, dtype=object)
    if "reporter_id" in reports.columns:
        out = reports["reporter_id"].astype(object).where(reports["reporter_id"].notna(), None)
    if events is not None and len(events) and "from_status" in events.columns:
        first = events[
            events["from_status"].isna().to_numpy() & events["actor_id"].notna().to_numpy()
        ].drop_duplicates("report_id")
        by_id = pd.Series(
            first["actor_id"].to_numpy(dtype=object),
            index=first["report_id"].astype(str).to_numpy(),
        )
        out = out.where(out.notna(), reports["report_id"].astype(str).map(by_id))
    if assignments is not None and len(assignments):
        worker = assignments.drop_duplicates("unit_id").set_index("unit_id")["worker_id"]
        patrol = (reports["source"] == "patrol").to_numpy() & out.isna().to_numpy()
        out[patrol] = reports.loc[patrol, "unit_id"].map(worker).to_numpy(dtype=object)
    return out.astype(object).where(out.notna(), None)


def _valid(pairs: pd.DataFrame, t: pd.Series) -> np.ndarray:
    """Assignment rows valid at ``t`` (open ends where valid_from/valid_to are missing)."""
    ok = np.ones(len(pairs), dtype=bool)
    if "valid_from" in pairs.columns:
        vf = utc_series(pairs["valid_from"])
        ok &= (vf.isna() | (vf <= t)).to_numpy(dtype=bool)
    if "valid_to" in pairs.columns:
        vt = utc_series(pairs["valid_to"])
        ok &= (vt.isna() | (vt > t)).to_numpy(dtype=bool)
    return ok


def missed_reports(
    reports: gpd.GeoDataFrame,
    patrols: gpd.GeoDataFrame,
    *,
    assignments: pd.DataFrame,
    units: gpd.GeoDataFrame,
    events: pd.DataFrame | None = None,
    within_days: float = 7.0,
    radius_m: float = 100.0,
    sources: Sequence[str] = PUBLIC,
) -> pd.DataFrame:
    """Possible misses (漏报) per worker, with the evidence.

    Parameters
    ----------
    reports
        The reports layer (points; ``unit_id`` from :func:`gridkit.locate`).
    patrols
        The patrols layer: ``worker_id``, ``started_at``, ``ended_at`` and tracks.
    assignments
        ``unit_id``, ``worker_id`` (``valid_from``/``valid_to`` when present; a
        ``role`` column keeps ``grid_worker`` rows).
    units
        The units (their polygons: a patrol counts when its track enters the unit).
    events
        The report events (who reported a case, see :func:`reporters`).
    within_days
        A patrol ending at most this long before the report counts.
    radius_m
        The worker's own report of the category within this distance covers it.
    sources
        The report sources checked.

    Returns
    -------
    pandas.DataFrame
        :data:`MISSED_COLUMNS`, sorted by worker and time: ``patrol_id`` and
        ``patrol_ended_at`` of the last patrol in the window, ``distance_m`` from its
        track to the point, ``patrols`` (how many crossed the unit in the window) and
        ``days_before`` (report time less the patrol's end).

    Examples
    --------
    See the module's example.
    """
    empty = pd.DataFrame({c: [] for c in MISSED_COLUMNS})
    if not len(reports) or not len(patrols) or not len(assignments):
        return empty
    a = assignments
    if "role" in a.columns:
        a = a[(a["role"].fillna("grid_worker") == "grid_worker").to_numpy()]
    who = reporters(reports, events=events, assignments=a)
    crs = local_metric_crs(units)
    r_geom = np.asarray(
        reports.to_crs(crs).geometry.array
        if reports.crs
        else reports.set_crs(WGS84).to_crs(crs).geometry.array
    )
    has_point = ~(shapely.is_missing(r_geom) | shapely.is_empty(r_geom))
    t = utc_series(reports["reported_at"])
    r = pd.DataFrame(
        {
            "r": np.arange(len(reports)),
            "unit_id": reports["unit_id"].to_numpy(dtype=object),
            "category": reports["category"].to_numpy(dtype=object),
            "t": t.to_numpy(),
        }
    )
    checked = (
        reports["source"].isin(list(sources)).to_numpy()
        & has_point
        & r["unit_id"].notna().to_numpy()
    )
    pairs = r[checked].merge(a, on="unit_id")
    pairs = pairs[_valid(pairs, pairs["t"])][["r", "unit_id", "category", "t", "worker_id"]]
    pairs = pairs.drop_duplicates(["r", "worker_id"])
    p = pd.DataFrame(
        {
            "p": np.arange(len(patrols)),
            "worker_id": patrols["worker_id"].to_numpy(dtype=object),
            "ended": utc_series(patrols["ended_at"]).to_numpy(),
            "started": utc_series(patrols["started_at"]).to_numpy(),
        }
    )
    window = np.timedelta64(int(within_days * 86400e6), "us")
    x = pairs.merge(p, on="worker_id")
    x = x[((x["ended"] >= x["t"] - window) & (x["started"] < x["t"])).to_numpy()]
    # the track must enter the unit
    u_pos = pd.Series(np.arange(len(units)), index=units["unit_id"].to_numpy())
    u_geom = np.asarray(units.to_crs(crs).geometry.array)
    tracks = np.asarray(
        patrols.to_crs(crs).geometry.array
        if patrols.crs
        else patrols.set_crs(WGS84).to_crs(crs).geometry.array
    )
    ui = x["unit_id"].map(u_pos).to_numpy()
    known = ~pd.isna(ui)
    x = x[known]
    ui = ui[known].astype(int)
    pi = x["p"].to_numpy(dtype=int)
    inside = shapely.intersects(tracks[pi], u_geom[ui])
    x = x[inside].assign(
        distance_m=shapely.distance(tracks[pi[inside]], r_geom[x["r"].to_numpy(dtype=int)[inside]])
    )
    x = x[~_covered(x, reports, who, r_geom, t, window, radius_m)]
    return _evidence(x, reports, t, patrols["patrol_id"].to_numpy(dtype=object))


def _covered(
    x: pd.DataFrame,
    reports: pd.DataFrame,
    who: pd.Series,
    r_geom: np.ndarray,
    t: pd.Series,
    window: np.timedelta64,
    radius_m: float,
) -> np.ndarray:
    """Rows of ``x`` (report, worker, patrol) whose worker reported the category within
    ``radius_m`` of the point in the window before it (up to the report's time)."""
    if not len(x):
        return np.zeros(0, dtype=bool)
    own = pd.DataFrame(
        {
            "o": np.arange(len(reports)),
            "worker_id": who.to_numpy(dtype=object),
            "category": reports["category"].to_numpy(dtype=object),
            "ot": t.to_numpy(),
        }
    )
    own = own[own["worker_id"].notna().to_numpy()]
    keys = x[["r", "worker_id", "category", "t"]].drop_duplicates(["r", "worker_id"])
    m = keys.merge(own, on=["worker_id", "category"])
    m = m[((m["ot"] >= m["t"] - window) & (m["ot"] <= m["t"]) & (m["o"] != m["r"])).to_numpy()]
    near = shapely.dwithin(
        r_geom[m["o"].to_numpy(dtype=int)], r_geom[m["r"].to_numpy(dtype=int)], radius_m
    )
    done = set(zip(m["r"][near], m["worker_id"][near], strict=True))
    if not done:
        return np.zeros(len(x), dtype=bool)
    idx = pd.MultiIndex.from_arrays([x["r"], x["worker_id"]])
    return idx.isin(list(done))


def _evidence(
    x: pd.DataFrame, reports: pd.DataFrame, t: pd.Series, patrol_ids: np.ndarray
) -> pd.DataFrame:
    """One row per (report, worker): the last patrol in the window, and the count."""
    if not len(x):
        return pd.DataFrame({c: [] for c in MISSED_COLUMNS})
    x = x.sort_values(["r", "worker_id", "ended", "p"], kind="stable")
    n = x.groupby(["r", "worker_id"]).size().rename("patrols")
    last = x.drop_duplicates(["r", "worker_id"], keep="last").join(n, on=["r", "worker_id"])
    ri = last["r"].to_numpy(dtype=int)
    out = pd.DataFrame(
        {
            "worker_id": last["worker_id"].to_numpy(dtype=object),
            "report_id": reports["report_id"].to_numpy(dtype=object)[ri],
            "category": reports["category"].to_numpy(dtype=object)[ri],
            "source": reports["source"].to_numpy(dtype=object)[ri],
            "unit_id": reports["unit_id"].to_numpy(dtype=object)[ri],
            "reported_at": t.to_numpy()[ri],
            "patrol_id": patrol_ids[last["p"].to_numpy(dtype=int)],
            "patrol_ended_at": last["ended"].to_numpy(),
            "distance_m": last["distance_m"].round(1).to_numpy(),
            "patrols": last["patrols"].to_numpy(dtype=int),
        }
    )
    out["days_before"] = (
        (out["reported_at"] - out["patrol_ended_at"]).dt.total_seconds() / 86400
    ).round(2)
    return out.sort_values(["worker_id", "reported_at", "report_id"], kind="stable").reset_index(
        drop=True
    )
