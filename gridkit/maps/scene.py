"""A map being built: base, context under and over the data, layers by key, legend.

Every map function builds its page through one :class:`Scene`: it starts the map
(fitted to the data, context under it), adds the data layers under keys
(``"units"``, ``"areas"``, ``"reports"``...), then finishes it (admin outlines and
names over the data, the legend with a section per shown layer, search, the page
script of :mod:`gridkit.maps.page`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import folium
import geopandas as gpd

from gridkit.maps.base import _base_map, _finish
from gridkit.maps.context import Context, add_over, add_under, extent
from gridkit.maps.options import MapOptions

__all__ = ["Scene"]


@dataclass
class Scene:
    """Parts of a map page collected while it is built (see the module's description).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> from gridkit.maps import MapOptions, map_html
    >>> u = gpd.GeoDataFrame({"unit_id": ["U1"]}, geometry=[box(113.1, 27.8, 113.11, 27.81)],
    ...                      crs=4326)
    >>> s = Scene.start(MapOptions(lang="en"), [u], None)
    >>> _ = s.add("units", folium.GeoJson(u.__geo_interface__))
    >>> page = map_html(s.finish("coverage", [("Units", [("#1a9641", "x", "box")], "units")]))
    >>> s.layers["units"][0].startswith("geo_json_"), 'data-layer="units"' in page
    (True, True)
    """

    m: folium.Map
    o: MapOptions
    context: Context | None
    box: tuple | None
    under: list = field(default_factory=list)
    layers: dict[str, list[str]] = field(default_factory=dict)
    search: list = field(default_factory=list)
    extra_legend: list = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(
        cls, o: MapOptions, frames: Sequence[gpd.GeoDataFrame], context: Context | None
    ) -> Scene:
        """A map fitted to ``frames`` (already prepared), with water and rivers under."""
        n = sum(len(f) for f in frames if f is not None)
        m = _base_map(o, [f for f in frames if f is not None], n)
        box = extent(list(frames))
        scene = cls(m=m, o=o, context=context, box=box)
        if box is not None:
            scene.under = add_under(m, context, box, o)
        return scene

    def add(self, key: str, layer: folium.Layer) -> folium.Layer:
        """Add ``layer`` to the map under ``key`` (legend sections name keys)."""
        layer.add_to(self.m)
        self.layers.setdefault(key, []).append(layer.get_name())
        return layer

    def finish(self, kind: str, legend: Sequence[tuple], *, cluster: bool = False) -> folium.Map:
        """Admin outlines and names over the data, legend, search, script, assets."""
        over, zooms, places = [], {}, []
        if self.box is not None:
            over, zooms, places = add_over(self.m, self.context, self.box, self.o)
        sections = list(legend) + self.extra_legend
        if over or self.under:
            sections.append((self.o.L["context"], over + self.under))
        page = dict(self.config)
        page["layers"] = self.layers
        page["labels"] = {**page.get("labels", {}), **zooms}
        search = self.search + places
        if search:
            page["search"] = search
        return _finish(self.m, self.o, kind, sections, cluster=cluster, page=page)
