"""Labels of map pages in Chinese (default) and English."""

from __future__ import annotations

from typing import Literal

from gridkit.errors import GridkitError

Lang = Literal["zh", "en"]

_LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "coverage": "网格覆盖",
        "compliance": "巡查达标情况",
        "hotspots": "问题热点",
        "diff": "网格版本变化",
        "units": "网格单元",
        "unit": "单元",
        "worker": "网格员",
        "workers": "按网格员",
        "sections": "按河段",
        "section": "河段",
        "admin_code": "行政区划",
        "last_patrol": "最近巡查",
        "days_overdue": "逾期天数",
        "never_patrolled": "从未巡查",
        "in_time": "按时巡查",
        "overdue": "巡查逾期",
        "never": "从未巡查",
        "unassigned": "未分配网格员",
        "open_reports": "未办结问题",
        "no_open_reports": "无未办结问题",
        "more": "另有 {n} 条",
        "more_workers": "另有 {n} 名网格员",
        "reports": "问题上报",
        "category": "类别",
        "status": "状态",
        "reported_at": "上报时间",
        "description": "描述",
        "count": "问题数",
        "rate": "发生率",
        "gi_z": "Gi* z 值",
        "gi_p": "p 值",
        "hotspot": "热点分类",
        "hot-99": "热点 (99%)",
        "hot-95": "热点 (95%)",
        "hot-90": "热点 (90%)",
        "not significant": "不显著",
        "cold-90": "冷点 (90%)",
        "cold-95": "冷点 (95%)",
        "cold-99": "冷点 (99%)",
        "required": "应巡次数",
        "done": "实巡次数",
        "completion": "完成率",
        "full": "达标",
        "partial": "部分完成 (≥50%)",
        "low": "未达标 (<50%)",
        "no_data": "无巡查要求",
        "units_count": "单元数",
        "relation": "变化类型",
        "old_ids": "原单元",
        "old_units": "原版本单元",
        "new_units": "新版本单元",
        "removed_units": "已删除单元",
        "unchanged": "未变",
        "modified": "边界调整",
        "split": "拆分",
        "merged": "合并",
        "added": "新增",
        "removed": "删除",
        "basemap": "底图",
        "level": "层级",
        "period": "时段",
    },
    "en": {
        "coverage": "Grid coverage",
        "compliance": "Patrol compliance",
        "hotspots": "Problem hotspots",
        "diff": "Grid version changes",
        "units": "Grid units",
        "unit": "Unit",
        "worker": "Grid worker",
        "workers": "By grid worker",
        "sections": "By river section",
        "section": "Section",
        "admin_code": "Admin area",
        "last_patrol": "Last patrol",
        "days_overdue": "Days overdue",
        "never_patrolled": "never",
        "in_time": "Patrolled in time",
        "overdue": "Patrol overdue",
        "never": "Never patrolled",
        "unassigned": "No grid worker",
        "open_reports": "Open reports",
        "no_open_reports": "No open reports",
        "more": "{n} more",
        "more_workers": "{n} more workers",
        "reports": "Reports",
        "category": "Category",
        "status": "Status",
        "reported_at": "Reported",
        "description": "Description",
        "count": "Reports",
        "rate": "Rate",
        "gi_z": "Gi* z",
        "gi_p": "p",
        "hotspot": "Class",
        "hot-99": "Hot spot (99%)",
        "hot-95": "Hot spot (95%)",
        "hot-90": "Hot spot (90%)",
        "not significant": "Not significant",
        "cold-90": "Cold spot (90%)",
        "cold-95": "Cold spot (95%)",
        "cold-99": "Cold spot (99%)",
        "required": "Required",
        "done": "Done",
        "completion": "Completion",
        "full": "Compliant",
        "partial": "Partly done (≥50%)",
        "low": "Not compliant (<50%)",
        "no_data": "Nothing required",
        "units_count": "Units",
        "relation": "Change",
        "old_ids": "Old units",
        "old_units": "Old version",
        "new_units": "New version",
        "removed_units": "Removed units",
        "unchanged": "Unchanged",
        "modified": "Modified",
        "split": "Split",
        "merged": "Merged",
        "added": "Added",
        "removed": "Removed",
        "basemap": "Basemap",
        "level": "Level",
        "period": "Period",
    },
}


def labels(lang: str) -> dict[str, str]:
    """The label table for ``lang`` (``"zh"`` or ``"en"``).

    Raises
    ------
    GridkitError
        For any other language.

    Examples
    --------
    >>> labels("zh")["unassigned"], labels("en")["unassigned"]
    ('未分配网格员', 'No grid worker')
    """
    try:
        return _LABELS[lang]
    except KeyError:
        raise GridkitError(
            f"Unknown map language {lang!r}.", hint="Use lang='zh' (default) or lang='en'."
        ) from None
