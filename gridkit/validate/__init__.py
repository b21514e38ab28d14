"""Validation of grid units against the rules of the practice (part of the foundation).

Modules: ``report`` (``Problem``, ``ValidationReport``), ``units``
(``validate_units``, the river checks) and ``communities`` (community checks).
"""

from gridkit.validate.units import Problem, ValidationReport, validate_units

__all__ = ["Problem", "ValidationReport", "validate_units"]
