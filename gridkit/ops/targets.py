"""九小场所 inspection targets: places inspected on a schedule, checked in by patrols.

A target (layer ``inspection_targets``: ``target_id``, ``name``, ``kind``,
``frequency_days``, ``admin_code``, a point) counts as inspected when a patrol's fix
comes within ``radius_m`` of it (the field app's check-in is a fix there). A target
whose last check-in is more than ``frequency_days`` ago, or that was never checked,
is overdue.

The "nine small places" (:data:`NINE_SMALL`) are the usual kinds; any kind is
accepted.

Examples
--------
>>> import geopandas as gpd, pandas as pd
>>> from shapely import Point
>>> targets = gpd.GeoDataFrame({"target_id": ["T1", "T2"], "name": ["好再来饭店", "如家旅馆"],
...     "kind": ["restaurant", "hostel"], "frequency_days": [30.0, 7.0],
...     "admin_code": ["430202001001"] * 2},
...     geometry=[Point(113.1000, 27.8000), Point(113.1100, 27.8000)], crs=4326)
>>> fixes = gpd.GeoDataFrame({"patrol_id": ["P1", "P1"], "worker_id": ["W1", "W1"],
...     "t": pd.to_datetime(["2026-05-01T02:00Z", "2026-05-01T02:05Z"])},
...     geometry=[Point(113.10005, 27.80005), Point(113.105, 27.8)], crs=4326)
>>> s = inspection_status(targets, fixes, at="2026-05-20")
>>> s[["target_id", "checked_by", "overdue", "days_overdue"]].values.tolist()
[['T1', 'W1', False, 0.0], ['T2', None, True, None]]
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import local_metric_crs
from gridkit.ops.times import utc_scalar, utc_series

__all__ = ["NINE_SMALL", "inspection_status", "overdue_targets"]

#: 九小场所: the nine kinds of small premises inspected by community grids
NINE_SMALL = {
    "shop": "小商店",
    "restaurant": "小餐饮",
    "hostel": "小旅馆",
    "workshop": "小作坊",
    "entertainment": "小歌舞娱乐场所",
    "internet_cafe": "小网吧",
    "bathhouse": "小美容洗浴场所",
    "school": "小学校(幼儿园、培训机构)",
    "clinic": "小医疗诊所",
}


def inspection_status(
    targets: gpd.GeoDataFrame,
    patrol_points: gpd.GeoDataFrame,
    *,
    radius_m: float = 30.0,
    at: object = None,
) -> pd.DataFrame:
    """Last inspection of each target, when the next is due, and whether it is overdue.

    Parameters
    ----------
    targets
        The ``inspection_targets`` layer.
    patrol_points
        Patrol fixes: ``patrol_id``, ``t`` and points; a ``worker_id`` column names
        who checked in.
    radius_m
        A fix this close to a target is a check-in.
    at
        As of (UTC, default now): later fixes are ignored.

    Returns
    -------
    pandas.DataFrame
        The targets (index kept) with ``last_checked_at``, ``checked_by``,
        ``check_ins`` (patrols that checked in, ever), ``due_at``, ``overdue`` and
        ``days_overdue`` (None when never checked).

    Examples
    --------
    See the module's example.
    """
    at_ts = utc_scalar(at, name="at")
    out = targets.copy()
    crs = local_metric_crs(targets)
    fixes = patrol_points[(utc_series(patrol_points["t"]) <= at_ts).to_numpy()]
    pts = np.asarray(fixes.to_crs(crs).geometry.array)
    tg = np.asarray(targets.to_crs(crs).geometry.array)
    # the tree on the many fixes, queried with the few targets
    tree = shapely.STRtree(pts)
    ti, fi = tree.query(tg, predicate="dwithin", distance=radius_m)
    hits = pd.DataFrame(
        {
            "target": ti,
            "t": utc_series(fixes["t"]).to_numpy()[fi],
            "patrol_id": fixes["patrol_id"].to_numpy(dtype=object)[fi],
            "worker_id": (
                fixes["worker_id"].to_numpy(dtype=object)[fi]
                if "worker_id" in fixes.columns
                else None
            ),
        }
    )
    last = hits.sort_values("t", kind="stable").drop_duplicates("target", keep="last")
    last = last.set_index("target")
    pos = np.arange(len(targets))
    out["last_checked_at"] = pd.Series(pos).map(last["t"]).to_numpy()
    out["last_checked_at"] = utc_series(out["last_checked_at"]).to_numpy()
    checked_by = pd.Series(pos).map(last["worker_id"]).to_numpy(dtype=object)
    checked_by[pd.isna(checked_by)] = None
    out["checked_by"] = pd.Series(checked_by, index=out.index, dtype=object)
    n = hits.groupby("target")["patrol_id"].nunique()
    out["check_ins"] = pd.Series(pos).map(n).fillna(0).astype(int).to_numpy()
    every = pd.to_timedelta(out["frequency_days"].astype(float), unit="D")
    due = utc_series(out["last_checked_at"]) + every.to_numpy()
    out["due_at"] = due.to_numpy()
    never = out["last_checked_at"].isna().to_numpy()
    late = (at_ts - due).dt.total_seconds() / 86400.0
    out["overdue"] = never | (late > 0).to_numpy(dtype=bool, na_value=False)
    days = late.clip(lower=0).round(1).astype(object)
    out["days_overdue"] = days.where(~never, None).to_numpy()
    return out


def overdue_targets(status: pd.DataFrame) -> pd.DataFrame:
    """The overdue targets, longest overdue first (never checked at the top).

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"target_id": ["T1", "T2", "T3"], "overdue": [True, False, True],
    ...                   "days_overdue": [3.0, 0.0, None]})
    >>> overdue_targets(s)["target_id"].tolist()
    ['T3', 'T1']
    """
    late = status[status["overdue"].to_numpy(dtype=bool)]
    key = pd.to_numeric(late["days_overdue"], errors="coerce").fillna(np.inf)
    return late.iloc[np.argsort(-key.to_numpy(), kind="stable")]
