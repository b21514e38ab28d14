"""The report every check writes into: :class:`Problem` and :class:`ValidationReport`.

Its own module so that the check modules (``units``, ``rivers``, ``communities``) and
the river splitter can all import it without importing each other.

Examples
--------
>>> report = ValidationReport()
>>> report.add("gap", "community C1 is not covered.", rows=["C1"])
>>> report.ok, [p.code for p in report.errors]
(False, ['gap'])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from gridkit.errors import InvalidLayerError
from gridkit.layers import check_layer

__all__ = ["Problem", "Severity", "ValidationReport", "checked_layer"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One problem found by validation.

    Attributes
    ----------
    code
        Stable name of the check that failed (``"overlap"``, ``"gap"``, ...).
    message
        Readable sentence saying what is wrong, where, and what to do.
    rows
        Ids of the offending units, reaches or areas (as text).
    severity
        ``"error"`` (the layer is not valid) or ``"warning"``.

    Examples
    --------
    >>> p = Problem("too_long", "1 reach(es) exceed max_length_m=5000.", rows=("R1",))
    >>> p.severity, p.rows
    ('error', ('R1',))
    """

    code: str
    message: str
    rows: tuple[str, ...] = ()
    severity: Severity = "error"


@dataclass
class ValidationReport:
    """Problems and figures from a validation run. ``ok`` when there is no error.

    Attributes
    ----------
    problems
        Every :class:`Problem` found, in the order the checks ran.
    figures
        Measures taken on the way (``"units"``, ``"reach_length_m"``, ...).

    Examples
    --------
    >>> report = ValidationReport(figures={"units": 2.0})
    >>> report.add("overlap", "units U1/U2 overlap.", rows=["U1", "U2"])
    >>> report.add("too_short", "reach R1 is short.", rows=["R1"], severity="warning")
    >>> report.ok, len(report.errors)
    (False, 1)
    >>> print(report)
    1 error(s), 1 warning(s):
      [error] overlap: units U1/U2 overlap.
      [warning] too_short: reach R1 is short.
    >>> report.to_frame()[["severity", "code", "rows"]]
      severity       code    rows
    0    error    overlap  U1, U2
    1  warning  too_short      R1
    >>> report.extend(ValidationReport(figures={"reaches": 1.0})).figures
    {'units': 2.0, 'reaches': 1.0}
    """

    problems: list[Problem] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no problem is an error (warnings allowed)."""
        return not any(p.severity == "error" for p in self.problems)

    @property
    def errors(self) -> list[Problem]:
        """The problems of severity ``"error"``."""
        return [p for p in self.problems if p.severity == "error"]

    def add(
        self,
        code: str,
        message: str,
        rows: Iterable[object] = (),
        severity: Severity = "error",
    ) -> None:
        """Record a problem; ``rows`` are kept as text."""
        self.problems.append(Problem(code, message, tuple(map(str, rows)), severity))

    def extend(self, other: ValidationReport) -> ValidationReport:
        """Add the problems and figures of ``other``; returns this report."""
        self.problems += other.problems
        self.figures.update(other.figures)
        return self

    def to_frame(self) -> pd.DataFrame:
        """One row per problem: ``severity``, ``code``, ``message``, ``rows`` (joined)."""
        return pd.DataFrame(
            [(p.severity, p.code, p.message, ", ".join(p.rows)) for p in self.problems],
            columns=["severity", "code", "message", "rows"],
        )

    def __repr__(self) -> str:
        """One line: the verdict and the problems counted by code.

        Examples
        --------
        >>> r = ValidationReport()
        >>> for i in range(40):
        ...     r.add("overlap", f"units U{i}/U{i + 1} overlap.")
        >>> r.add("too_short", "reach R1 is short.", severity="warning")
        >>> r
        <ValidationReport invalid: 40 errors (overlap 40), 1 warning (too_short 1)>
        """
        if not self.problems:
            return "<ValidationReport valid: no problems>"
        parts = []
        for severity in ("error", "warning"):
            codes = Counter(p.code for p in self.problems if p.severity == severity)
            if codes:
                n = sum(codes.values())
                shown = ", ".join(f"{c} {k}" for c, k in codes.most_common(4))
                more = ", ..." if len(codes) > 4 else ""
                parts.append(f"{n} {severity}{'s' if n != 1 else ''} ({shown}{more})")
        return f"<ValidationReport {'valid' if self.ok else 'invalid'}: {', '.join(parts)}>"

    def __str__(self) -> str:
        if not self.problems:
            return "valid: no problems found"
        lines = [
            f"{len(self.errors)} error(s), {len(self.problems) - len(self.errors)} warning(s):"
        ]
        lines += [f"  [{p.severity}] {p.code}: {p.message}" for p in self.problems]
        return "\n".join(lines)


def checked_layer(frame: pd.DataFrame, layer: str, report: ValidationReport) -> pd.DataFrame | None:
    """``frame`` checked against the contract of ``layer``, or None with every contract
    problem added to ``report`` as ``invalid_layer`` (instead of raising).

    Examples
    --------
    >>> import pandas as pd
    >>> report = ValidationReport()
    >>> checked_layer(pd.DataFrame({"unit_id": ["U1"]}), "units", report) is None
    True
    >>> report.problems[0].code, report.problems[0].message.startswith("units: missing column")
    ('invalid_layer', True)
    """
    try:
        return check_layer(frame, layer, source=layer)
    except InvalidLayerError as exc:
        for p in exc.problems or [exc.message]:
            report.add("invalid_layer", f"{layer}: {p}")
        return None
