"""Staffing (网格员): put a worker on every unit within capacity and jurisdiction.

Modules: ``model`` (workloads, candidate arcs, ``assign_workers``, ``reassign``),
``solvers`` (exact MIP and the large-instance heuristic) and ``bounds`` (the
Lagrangian lower bound).
"""

from gridkit.staffing.model import (
    AssignmentResult,
    Budget,
    Workload,
    assign_workers,
    jurisdictions,
    reassign,
)

__all__ = ["AssignmentResult", "Budget", "Workload", "assign_workers", "jurisdictions", "reassign"]
