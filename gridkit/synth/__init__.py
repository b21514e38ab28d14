"""Sample and synthetic data: seeded layers for the demo, the tests and benchmarks.

Modules: ``layers`` (``sample_layers`` for the Zhuzhou sample around the real
districts and river in ``geodata``, ``synthetic_layers`` at benchmark scale), built
from ``admin`` (townships and villages), ``rivers`` (tributaries and
``synthetic_rivers``), ``water`` (reservoirs, lakes, ponds), ``communities``
(communities and ``building_footprints``) and ``people`` (workers, river chiefs,
departments, ``river_sections``); ``ops`` (small grids and workers for operations
tests) and ``maps`` (frames sized for map benchmarks). Every generated row carries
``synthetic=True``.
"""

from gridkit.synth.communities import building_footprints
from gridkit.synth.layers import sample_layers, synthetic_layers
from gridkit.synth.people import CATEGORIES, DEPARTMENTS, river_sections
from gridkit.synth.rivers import synthetic_rivers

__all__ = [
    "CATEGORIES",
    "DEPARTMENTS",
    "building_footprints",
    "river_sections",
    "sample_layers",
    "synthetic_layers",
    "synthetic_rivers",
]
