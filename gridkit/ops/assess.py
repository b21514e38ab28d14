"""Assessment (考核) as grid-management centres do it: per department, grid worker and
admin area, each scored on what it controls.

- **Departments** (处置部门) on handling: the share of handling stages finished on time,
  the rework rate (返工率: reworks per report back), the first-time fix rate (cases
  verified at their first report back), the average handling time in working hours
  (dispatch to report back, :mod:`gridkit.ops.worktime`), overdue and escalated cases.
- **Grid workers** (网格员) on what they do: patrols (compliance), collection
  (采集: cases collected, the share that were valid, i.e. neither rejected nor
  duplicates) and on-site verification (核查: on time).
- **Areas** (行政区域) on the whole chain: on-time rates per stage (立案 open, 派遣
  dispatch, 处置 handle, 核查 verify), rework, overdue, escalations, patrols.

A stage is on time when the event that ended it (``report_events`` row with
``from_status`` = the stage) came at or before its ``due_at``; a stage still open past
its deadline (not paused) counts as late. A score (0-100) is the mean of a group's
rates; a group with fewer than ``min_cases`` cases is shown but not ranked. The best
``flag_share`` of the ranked form the red list (红榜), the lowest the black list (黑榜).

Export with :meth:`Assessment.to_xlsx` (Chinese headers, names beside codes, number
formats, frozen headers, filters) or :meth:`Assessment.to_csv`; other capabilities add
their own sheets through :meth:`Assessment.add_sheet` or :func:`register_sheet`.

Examples
--------
>>> import pandas as pd
>>> compliance = pd.DataFrame({"worker_id": ["W1", "W2"], "admin_code": ["430202", "430202"],
...                            "compliant": [True, False]})
>>> a = assess(compliance=compliance, min_cases=1)
>>> a.workers[["worker_id", "patrol_compliance", "rank", "list"]].values.tolist()
[['W1', 1.0, 1, '红榜'], ['W2', 0.0, 2, '黑榜']]
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gridkit import codes
from gridkit.errors import GridkitWarning
from gridkit.io import TABLE_TZ
from gridkit.ops.callbacks import with_satisfaction
from gridkit.ops.patrols import flag_patrols, patrol_compliance, period_bounds
from gridkit.ops.times import utc_scalar, utc_series
from gridkit.ops.worktime import CalendarError, WorkCalendar, working_hours_between

__all__ = [
    "HEADERS_ZH",
    "SHEET_TITLES",
    "Assessment",
    "assess",
    "assess_period",
    "register_sheet",
]

#: Chinese headers of every column; ``name`` is per sheet (see :data:`NAME_HEADERS`).
HEADERS_ZH = {
    "worker_id": "网格员编号",
    "department_id": "部门编号",
    "admin_code": "行政区划代码",
    "handler_type": "处置主体类型",
    "patrol_rows": "巡查考核项",
    "patrol_compliance": "巡查达标率",
    "max_days_overdue": "最长逾期天数",
    "cases": "案件数",
    "collected": "采集数",
    "collected_valid_rate": "有效采集率",
    "verified": "核查数",
    "verify_on_time_rate": "按期核查率",
    "open_on_time_rate": "按期立案率",
    "dispatch_on_time_rate": "按期派遣率",
    "handle_on_time_rate": "按期处置率",
    "reported_back": "反馈数",
    "rework_rate": "返工率",
    "first_time_fix_rate": "一次办结率",
    "returns": "退回次数",
    "avg_handling_wh": "平均处置时长(工作小时)",
    "overdue": "超期案件数",
    "escalated": "督办案件数",
    "callbacks": "回访数",
    "satisfaction_rate": "回访满意率",
    "score": "综合得分",
    "ranked": "参与排名",
    "rank": "排名",
    "list": "红黑榜",
}
#: The header of the ``name`` column of each sheet (a department has no 姓名).
NAME_HEADERS = {"workers": "姓名", "departments": "部门名称", "areas": "区域名称"}
#: Sheet titles of the tables, in order; :func:`register_sheet` adds to it.
SHEET_TITLES = {"workers": "网格员", "departments": "部门", "areas": "行政区域"}

# Stages by the status that ends them (the case model of issue 21, and the statuses of
# the earlier model, so that older workspaces still read).
_STAGE_OF = {
    "collected": "open",
    "reported": "open",
    "opened": "dispatch",
    "returned": "dispatch",
    "dispatched": "handle",
    "handling": "handle",
    "assigned": "handle",
    "in_progress": "handle",
    "reported_back": "verify",
    "resolved": "verify",
}
_DONE = {"closed", "rejected", "verified"}
_REPORTED_BACK = {"reported_back", "resolved"}
_VERIFIED = {"verified", "closed"}
_DEPT_STAGE = {"dispatched", "handling", "assigned", "in_progress"}


# --------------------------------------------------------------------------- sheets

#: Builders of extra sheets: key -> (title, build(layers, start, end) -> table or None).
_BUILDERS: dict[str, tuple[str, Callable[..., pd.DataFrame | None], dict[str, str]]] = {}


def register_sheet(
    key: str,
    title: str,
    build: Callable[[Mapping[str, pd.DataFrame | None], pd.Timestamp, pd.Timestamp], object],
    *,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Add a sheet to every assessment made by :func:`assess_period` (and so by
    ``gridkit assess`` and the API): the hook for other capabilities (river chiefs,
    residents' callbacks ...).

    Parameters
    ----------
    key
        The table's name (``Assessment.tables()`` key, CSV file name).
    title
        The sheet's title in the workbook (Chinese, at most 31 characters).
    build
        ``build(layers, start, end)`` returns a table (or None to add nothing) from the
        workspace's layers for the period ``[start, end)``.
    headers
        Chinese headers of its columns (beside :data:`HEADERS_ZH`).

    Examples
    --------
    >>> def chiefs(layers, start, end):
    ...     return pd.DataFrame({"chief_id": ["C1"], "patrols": [3]})
    >>> register_sheet("chiefs", "河长", chiefs,
    ...                headers={"chief_id": "河长编号", "patrols": "巡河次数"})
    >>> a = assess_period({}, ("2026-03-01", "2026-04-01"))
    >>> list(a.tables())[-1], a.extra["chiefs"]["patrols"].tolist()
    ('chiefs', [3])
    >>> _ = _BUILDERS.pop("chiefs")  # (the example cleans up after itself)
    """
    if len(title) > 31:
        raise ValueError(f"sheet title {title!r} is longer than Excel's 31 characters.")
    _BUILDERS[key] = (title, build, dict(headers or {}))


def _number_format(name: str, dtype: object) -> str | None:
    if name.endswith("_rate") or name == "patrol_compliance":
        return "0.0%"
    if name.endswith(("_wh", "_h")) or name == "score":
        return "0.0"
    if pd.api.types.is_integer_dtype(dtype) or name in ("rank", "cases"):
        return "0"
    return None


def _width(text: object) -> float:
    s = "" if text is None else str(text)
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)


@dataclass
class Assessment:
    """Scores per worker, department and admin area (see :func:`assess`), plus sheets
    other capabilities add (:meth:`add_sheet`).

    Examples
    --------
    >>> import pandas as pd, tempfile
    >>> compliance = pd.DataFrame({"worker_id": ["W1", "W2"], "compliant": [True, False]})
    >>> a = assess(compliance=compliance, min_cases=1)
    >>> list(a.tables()), a.workers["score"].tolist()
    (['workers', 'departments', 'areas'], [100.0, 0.0])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     [p.name for p in a.to_csv(d)]
    ['workers.csv', 'departments.csv', 'areas.csv']
    """

    workers: pd.DataFrame
    departments: pd.DataFrame
    areas: pd.DataFrame
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=lambda: dict(SHEET_TITLES))
    headers: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        """One line: rows per table and the lists of workers.

        Examples
        --------
        >>> import pandas as pd
        >>> c = pd.DataFrame({"worker_id": ["W1", "W2"], "compliant": [True, False]})
        >>> assess(compliance=c, min_cases=1)
        <Assessment: 2 workers (红榜 1, 黑榜 1), 0 departments, 0 areas>
        """
        lists = self.workers["list"].value_counts() if "list" in self.workers else {}
        more = "".join(f", {len(t):,} {k}" for k, t in self.extra.items())
        return (
            f"<Assessment: {len(self.workers):,} workers (红榜 {int(lists.get('红榜', 0))}, "
            f"黑榜 {int(lists.get('黑榜', 0))}), {len(self.departments):,} departments, "
            f"{len(self.areas):,} areas{more}>"
        )

    @classmethod
    def from_tables(
        cls,
        tables: Mapping[str, pd.DataFrame],
        *,
        titles: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Assessment:
        """Rebuild an assessment from its tables (e.g. after masking names for a
        reader without the right to see them), to write it with :meth:`to_xlsx`.

        Examples
        --------
        >>> a = assess(compliance=pd.DataFrame({"worker_id": ["W1"], "compliant": [True]}))
        >>> masked = {k: t.assign(name="***") if "name" in t else t for k, t in a.tables().items()}
        >>> Assessment.from_tables(masked).workers.columns[0]
        'worker_id'
        """
        empty = pd.DataFrame()
        extra = {k: t for k, t in tables.items() if k not in SHEET_TITLES}
        out = cls(
            workers=tables.get("workers", empty),
            departments=tables.get("departments", empty),
            areas=tables.get("areas", empty),
        )
        for key, table in extra.items():
            out.add_sheet(key, table, title=(titles or {}).get(key, key), headers=headers)
        return out

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table by name: ``workers``, ``departments``, ``areas``, then added ones.

        Examples
        --------
        >>> import pandas as pd
        >>> a = assess(compliance=pd.DataFrame({"worker_id": ["W1"], "compliant": [True]}))
        >>> sorted(a.tables())
        ['areas', 'departments', 'workers']
        """
        return {
            "workers": self.workers,
            "departments": self.departments,
            "areas": self.areas,
            **self.extra,
        }

    def add_sheet(
        self,
        key: str,
        table: pd.DataFrame,
        *,
        title: str,
        headers: Mapping[str, str] | None = None,
    ) -> Assessment:
        """Add a table (its own sheet in the workbook, its own CSV file); returns self.

        Columns are formatted by name as the built-in sheets are: ``*_rate`` as
        percentages, ``*_h``/``*_wh`` and ``score`` with one decimal.

        Examples
        --------
        >>> a = assess(compliance=pd.DataFrame({"worker_id": ["W1"], "compliant": [True]}))
        >>> a.add_sheet("callbacks", pd.DataFrame({"unit_id": ["U1"], "satisfied_rate": [0.9]}),
        ...             title="回访", headers={"unit_id": "网格编号", "satisfied_rate": "满意率"})
        <Assessment: 1 workers (红榜 0, 黑榜 0), 0 departments, 0 areas, 1 callbacks>
        """
        if key in ("workers", "departments", "areas"):
            raise ValueError(f"{key!r} is a built-in table of the assessment.")
        if len(title) > 31:
            raise ValueError(f"sheet title {title!r} is longer than Excel's 31 characters.")
        self.extra[key] = table
        self.titles[key] = title
        self.headers.update(headers or {})
        return self

    def _header(self, key: str, column: str) -> str:
        if column == "name":
            return NAME_HEADERS.get(key, "名称")
        return self.headers.get(column) or HEADERS_ZH.get(column, column)

    def to_xlsx(self, path: str | Path | io.BytesIO) -> Path | io.BytesIO:
        """Write one sheet per table: Chinese headers, names beside codes, number
        formats (rates as percentages), frozen header row and id columns, filters.

        Parameters
        ----------
        path
            A file path, or a binary buffer (the API's download).

        Examples
        --------
        >>> import pandas as pd, tempfile
        >>> a = assess(compliance=pd.DataFrame({"worker_id": ["W1"], "compliant": [True]}))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     pd.read_excel(a.to_xlsx(f"{d}/assessment.xlsx"), sheet_name="网格员").iloc[0, 0]
        'W1'
        """
        target = path if isinstance(path, io.BytesIO) else Path(path)
        with pd.ExcelWriter(target, engine="openpyxl") as xw:
            for key, df in self.tables().items():
                title = self.titles.get(key, key)[:31]
                out = _excel_frame(df)
                out.rename(columns=lambda c, k=key: self._header(k, c)).to_excel(
                    xw, sheet_name=title, index=False
                )
                _style_sheet(xw.sheets[title], df)
        return target

    def to_csv(self, directory: str | Path, *, chinese_headers: bool = True) -> list[Path]:
        """Write one ``<table>.csv`` per table (UTF-8 with BOM for Excel).

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
            named = df.rename(columns=lambda c, k=key: self._header(k, c))
            (named if chinese_headers else df).to_csv(p, index=False, encoding="utf-8-sig")
            out.append(p)
        return out


def _excel_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Excel has no time zones (Beijing wall time, as gridkit reads a workbook's
    zone-less times back: :data:`gridkit.io.TABLE_TZ`) nor pandas' NA in integer
    columns."""
    out = pd.DataFrame(df.drop(columns="geometry", errors="ignore"))
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.tz_convert(TABLE_TZ).dt.tz_localize(None)
        elif pd.api.types.is_bool_dtype(out[col].dtype) and col == "ranked":
            out[col] = np.where(out[col].astype(bool), "是", "否")
    return out


def _style_sheet(ws, df: pd.DataFrame) -> None:
    """Number formats by column, widths, frozen header (and id, name columns), filter."""
    from openpyxl.utils import get_column_letter  # openpyxl is what writes the sheet

    cols = [c for c in df.columns if c != "geometry"]
    n = len(df)
    for j, col in enumerate(cols, 1):
        letter = get_column_letter(j)
        fmt = _number_format(str(col), df[col].dtype)
        if fmt:
            for (cell,) in ws.iter_rows(min_row=2, max_row=n + 1, min_col=j, max_col=j):
                cell.number_format = fmt
        sample = [ws.cell(row=1, column=j).value, *df[col].head(200).tolist()]
        ws.column_dimensions[letter].width = min(40, max(8, max(map(_width, sample)) + 2))
    if cols:
        ids = 2 if len(cols) > 1 and cols[1] == "name" else 1
        ws.freeze_panes = ws.cell(row=2, column=ids + 1)
        ws.auto_filter.ref = f"A1:{get_column_letter(len(cols))}{n + 1}"


# --------------------------------------------------------------------------- measures


def _area_codes(admin_codes: pd.Series, digits: int | None) -> pd.Series:
    """The area of ``digits`` significant digits holding each code (6 county, 9
    township), through :func:`gridkit.codes.ancestor`; a code above that level stands
    for itself. Without ``digits``, the codes as text."""
    text = admin_codes.astype(str).where(admin_codes.notna(), None)
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


def _col(df: pd.DataFrame, name: str, default: object = np.nan) -> pd.Series:
    return df[name] if name in df else pd.Series(default, index=df.index)


def _cases(reports: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """The assessed cases: not duplicates, not rejected; typed measures per case."""
    r = reports
    if "duplicate_of" in r:
        r = r[r["duplicate_of"].isna()]
    status = _col(r, "status", "").astype(str)
    r = r[~status.isin(["rejected", "reported", "collected"])]
    status = _col(r, "status", "").astype(str)
    due = utc_series(_col(r, "due_at", pd.NaT))
    paused = utc_series(_col(r, "paused_at", pd.NaT)).notna()
    # the case model counts reworks and 退回 apart; earlier workspaces counted reworks
    # as returns (resolved -> returned -> in_progress)
    new_model = "reworks" in r
    reworks = pd.to_numeric(_col(r, "reworks" if new_model else "returns", 0), errors="coerce")
    returns = pd.to_numeric(_col(r, "returns", 0), errors="coerce") if new_model else 0
    overdue = ~status.isin(["closed", "rejected"]) & ~paused & due.notna() & (due < now)
    resolved = utc_series(_col(r, "resolved_at", pd.NaT))
    if not new_model:  # there, due_at was the deadline of the whole case
        overdue &= resolved.isna()
    return pd.DataFrame(
        {
            "report_id": _col(r, "report_id", "").astype(str),
            "status": status,
            "due": due,
            "resolved": resolved,
            "start": utc_series(_col(r, "reported_at", pd.NaT)),
            "overdue": overdue,
            "reworks": reworks.fillna(0),
            "returns": returns.fillna(0) if new_model else np.nan,
            "escalated": pd.to_numeric(_col(r, "escalation_level", 0), errors="coerce").fillna(0)
            > 0,
        },
        index=r.index,
    )


def _events(events: pd.DataFrame | None) -> pd.DataFrame | None:
    """The history's moves: status changes and re-dispatches (改派). Events that leave
    the status unchanged (督办 escalate, 延期 extend, 挂起 pause) end no stage."""
    if events is None or not len(events):
        return None
    e = events
    frm, to = _col(e, "from_status", None).astype(object), _col(e, "to_status", None)
    moves = (frm.isna() | (frm != to.astype(object))) | (_col(e, "action", None) == "redispatch")
    e = e[moves.to_numpy()]
    return pd.DataFrame(
        {
            "report_id": e["report_id"].astype(str),
            "at": utc_series(e["at"]),
            "due": utc_series(_col(e, "due_at", pd.NaT)),
            "from": _col(e, "from_status", None).astype(object),
            "to": _col(e, "to_status", None).astype(object),
            "actor": _col(e, "actor_id", None).astype(object),
            "action": _col(e, "action", None).astype(object),
        }
    )


def _stage_rates(
    cases: pd.DataFrame, events: pd.DataFrame | None, key: pd.Series, stages: tuple[str, ...]
) -> pd.DataFrame:
    """``<stage>_on_time_rate`` per group: stages ended by an event with a deadline (on
    time iff at <= due_at), plus stages open past their deadline now (late)."""
    rows = []
    if events is not None:
        e = events[events["due"].notna() & events["from"].isin(list(_STAGE_OF))]
        e = e[~((e["from"] == "dispatched") & (e["to"] == "dispatched"))]  # 改派: the centre's
        grp = e["report_id"].map(pd.Series(key.to_numpy(), index=cases["report_id"]))
        rows.append(
            pd.DataFrame(
                {"key": grp, "stage": e["from"].map(_STAGE_OF), "on_time": e["at"] <= e["due"]}
            )
        )
    late = cases[cases["overdue"]]
    rows.append(
        pd.DataFrame(
            {"key": key[late.index], "stage": late["status"].map(_STAGE_OF), "on_time": False}
        )
    )
    if events is None or not events["due"].notna().any():
        # no stage deadlines recorded (an earlier workspace): handling from the case
        done = cases[cases["resolved"].notna()]
        rows.append(
            pd.DataFrame(
                {
                    "key": key[done.index],
                    "stage": "handle",
                    "on_time": done["due"].isna() | (done["resolved"] <= done["due"]),
                }
            )
        )
    s = pd.concat(rows, ignore_index=True).dropna(subset=["key", "stage"])
    s = s[s["stage"].isin(stages)]
    rate = s.groupby(["key", "stage"])["on_time"].mean().unstack("stage")
    return rate.reindex(columns=list(stages)).add_suffix("_on_time_rate")


def _handling_hours(
    cases: pd.DataFrame, events: pd.DataFrame | None, calendar: WorkCalendar | str | Path | None
) -> pd.Series:
    """Working hours from the (last) dispatch to the report back, per handled case."""
    done = cases[cases["resolved"].notna()]
    start = done["start"]
    if events is not None:
        disp = events[events["to"].isin(["dispatched", "assigned"])]
        last = disp.groupby("report_id")["at"].max()
        start = done["report_id"].map(last).where(lambda s: s.notna(), start)
        start = utc_series(start)
    ok = start.notna() & (start <= done["resolved"])
    try:
        wh = working_hours_between(start[ok], done.loc[ok, "resolved"], calendar=calendar)
    except CalendarError as e:
        warnings.warn(f"average handling time left out: {e}", GridkitWarning, stacklevel=4)
        return pd.Series(np.nan, index=cases.index)
    return wh.reindex(cases.index)


def _handling(
    cases: pd.DataFrame,
    events: pd.DataFrame | None,
    key: pd.Series,
    calendar: WorkCalendar | str | Path | None,
) -> pd.DataFrame:
    """Per group: cases, reported back, rework and first-time fix rates, 退回, average
    handling time in working hours, overdue and escalated cases."""
    per = pd.DataFrame(
        {
            "key": key,
            "backs": cases["resolved"].notna().astype(float),
            "reworks": cases["reworks"],
            "verified": cases["status"].isin(_VERIFIED),
            "wh": _handling_hours(cases, events, calendar),
        }
    )
    if events is not None and events["to"].isin(list(_REPORTED_BACK)).any():
        e = events
        backs = e[e["to"].isin(list(_REPORTED_BACK))].groupby("report_id").size()
        rework = e[e["from"].isin(list(_REPORTED_BACK)) & e["to"].isin(["handling", "returned"])]
        per["backs"] = cases["report_id"].map(backs).fillna(0).to_numpy()
        per["reworks"] = cases["report_id"].map(rework.groupby("report_id").size()).fillna(0)
        verified = e.loc[e["to"].isin(list(_VERIFIED)), "report_id"].unique()
        per["verified"] |= cases["report_id"].isin(verified)
    per["first_fix"] = (per["reworks"] == 0).where(per["verified"])
    g = per.groupby("key")
    out = pd.DataFrame(
        {
            "cases": g.size(),
            "reported_back": g["backs"].sum().astype("int64"),
            "rework_rate": g["reworks"].sum() / g["backs"].sum().replace(0, np.nan),
            "first_time_fix_rate": g["first_fix"].mean(),
            "avg_handling_wh": g["wh"].mean().round(2),
            "overdue": cases["overdue"].groupby(key).sum().astype("int64"),
            "escalated": cases["escalated"].groupby(key).sum().astype("int64"),
        }
    )
    if cases["returns"].notna().any():
        out.insert(3, "returns", cases["returns"].groupby(key).sum().astype("int64"))
    out["first_time_fix_rate"] = out["first_time_fix_rate"].astype(float)
    return out


def _collections(reports: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Who collected each case (``report_id``, ``actor``): the actor of its intake event
    (``collect``); a case patrols found (source ``patrol``) without one is its unit's
    grid worker's (``assignee_id``), as a simulated or imported history may lack it."""
    intake = events[(events["action"] == "collect") | events["from"].isna()]
    intake = intake[intake["actor"].notna()]
    rid = _col(reports, "report_id", "").astype(str)
    by_patrol = (
        _col(reports, "source", "").astype(str).eq("patrol")
        & _col(reports, "assignee_id", None).notna()
        & ~rid.isin(intake["report_id"])
    )
    return pd.concat(
        [
            pd.DataFrame({"report_id": intake["report_id"], "actor": intake["actor"].astype(str)}),
            pd.DataFrame(
                {
                    "report_id": rid[by_patrol],
                    "actor": reports.loc[by_patrol, "assignee_id"].astype(str),
                }
            ),
        ],
        ignore_index=True,
    )


def _worker_measures(
    reports: pd.DataFrame | None,
    cases: pd.DataFrame,
    events: pd.DataFrame | None,
    known: pd.Index | None,
) -> pd.DataFrame:
    """Collection (采集: cases collected, share valid) and verification (核查: on time)
    per grid worker, from the actors of the case history."""
    if events is None or reports is None:
        return pd.DataFrame()
    valid = pd.Series(
        (
            ~_col(reports, "status", "").astype(str).eq("rejected")
            & _col(reports, "duplicate_of", None).isna()
        ).to_numpy(),
        index=_col(reports, "report_id", "").astype(str).to_numpy(),
    )
    e = events[events["actor"].notna()]
    if known is not None:
        e = e[e["actor"].astype(str).isin(known)]
    col = _collections(reports, events)
    if known is not None:
        col = col[col["actor"].isin(known)]
    ver = e[e["from"].isin(list(_REPORTED_BACK)) & ~e["to"].isin(list(_REPORTED_BACK))]
    on_time = (ver["at"] <= ver["due"]).where(ver["due"].notna())
    late = cases[cases["overdue"] & cases["status"].isin(list(_REPORTED_BACK))]
    who = _col(reports, "assignee_id", None).reindex(late.index)
    checks = pd.concat(
        [
            pd.DataFrame({"w": ver["actor"].astype(str), "n": 1, "ok": on_time.astype(float)}),
            pd.DataFrame({"w": who.dropna().astype(str), "n": 0, "ok": 0.0}),
        ]
    )
    out = pd.DataFrame(
        {
            "collected": col.groupby(col["actor"].astype(str)).size(),
            "collected_valid_rate": col["report_id"]
            .map(valid)
            .astype(float)
            .groupby(col["actor"].astype(str).to_numpy())
            .mean(),
            "verified": checks.groupby("w")["n"].sum(),
            "verify_on_time_rate": checks.groupby("w")["ok"].mean(),
        }
    )
    if known is not None:
        out = out[out.index.isin(known)]
    out[["collected", "verified"]] = out[["collected", "verified"]].fillna(0).astype("int64")
    out["cases"] = out["collected"] + out["verified"]
    return out


def _score_and_rank(
    df: pd.DataFrame,
    parts: list[str],
    *,
    flag_share: float,
    min_cases: int,
) -> pd.DataFrame:
    """Score (mean of the rates present, rework counted as 1 - rate), rank the groups
    with at least ``min_cases`` cases (patrol rows where a table has no cases), lists."""
    cols = [df[p] if p != "rework_rate" else 1 - df[p].clip(upper=1) for p in parts if p in df]
    score = (
        pd.concat(cols, axis=1).mean(axis=1, skipna=True) * 100
        if cols
        else pd.Series(np.nan, index=df.index)
    )
    basis = "cases" if "cases" in df else "patrol_rows" if "patrol_rows" in df else None
    enough = df[basis].fillna(0) >= min_cases if basis else pd.Series(True, index=df.index)
    df = df.assign(score=score.round(1), ranked=(enough & score.notna()).to_numpy())
    df = df.sort_values(["ranked", "score"], ascending=False, kind="stable", na_position="last")
    df["rank"] = df["score"].where(df["ranked"]).rank(ascending=False, method="min").astype("Int64")
    ranked = df.loc[df["ranked"], "score"]
    k = max(1, int(np.floor(len(ranked) * flag_share))) if len(ranked) >= 2 else 0
    lst = pd.Series("", index=df.index, dtype=object)
    if k:
        top, bottom = ranked.nlargest(k).min(), ranked.nsmallest(k).max()
        lst[df["ranked"] & (df["score"] >= top)] = "红榜"
        lst[df["ranked"] & (df["score"] <= bottom) & (df["score"] < top)] = "黑榜"
    df["list"] = lst.to_numpy()
    return df.reset_index(drop=True)


def _with_names(
    tab: pd.DataFrame, key: str, meta: pd.DataFrame | None, *, code_from: str | None = None
) -> pd.DataFrame:
    """Names (and codes) beside the ids: ``key``, ``name``, ``admin_code``, then the rest."""
    if meta is None or key not in meta or not len(tab):
        return tab
    m = meta.drop_duplicates(key).set_index(meta.drop_duplicates(key)[key].astype(str))
    front = [key]
    if "name" in m and "name" not in tab:
        tab.insert(1, "name", tab[key].astype(str).map(m["name"]).to_numpy())
        front.append("name")
    for extra in ("admin_code", "handler_type"):
        if extra in m and extra not in tab and (code_from is None or extra != "admin_code"):
            tab[extra] = tab[key].astype(str).map(m[extra].astype(str)).to_numpy()
            front.append(extra)
    return tab[front + [c for c in tab.columns if c not in front]]


_WORKER_PARTS = ["patrol_compliance", "collected_valid_rate", "verify_on_time_rate"]
_DEPT_PARTS = ["handle_on_time_rate", "rework_rate", "first_time_fix_rate"]
_AREA_PARTS = [
    "patrol_compliance",
    "open_on_time_rate",
    "dispatch_on_time_rate",
    "handle_on_time_rate",
    "verify_on_time_rate",
    "rework_rate",
]


def _patrols(compliance: pd.DataFrame | None, key: pd.Series | None) -> pd.DataFrame:
    if compliance is None or not len(compliance) or key is None:
        return pd.DataFrame()
    ok = compliance["compliant"].astype(bool)
    g = ok.groupby(key.to_numpy())
    out = pd.DataFrame({"patrol_rows": g.size(), "patrol_compliance": g.mean()})
    if "days_overdue" in compliance:
        out["max_days_overdue"] = compliance["days_overdue"].groupby(key.to_numpy()).max()
    return out


def _joined(parts: list[pd.DataFrame], name: str) -> pd.DataFrame:
    parts = [p for p in parts if len(p.columns)]
    tab = pd.concat(parts, axis=1) if parts else pd.DataFrame()
    tab.index.name = name
    return tab.reset_index() if len(tab) else pd.DataFrame()


def assess(
    *,
    compliance: pd.DataFrame | None = None,
    reports: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    workers: pd.DataFrame | None = None,
    departments: pd.DataFrame | None = None,
    admin_areas: pd.DataFrame | None = None,
    now: object = None,
    flag_share: float = 0.1,
    min_cases: int = 5,
    area_digits: int | None = None,
    calendar: WorkCalendar | str | Path | None = None,
) -> Assessment:
    """Score and rank grid workers, departments and admin areas (see the module).

    Parameters
    ----------
    compliance
        Output of :func:`gridkit.patrol_compliance` (``worker_id``, ``compliant``,
        ``days_overdue``; ``admin_code`` when present, else from ``workers``).
    reports
        The ``reports`` layer (CASES.md): ``report_id``, ``status``,
        ``lead_department_id``, ``assignee_id``, ``admin_code``, ``reported_at``,
        ``due_at`` (the current stage's), ``resolved_at`` (reported back),
        ``paused_at``, ``reworks``, ``returns``, ``escalation_level``,
        ``duplicate_of``. A workspace of the earlier model (no ``reworks``) still
        reads: its ``returns`` were reworks and its ``due_at`` the case's deadline.
    events
        ``report_events``: ``report_id``, ``at``, ``actor_id``, ``from_status``,
        ``to_status``, ``action``, ``due_at`` (the deadline of the stage the event
        ends). Without them workers are scored on patrols only, and only handling has
        an on-time rate (from ``resolved_at`` and ``due_at``).
    workers, departments, admin_areas
        Names (and codes, handler types) beside the ids; ``workers`` also limits the
        worker table to grid workers (a supervisor's actions are not a worker's).
    now
        Time of the assessment (UTC, default now): open stages past due count as late.
    flag_share
        Share of the ranked rows of each table on the red list and on the black list.
    min_cases
        Rows with fewer cases (collected + verified for a worker; patrol rows where a
        table has no cases) are shown but not ranked nor listed.
    area_digits
        Areas at this many significant digits of ``admin_code`` (6 county, 9 township).
    calendar
        The workday calendar for handling times (default ``rules/workdays.toml``).

    Returns
    -------
    Assessment
        ``workers``, ``departments``, ``areas`` (see the module for the measures), each
        with ``score`` (0-100), ``ranked``, ``rank`` and ``list`` (红榜 / 黑榜 / empty).

    Examples
    --------
    Two workers of two townships; W1 met every patrol window, W2 half of them:

    >>> import pandas as pd
    >>> compliance = pd.DataFrame({"worker_id": ["W1", "W2", "W2"],
    ...                            "admin_code": ["430202001001", "430202002003", "430202002003"],
    ...                            "compliant": [True, True, False]})
    >>> a = assess(compliance=compliance, area_digits=9, min_cases=1)
    >>> a.areas[["admin_code", "patrol_compliance", "list"]].values.tolist()
    [['430202001', 1.0, '红榜'], ['430202002', 0.5, '黑榜']]
    """
    now_ts = utc_scalar(now, name="now")
    ev = _events(events)
    cases = _cases(reports, now_ts) if reports is not None and len(reports) else None
    rank = {"flag_share": flag_share, "min_cases": min_cases}
    known = pd.Index(workers["worker_id"].astype(str)) if workers is not None else None
    w_area = (
        workers.set_index(workers["worker_id"].astype(str))["admin_code"].astype(str)
        if workers is not None and "admin_code" in workers
        else None
    )
    # grid workers: patrols, collection, verification
    wkey = (
        compliance["worker_id"].astype(str) if compliance is not None and len(compliance) else None
    )
    wtab = _joined(
        [
            _patrols(compliance, wkey),
            _worker_measures(reports, cases, ev, known) if cases is not None else pd.DataFrame(),
        ],
        "worker_id",
    )
    wtab = _with_names(wtab, "worker_id", workers)
    # departments: handling
    dtab = pd.DataFrame()
    if cases is not None and "lead_department_id" in reports:
        dkey = (
            reports.loc[cases.index, "lead_department_id"]
            .astype(str)
            .where(reports.loc[cases.index, "lead_department_id"].notna())
        )
        dtab = _joined(
            [_handling(cases, ev, dkey, calendar), _stage_rates(cases, ev, dkey, ("handle",))],
            "department_id",
        )
        dtab = _with_names(dtab, "department_id", departments)
    # areas: the whole chain
    acomp = None
    if compliance is not None and len(compliance):
        c_codes = (
            compliance["admin_code"]
            if "admin_code" in compliance and compliance["admin_code"].notna().all()
            else compliance["worker_id"].astype(str).map(w_area)
            if w_area is not None
            else None
        )
        acomp = None if c_codes is None else _area_codes(c_codes, area_digits)
    aparts = [_patrols(compliance, acomp)]
    if cases is not None and "admin_code" in reports:
        akey = _area_codes(reports.loc[cases.index, "admin_code"], area_digits)
        stages = ("open", "dispatch", "handle", "verify")
        aparts += [_handling(cases, ev, akey, calendar), _stage_rates(cases, ev, akey, stages)]
    atab = _joined(aparts, "admin_code")
    atab = _with_names(atab, "admin_code", admin_areas)
    return Assessment(
        workers=_score_and_rank(wtab, _WORKER_PARTS, **rank) if len(wtab) else wtab,
        departments=_score_and_rank(dtab, _DEPT_PARTS, **rank) if len(dtab) else dtab,
        areas=_score_and_rank(atab, _AREA_PARTS, **rank) if len(atab) else atab,
    )


def assess_period(
    layers: Mapping[str, pd.DataFrame | None],
    period: tuple[object, object] | str,
    *,
    flag_share: float = 0.1,
    min_cases: int = 5,
    area_digits: int | None = None,
    calendar: WorkCalendar | str | Path | None = None,
) -> Assessment:
    """Assess a period from a workspace's layers: the patrol compliance of the
    assignments of ``units`` (patrols flagged first when they are not yet), the
    cases reported in the period and their history, then :func:`assess` as of the
    period's end, plus the sheets of :func:`register_sheet`.

    Parameters
    ----------
    layers
        ``units``, ``workers``, ``assignments``, ``patrols``, ``reports``,
        ``report_events``, ``departments``, ``admin_areas`` (each may be missing).
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
    ...           "patrols": season.patrols, "reports": season.reports,
    ...           "report_events": season.report_events, "departments": season.departments}
    >>> march = assess_period(layers, ("2026-03-01", "2026-04-01"), min_cases=1)
    >>> len(march.workers), int(march.departments["cases"].sum()) > 0
    (6, True)

    A period without reports scores patrols only:

    >>> "cases" in assess_period(layers, ("2026-05-01", "2026-06-01")).workers
    False
    """
    start, end = period if isinstance(period, tuple) else period_bounds(period)
    start, end = utc_scalar(start), utc_scalar(end)
    units, workers = layers.get("units"), layers.get("workers")
    patrols, assignments = layers.get("patrols"), layers.get("assignments")
    compliance = None
    if patrols is not None and len(patrols) and assignments is not None:
        if "valid" not in patrols.columns:  # stored patrols are flagged on arrival
            patrols = flag_patrols(patrols, workers=workers)
        if units is not None:
            assignments = assignments[assignments["unit_id"].isin(units["unit_id"])]
        compliance = patrol_compliance(
            patrols, assignments, period=(start, end), units=units, workers=workers, now=end
        )
    reports, events = layers.get("reports"), layers.get("report_events")
    if reports is not None and "reported_at" in reports.columns:
        t = utc_series(reports["reported_at"])
        reports = reports[((t >= start) & (t < end)).to_numpy()]
        if events is not None and "report_id" in events:
            events = events[events["report_id"].isin(reports["report_id"])]
            events = events[(utc_series(events["at"]) < end).to_numpy()]
    out = assess(
        compliance=compliance,
        reports=reports,
        events=events,
        workers=workers,
        departments=layers.get("departments"),
        admin_areas=layers.get("admin_areas"),
        now=end,
        flag_share=flag_share,
        min_cases=min_cases,
        area_digits=area_digits,
        calendar=calendar,
    )
    # residents' satisfaction (回访), where callbacks were made
    out = with_satisfaction(
        out, layers.get("callbacks"), reports, area_digits=area_digits, start=start, end=end
    )
    for key, (title, build, headers) in _BUILDERS.items():
        table = build(layers, start, end)
        if table is not None:
            out.add_sheet(key, table, title=title, headers=headers)  # type: ignore[arg-type]
    return out
