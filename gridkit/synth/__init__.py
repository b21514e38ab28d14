"""Sample and synthetic data: seeded layers for the demo, the tests and benchmarks.

Modules: ``layers`` (``sample_layers`` for the Zhuzhou sample around the real
districts and river in ``geodata``, ``synthetic_layers`` at benchmark scale),
``ops`` (small grids and workers for operations tests) and ``maps`` (frames sized
for map benchmarks). Every generated row carries ``synthetic=True``.
"""

from gridkit.synth.layers import (
    CATEGORIES,
    DEPARTMENTS,
    building_footprints,
    river_sections,
    sample_layers,
    synthetic_layers,
    synthetic_rivers,
)

__all__ = [
    "CATEGORIES",
    "DEPARTMENTS",
    "building_footprints",
    "river_sections",
    "sample_layers",
    "synthetic_layers",
    "synthetic_rivers",
]
