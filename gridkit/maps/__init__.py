"""Maps a supervisor reads: coverage, compliance, hotspots and version diffs as
offline ``folium.Map``s (needs the ``maps`` extra: ``pip install "gridkit[maps]"``).

One module per map kind (``coverage``, ``compliance``, ``hotspot``, ``diff``,
``review``, ``chiefs``) over
shared parts: ``options`` (:class:`MapOptions`, how every map looks), ``base`` (page,
basemap, polygons, escaping), ``scene`` (a page being built), ``context`` (admin
outlines, names, rivers and water: the offline base), ``areas`` (choropleths by
village or township at low zoom), ``symbols`` (a colour per domain, a symbol per
report category), ``page`` (the page script: zoom switch, legend in step, search),
``assets`` (Leaflet inlined from XStatic), ``labels`` (Chinese and English) and
``legend``.

Maps draw data already joined: reports carry ``unit_id`` (``gridkit.locate``) and
compliance rows come from ``gridkit.patrol_compliance``.

Examples
--------
>>> from gridkit.maps import MapOptions
>>> MapOptions(lang="en").merged(tiles=None).tiles is None
True
"""

from gridkit.maps.assets import offline_assets
from gridkit.maps.base import map_html
from gridkit.maps.chiefs import chiefs_map, signboard_html
from gridkit.maps.compliance import compliance_map
from gridkit.maps.context import Context
from gridkit.maps.coverage import coverage_map
from gridkit.maps.diff import diff_map
from gridkit.maps.hotspot import HOTSPOT_CLASSES, hotspot_map
from gridkit.maps.options import MapOptions, UnknownOptionError
from gridkit.maps.printing import print_map
from gridkit.maps.review import review_flags, review_map
from gridkit.maps.tiles import MBTiles
from gridkit.maps.viewport import ViewIndex, viewport_page

__all__ = [
    "HOTSPOT_CLASSES",
    "Context",
    "MBTiles",
    "MapOptions",
    "UnknownOptionError",
    "ViewIndex",
    "chiefs_map",
    "compliance_map",
    "coverage_map",
    "diff_map",
    "hotspot_map",
    "map_html",
    "offline_assets",
    "print_map",
    "review_flags",
    "review_map",
    "signboard_html",
    "viewport_page",
]
