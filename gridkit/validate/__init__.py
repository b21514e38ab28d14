"""Validation of grid units against the rules of the practice (part of the foundation).

Modules: ``report`` (``Problem``, ``ValidationReport``: what every check writes),
``units`` (``validate_units``, the checks of any unit layer), ``rivers`` (checks of
river units and reaches) and ``communities`` (checks of community grids). The check
modules import ``report`` and never each other, except ``units``, which runs the
others.
"""

from gridkit.validate.report import Problem, ValidationReport
from gridkit.validate.units import validate_units

__all__ = ["Problem", "ValidationReport", "validate_units"]
