"""Synthetic residents' side of the sample: a 12345 export, callbacks, 九小场所.

For the demo's simulated month (and tests at scale): a hotline export as the hotline
sends it (Chinese headers, Beijing time, addresses only), callbacks after closed cases
(about 96 % satisfied or basically satisfied, as Zhuzhou reports), and inspection
targets in the communities.

Examples
--------
>>> import pandas as pd
>>> communities = pd.DataFrame({"community_id": ["C1"], "name": ["西塘社区"],
...                             "admin_code": ["430202001001"]})
>>> t = sample_hotline_export(communities, start="2026-03-01", end="2026-04-01", n=3, seed=1)
>>> list(t.columns)[:4], t["工单编号"].is_unique
(['工单编号', '诉求类别', '诉求内容', '诉求地址'], True)
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import WGS84, to_wgs84

__all__ = ["sample_callbacks", "sample_hotline_export", "sample_targets"]

_CATEGORIES = {
    "路灯损坏": "路灯不亮",
    "道路破损": "路面坑洼",
    "污水管道": "下水道堵塞冒水",
    "绿化带脏乱": "绿化带垃圾多",
    "违章建筑": "楼顶搭建",
    "消防设施缺失": "楼道灭火器过期",
    "噪音扰民": "夜间施工噪音",  # not a category of the rules: goes to review
}
_STREETS = ["文化路", "建设路", "人民路", "新华路", "红旗路", "长江路"]
_TARGET_KINDS = {
    "shop": "便利店",
    "restaurant": "小吃店",
    "hostel": "旅馆",
    "workshop": "加工作坊",
    "internet_cafe": "网吧",
    "bathhouse": "足浴店",
    "school": "培训机构",
    "clinic": "诊所",
    "entertainment": "歌舞厅",
}


def _utc(value: object) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def sample_hotline_export(
    communities: pd.DataFrame,
    *,
    start: object,
    end: object,
    n: int = 200,
    seed: int = 0,
    admin_areas: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """A 12345 daily export of ``n`` tickets: 工单编号, 诉求类别, 诉求内容, 诉求地址 (a
    community, often with its township, a street and a building number), 来电时间
    (Beijing time) and 联系电话.

    Examples
    --------
    See the module's example.
    """
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(communities), n)
    names = communities["name"].astype(str).to_numpy()[i]
    township = np.full(n, "", dtype=object)
    if admin_areas is not None:
        by_code = pd.Series(admin_areas["name"].to_numpy(), index=admin_areas["admin_code"])
        parent = communities["admin_code"].astype(str).str.slice(0, 9).to_numpy()[i]
        township = pd.Series(parent).map(by_code).fillna("").to_numpy(dtype=object)
        township = np.where(rng.random(n) < 0.7, township, "")
    street = np.array(_STREETS)[rng.integers(0, len(_STREETS), n)]
    number = rng.integers(1, 60, n)
    address = [
        f"{t}{c}{s}{k}号" for t, c, s, k in zip(township, names, street, number, strict=True)
    ]
    labels = np.array(list(_CATEGORIES))
    cat = labels[rng.choice(len(labels), n, p=[0.25, 0.2, 0.2, 0.15, 0.08, 0.07, 0.05])]
    t0, t1 = _utc(start), _utc(end)
    at = t0 + pd.to_timedelta(rng.uniform(0, (t1 - t0).total_seconds(), n), unit="s")
    local = at.tz_convert("Asia/Shanghai").strftime("%Y-%m-%d %H:%M")
    day = at.tz_convert("Asia/Shanghai").strftime("%Y%m%d")
    return pd.DataFrame(
        {
            "工单编号": [f"{d}-{k:05d}" for d, k in zip(day, range(1, n + 1), strict=True)],
            "诉求类别": cat,
            "诉求内容": pd.Series(cat).map(_CATEGORIES).to_numpy(),
            "诉求地址": address,
            "来电时间": local,
            "联系电话": [f"139{x:08d}" for x in rng.integers(0, 10**8, n)],
        }
    ).sort_values("来电时间", kind="stable", ignore_index=True)


def sample_callbacks(
    reports: pd.DataFrame,
    *,
    seed: int = 0,
    shares: tuple[float, float, float, float] = (0.80, 0.16, 0.02, 0.02),
    delay_h: float = 24.0,
    closed_at: pd.Series | None = None,
) -> pd.DataFrame:
    """Callbacks for the closed cases of residents, the hotline and the media, a day or
    so after closing: satisfied, basically satisfied, dissatisfied, unreachable in
    ``shares``.

    Parameters
    ----------
    reports
        The reports; closed ones of public sources are called.
    seed
        Random seed.
    shares
        Shares of the four answers.
    delay_h
        Mean hours from closing to the call.
    closed_at
        When each case closed (default the ``closed_at`` column, else ``resolved_at``).

    Examples
    --------
    >>> import pandas as pd
    >>> reports = pd.DataFrame({"report_id": ["R1", "R2"], "status": ["closed", "handling"],
    ...     "source": ["hotline", "hotline"],
    ...     "closed_at": pd.to_datetime(["2026-05-01", None], utc=True)})
    >>> sample_callbacks(reports, seed=1)["report_id"].tolist()
    ['R1']
    """
    rng = np.random.default_rng(seed)
    done = (reports["status"] == "closed").to_numpy() & reports["source"].isin(
        ["hotline", "resident", "media"]
    ).to_numpy()
    if closed_at is None:
        col = "closed_at" if "closed_at" in reports.columns else "resolved_at"
        closed_at = reports[col]
    t = pd.to_datetime(closed_at, utc=True)[done]
    ok = t.notna().to_numpy()
    ids = reports["report_id"].to_numpy(dtype=object)[done][ok]
    n = len(ids)
    results = np.array(["satisfied", "basically_satisfied", "dissatisfied", "unreachable"])
    return pd.DataFrame(
        {
            "report_id": ids,
            "result": results[rng.choice(4, n, p=list(shares))],
            "at": pd.DatetimeIndex(t[ok]) + pd.to_timedelta(rng.exponential(delay_h, n), unit="h"),
            "caller_id": "12345-回访",
            "note": None,
        }
    )


def sample_targets(
    buildings: gpd.GeoDataFrame,
    communities: pd.DataFrame,
    *,
    per_community: int = 6,
    seed: int = 0,
) -> gpd.GeoDataFrame:
    """九小场所 on the ground floors of buildings: ``per_community`` per community,
    inspected every 7 (hostels, internet cafés, entertainment) to 30 days.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd, shapely
    >>> b = gpd.GeoDataFrame({"building_id": ["B1", "B2"], "community_id": ["C1", "C1"]},
    ...                      geometry=[shapely.Point(113.1, 27.8)] * 2, crs=4326)
    >>> c = pd.DataFrame({"community_id": ["C1"], "admin_code": ["430202001001"]})
    >>> sample_targets(b, c, per_community=2)["target_id"].tolist()
    ['C1-T01', 'C1-T02']
    """
    rng = np.random.default_rng(seed)
    b = to_wgs84(buildings).reset_index(drop=True)
    b = b[b["community_id"].isin(communities["community_id"]).to_numpy()]
    order = b.assign(_key=rng.random(len(b))).sort_values(["community_id", "_key"])
    pick = order[(order.groupby("community_id").cumcount() < per_community).to_numpy()]
    seq = pick.groupby("community_id").cumcount() + 1
    kinds = np.array(list(_TARGET_KINDS))
    kind = kinds[rng.integers(0, len(kinds), len(pick))]
    weekly = np.isin(kind, ["hostel", "internet_cafe", "entertainment"])
    code = pd.Series(
        communities["admin_code"].astype(str).to_numpy(),
        index=communities["community_id"].to_numpy(),
    )
    return gpd.GeoDataFrame(
        {
            "target_id": [f"{c}-T{k:02d}" for c, k in zip(pick["community_id"], seq, strict=True)],
            "name": [
                f"{s}{_TARGET_KINDS[k]}"
                for s, k in zip(
                    np.array(_STREETS)[rng.integers(0, 6, len(pick))], kind, strict=True
                )
            ],
            "kind": kind,
            "frequency_days": np.where(weekly, 7.0, 30.0),
            "admin_code": pick["community_id"].map(code).to_numpy(dtype=object),
            "building_id": pick["building_id"].to_numpy(dtype=object),
        },
        geometry=shapely.point_on_surface(np.asarray(pick.geometry.array)),
        crs=WGS84,
    ).reset_index(drop=True)
