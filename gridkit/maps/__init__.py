"""Maps a supervisor reads: coverage, compliance, hotspots and version diffs as
offline ``folium.Map``s (needs the ``maps`` extra: ``pip install "gridkit[maps]"``).

Modules: ``base`` (the map kinds), ``assets`` (Leaflet inlined from XStatic),
``labels`` (Chinese and English labels) and ``legend``.
"""

from gridkit.maps.base import (
    compliance_map,
    coverage_map,
    diff_map,
    hotspot_map,
    map_html,
    offline_assets,
)

__all__ = [
    "compliance_map",
    "coverage_map",
    "diff_map",
    "hotspot_map",
    "map_html",
    "offline_assets",
]
