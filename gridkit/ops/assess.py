"""Assessment (考核): scores and rankings per worker, department and admin area.

Per group: patrol compliance (share of compliant worker-unit rows), share of
reports resolved on time, median resolution time, returns for rework. A score
(0-100, the mean of the available parts) ranks the groups; the best
``flag_share`` form the red list (红榜), the lowest the black list (黑榜) whose
chiefs are summoned for talks (约谈). Export to XLSX with Chinese headers, or CSV.

Examples
--------
>>> import pandas as pd
>>> compliance = pd.DataFrame({"worker_id": ["W1", "W2"], "admin_code": ["430202", "430202"],
...                            "compliant": [True, False]})
>>> a = assess(compliance=compliance)
>>> a.workers[["worker_id", "patrol_compliance", "rank", "list"]].values.tolist()
[['W1', 1.0, 1, '红榜'], ['W2', 0.0, 2, '黑榜']]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gridkit import codes
from gridkit.ops.patrols import flag_patrols, patrol_compliance, period_bounds
from gridkit.ops.times import utc_scalar, utc_series

__all__ = ["HEADERS_ZH", "Assessment", "assess", "assess_period"]

HEADERS_ZH = {
    "worker_id": "网格员编号",
    "name": "姓名",
    "department_id": "部门编号",
    "admin_code": "行政区划代码",
    "patrol_rows": "巡查考核项",
    "patrol_compliance": "巡查达标率",
    "max_days_overdue": "最长逾期天数",
    "reports": "交办问题数",
    "resolved": "已办结数",
    "on_time_share": "按期办结率",
    "median_resolution_h": "办结时长中位数(小时)",
    "returns": "退回重办次数",
    "score": "综合得分",
    "rank": "排名",
    "list": "红黑榜",
}
_SHEETS = {"workers": "网格员", "departments": "部门", "areas": "行政区域"}


@dataclass
class Assessment:
    """Scores per worker, department and admin area (see :func:`assess`).

    Examples
    --------
    >>> import pandas as pd, tempfile
    >>> compliance = pd.DataFrame({"worker_id": ["W1", "W2"], "compliant": [True, False]})
    >>> a = assess(compliance=compliance)
    >>> list(a.tables()), a.workers["score"].tolist()
    (['workers', 'departments', 'areas'], [100.0, 0.0])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     [p.name for p in a.to_csv(d)]
    ['workers.csv', 'departments.csv', 'areas.csv']
    """

    workers: pd.DataFrame
    departments: pd.DataFrame
    areas: pd.DataFrame

    def __repr__(self) -> str:
        """One line: rows per table and the lists of workers.

        Examples
        --------
        >>> import pandas as pd
        >>> assess(compliance=pd.DataFrame({"worker_id": ["W1", "W2"], "compliant": [True, False]}))
        <Assessment: 2 workers (红榜 1, 黑榜 1), 0 departments, 0 areas>
        """
        lists = self.workers["list"].value_counts() if "list" in self.workers else {}
        return (
            f"<Assessment: {len(self.workers):,} workers (红榜 {int(lists.get('红榜', 0))}, "
            f"黑榜 {int(lists.get('黑榜', 0))}), {len(self.departments):,} departments, "
            f"{len(self.areas):,} areas>"
        )

    def tables(self) -> dict[str, pd.DataFrame]:
        """The three tables by name: ``workers``, ``departments``, ``areas``.

        Examples
        --------
        >>> import pandas as pd
        >>> a = assess(compliance=pd.DataFrame({"worker_id": ["W1"], "compliant": [True]}))
        >>> sorted(a.tables())
        ['areas', 'departments', 'workers']
        """
        return {"workers": self.workers, "departments": self.departments, "areas": self.areas}

    def to_xlsx(self, path: str | Path) -> Path:
        """Write one sheet per table with Chinese headers (openpyxl).

        Examples
        --------
        >>> import pandas as pd, tempfile
        >>> a = assess(compliance=pd.DataFrame({"worker_id": ["W1"], "compliant": [True]}))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     pd.read_excel(a.to_xlsx(f"{d}/assessment.xlsx"), sheet_name="网格员").iloc[0, 0]
        'W1'
        """
        path = Path(path)
        with pd.ExcelWriter(path, engine="openpyxl") as xw:
            for key, df in self.tables().items():
                df.rename(columns=HEADERS_ZH).to_excel(xw, sheet_name=_SHEETS[key], index=False)
        return path

    def to_csv(self, directory: str | Path, *, chinese_headers: bool = True) -> list[Path]:
        """Write ``workers.csv``, ``departments.csv``, ``areas.csv`` (UTF-8 with BOM for Excel).

        Examples
        --------
        >>> import pandas as pd, tempfile
        >>> a = assess(compliance=pd.DataFrame({"worker_id": ["W1"], "compliant": [True]}))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     a.to_csv(d)[0].read_text(encoding="utf-8-sig").splitlines()[0].split(",")[:2]
        ['网格员编号', '巡查考核项']
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        out = []
        for key, df in self.tables().items():
            p = directory / f"{key}.csv"
            (df.rename(columns=HEADERS_ZH) if chinese_headers else df).to_csv(
                p, index=False, encoding="utf-8-sig"
            )
            out.append(p)
        return out


def _area_codes(admin_codes: pd.Series, digits: int | None) -> pd.Series:
    """The area of ``digits`` significant digits holding each code (6 county, 9
    township), through :func:`gridkit.codes.ancestor`; a code above that level stands
    for itself. Without ``digits``, the codes as text."""
    text = admin_codes.astype(str)
    if not digits:
        return text
    level = {n: lv for lv, n in codes.DIGITS.items()}.get(int(digits))
    if level is None:
        raise ValueError(
            f"area_digits={digits!r} is no admin level; use 2 (province), 4 (city), "
            "6 (county), 9 (township) or 12 (village)."
        )
    norm = codes.normalise(text)
    up = codes.ancestor(norm, level)
    return up.where(up.notna(), norm)


def _report_measures(reports: pd.DataFrame, key: str, now: pd.Timestamp) -> pd.DataFrame:
    r = reports[reports[key].notna()].copy()
    if "duplicate_of" in r:
        r = r[r["duplicate_of"].isna()]
    if "status" in r:
        r = r[~r["status"].isin(["reported", "rejected"])]
    due = utc_series(r["due_at"]) if "due_at" in r else pd.Series(pd.NaT, index=r.index)
    res = utc_series(r["resolved_at"]) if "resolved_at" in r else pd.Series(pd.NaT, index=r.index)
    rep = utc_series(r["reported_at"])
    # Decided: resolved, or still open past its deadline (already late).
    decided = res.notna() | (due.notna() & (due < now))
    on_time = res.notna() & (due.isna() | (res <= due))
    hours = (res - rep) / pd.Timedelta(hours=1)
    g = pd.DataFrame(
        {
            key: r[key].astype(str),
            "decided": decided,
            "on_time": on_time & decided,
            "resolved": res.notna(),
            "hours": hours,
            "returns": pd.to_numeric(r["returns"], errors="coerce").fillna(0)
            if "returns" in r
            else 0,
        }
    ).groupby(key)
    out = pd.DataFrame(
        {
            "reports": g.size(),
            "resolved": g["resolved"].sum(),
            "on_time_share": g["on_time"].sum() / g["decided"].sum().replace(0, np.nan),
            "median_resolution_h": g["hours"].median(),
            "returns": g["returns"].sum().astype("int64"),
        }
    )
    return out


def _score_and_rank(df: pd.DataFrame, flag_share: float) -> pd.DataFrame:
    parts = []
    if "patrol_compliance" in df:
        parts.append(df["patrol_compliance"])
    if "on_time_share" in df:
        parts.append(df["on_time_share"])
    if "returns" in df and "reports" in df:
        parts.append(1 - (df["returns"] / df["reports"].replace(0, np.nan)).clip(upper=1))
    score = (
        pd.concat(parts, axis=1).mean(axis=1, skipna=True) * 100
        if parts
        else pd.Series(np.nan, index=df.index)
    )
    df = df.assign(score=score.round(1))
    df = df.sort_values(["score"], ascending=False, kind="stable", na_position="last")
    df["rank"] = df["score"].rank(ascending=False, method="min").astype("Int64")
    n = int(df["score"].notna().sum())
    k = max(1, int(np.floor(n * flag_share))) if n >= 2 else 0
    lst = pd.Series("", index=df.index, dtype=object)
    scored = df.index[df["score"].notna()]
    if k:
        top, bottom = df.loc[scored, "score"].nlargest(k), df.loc[scored, "score"].nsmallest(k)
        lst[df["score"] >= top.min()] = "红榜"
        lst[(df["score"] <= bottom.max()) & (df["score"] < top.min())] = "黑榜"
    df["list"] = lst.to_numpy()
    return df.reset_index(drop=True)


def assess(
    *,
    compliance: pd.DataFrame | None = None,
    reports: pd.DataFrame | None = None,
    workers: pd.DataFrame | None = None,
    departments: pd.DataFrame | None = None,
    now: object = None,
    flag_share: float = 0.1,
    area_digits: int | None = None,
) -> Assessment:
    """Score and rank workers, departments and admin areas.

    Parameters
    ----------
    compliance
        Output of :func:`gridkit.patrol_compliance` (``worker_id``, ``compliant``,
        ``days_overdue``; ``admin_code`` when present, else from ``workers``).
    reports
        The ``reports`` layer after its lifecycle: ``assignee_id``,
        ``lead_department_id``, ``admin_code``, ``reported_at``, ``due_at``,
        ``resolved_at`` and ``returns`` (counted by :func:`gridkit.ops.reports.transition`).
    workers
        ``worker_id``, ``name``, ``admin_code``: names and areas in the tables.
    departments
        ``department_id``, ``name``.
    now
        Time of the assessment (UTC, default now): open cases past due count as late.
    flag_share
        Share of each table on the red list (best) and on the black list (lowest,
        at least one when two or more are scored).
    area_digits
        Aggregate areas at the level of this many significant digits of ``admin_code``
        (6 county, 9 township; 2 and 4 give the province and city by their six-digit
        codes), through :func:`gridkit.codes.ancestor`.

    Returns
    -------
    Assessment
        ``workers``, ``departments`` and ``areas`` tables with ``patrol_compliance``,
        ``max_days_overdue``, ``reports``, ``resolved``, ``on_time_share``,
        ``median_resolution_h``, ``returns``, ``score`` (0-100), ``rank`` and
        ``list`` (红榜 / 黑榜 / empty). Export with ``.to_xlsx()`` / ``.to_csv()``.

    Examples
    --------
    Two workers of two townships; W1 met every patrol window, W2 half of them:

    >>> import pandas as pd
    >>> compliance = pd.DataFrame({"worker_id": ["W1", "W2", "W2"],
    ...                            "admin_code": ["430202001001", "430202002003", "430202002003"],
    ...                            "compliant": [True, True, False]})
    >>> a = assess(compliance=compliance, area_digits=9)
    >>> a.areas[["admin_code", "patrol_compliance", "list"]].values.tolist()
    [['430202001', 1.0, '红榜'], ['430202002', 0.5, '黑榜']]
    """
    now_ts = utc_scalar(now, name="now")
    wk_area = (
        workers.set_index("worker_id")["admin_code"].astype(str)
        if workers is not None and "admin_code" in workers
        else None
    )

    def area(admin_codes: pd.Series) -> pd.Series:
        return _area_codes(admin_codes, area_digits)

    tables: dict[str, pd.DataFrame] = {}
    # Workers
    w_parts = []
    if compliance is not None and len(compliance):
        c = compliance.copy()
        c["compliant"] = c["compliant"].astype(bool)
        g = c.groupby(c["worker_id"].astype(str))
        wp = pd.DataFrame({"patrol_rows": g.size(), "patrol_compliance": g["compliant"].mean()})
        if "days_overdue" in c:
            wp["max_days_overdue"] = g["days_overdue"].max()
        w_parts.append(wp)
    if reports is not None and len(reports) and "assignee_id" in reports:
        w_parts.append(_report_measures(reports, "assignee_id", now_ts))
    wtab = pd.concat(w_parts, axis=1) if w_parts else pd.DataFrame()
    wtab.index.name = "worker_id"
    wtab = wtab.reset_index()
    if workers is not None and len(wtab):
        meta = workers.set_index("worker_id")
        if "name" in meta:
            wtab.insert(1, "name", wtab["worker_id"].map(meta["name"]))
        if wk_area is not None:
            wtab.insert(2, "admin_code", wtab["worker_id"].map(wk_area))
    tables["workers"] = _score_and_rank(wtab, flag_share) if len(wtab) else wtab

    # Departments
    if reports is not None and len(reports) and "lead_department_id" in reports:
        dtab = _report_measures(reports, "lead_department_id", now_ts)
        dtab.index.name = "department_id"
        dtab = dtab.reset_index()
        if departments is not None and "name" in departments:
            dtab.insert(
                1, "name", dtab["department_id"].map(departments.set_index("department_id")["name"])
            )
        tables["departments"] = _score_and_rank(dtab, flag_share)
    else:
        tables["departments"] = pd.DataFrame()

    # Admin areas
    a_parts = []
    if compliance is not None and len(compliance):
        c = compliance.copy()
        codes = (
            c["admin_code"]
            if "admin_code" in c and c["admin_code"].notna().all()
            else c["worker_id"].astype(str).map(wk_area)
            if wk_area is not None
            else None
        )
        if codes is not None:
            c["area"] = area(codes)
            c["compliant"] = c["compliant"].astype(bool)
            g = c.groupby("area")
            a_parts.append(
                pd.DataFrame(
                    {
                        "patrol_rows": g.size(),
                        "patrol_compliance": g["compliant"].mean(),
                    }
                )
            )
    if reports is not None and len(reports) and "admin_code" in reports:
        r = reports.assign(area=area(reports["admin_code"]).where(reports["admin_code"].notna()))
        a_parts.append(_report_measures(r, "area", now_ts))
    atab = pd.concat(a_parts, axis=1) if a_parts else pd.DataFrame()
    atab.index.name = "admin_code"
    atab = atab.reset_index()
    tables["areas"] = _score_and_rank(atab, flag_share) if len(atab) else atab
    return Assessment(**tables)


def assess_period(
    layers: Mapping[str, pd.DataFrame | None],
    period: tuple[object, object] | str,
    *,
    flag_share: float = 0.1,
    area_digits: int | None = None,
) -> Assessment:
    """Assess a period from a workspace's layers: the patrol compliance of the
    assignments of ``units`` (patrols flagged first when they are not yet), the
    reports made in the period, then :func:`assess` as of the period's end.

    Parameters
    ----------
    layers
        ``units``, ``workers``, ``assignments``, ``patrols``, ``reports`` and
        ``departments`` (each may be missing or None).
    period
        ``(start, end)`` (UTC, end excluded) or a calendar period (``"2026-Q1"``,
        ``"2026-03"``, see :func:`gridkit.ops.patrols.period_bounds`).

    Examples
    --------
    >>> from gridkit.ops import simulate
    >>> from gridkit.synth.ops import grid_units, grid_workers
    >>> units = grid_units(3, 2)
    >>> workers, assignments = grid_workers(units)
    >>> season = simulate(units, workers, assignments, start="2026-03-01", end="2026-04-01",
    ...                   seed=1)
    >>> layers = {"units": units, "workers": workers, "assignments": assignments,
    ...           "patrols": season.patrols, "reports": season.reports}
    >>> march = assess_period(layers, ("2026-03-01", "2026-04-01"))
    >>> len(march.workers), int(march.workers["reports"].sum()) > 0
    (6, True)

    A period without reports scores patrols only:

    >>> "reports" in assess_period(layers, ("2026-05-01", "2026-06-01")).workers
    False
    """
    start, end = period if isinstance(period, tuple) else period_bounds(period)
    units, workers = layers.get("units"), layers.get("workers")
    patrols, assignments = layers.get("patrols"), layers.get("assignments")
    compliance = None
    if patrols is not None and len(patrols) and assignments is not None:
        if "valid" not in patrols.columns:  # stored patrols are flagged on arrival
            patrols = flag_patrols(patrols, workers=workers)
        if units is not None:
            assignments = assignments[assignments["unit_id"].isin(units["unit_id"])]
        compliance = patrol_compliance(
            patrols,
            assignments,
            period=(start, end),
            units=units,
            workers=workers,
            now=end,
        )
    reports = layers.get("reports")
    if reports is not None and "reported_at" in reports.columns:
        t = utc_series(reports["reported_at"])
        reports = reports[(t >= utc_scalar(start)) & (t < utc_scalar(end))]
    return assess(
        compliance=compliance,
        reports=reports,
        workers=workers,
        departments=layers.get("departments"),
        now=end,
        flag_share=flag_share,
        area_digits=area_digits,
    )
