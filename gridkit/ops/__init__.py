"""Operations: reports and cases, patrols and compliance, locating, hotspots,
assessment and a simulated season.

Modules: ``locate``, ``reports``, ``intake`` (what a service does with points
from the field before ``reports.intake``: datum, service area, report frames and
ids), ``patrols``, ``hotspots``, ``assess``, ``simulate`` and ``times`` (UTC and
Asia/Shanghai time handling).
"""

from gridkit.ops.assess import Assessment, assess
from gridkit.ops.hotspots import hotspots
from gridkit.ops.locate import locate
from gridkit.ops.patrols import patrol_compliance
from gridkit.ops.simulate import Simulation, simulate

__all__ = [
    "Assessment",
    "Simulation",
    "assess",
    "hotspots",
    "locate",
    "patrol_compliance",
    "simulate",
]
