"""Validation of grid layers: one report format for river and community grids.

:func:`validate_units` runs the checks that apply to the units given (river reaches,
water bodies, community grids) and returns a :class:`ValidationReport`; the CLI
``gridkit validate`` prints it and exits 1 when it holds errors.

Check modules add :class:`Problem` entries: a stable ``code`` (``"overlap"``,
``"gap"``, ``"length_not_conserved"``...), a readable ``message`` that says where and
what to do, the offending ``rows`` (unit or reach ids) and a ``severity``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

__all__ = ["Problem", "ValidationReport"]


@dataclass(frozen=True)
class Problem:
    """One problem found by validation."""

    code: str
    message: str
    rows: tuple[str, ...] = ()
    severity: Literal["error", "warning"] = "error"


@dataclass
class ValidationReport:
    """Problems and figures from a validation run. ``ok`` when there is no error."""

    problems: list[Problem] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def add(self, code: str, message: str, rows=(), severity="error") -> None:
        self.problems.append(Problem(code, message, tuple(map(str, rows)), severity))

    def extend(self, other: ValidationReport) -> ValidationReport:
        self.problems += other.problems
        self.figures.update(other.figures)
        return self

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [(p.severity, p.code, p.message, ", ".join(p.rows)) for p in self.problems],
            columns=["severity", "code", "message", "rows"],
        )

    def __str__(self) -> str:
        if not self.problems:
            return "valid: no problems found"
        lines = [
            f"{len(self.errors)} error(s), {len(self.problems) - len(self.errors)} warning(s):"
        ]
        lines += [f"  [{p.severity}] {p.code}: {p.message}" for p in self.problems]
        return "\n".join(lines)
