"""Maps of any size: units served per viewport, simplified per zoom, areas at low zoom.

A province of 10^5–10^6 units cannot be one page. :class:`ViewIndex` holds the units
of one scope once (a spatial index, their status and the people on them) and answers
what a map page asks as the user moves:

- :meth:`ViewIndex.units` — the units meeting a bounding box, simplified to the zoom's
  pixel size, as GeoJSON; more than ``limit`` of them is refused (the page shows the
  areas instead), so a request never costs more than ``limit`` features;
- :meth:`ViewIndex.areas` — the villages or townships (a choropleth of the share of
  units staffed) meeting a bounding box, simplified to the zoom;
- :meth:`ViewIndex.search` — unit ids, names, workers, place names.

:func:`viewport_page` is the page that asks: Leaflet from the server's ``/assets/``
and a script of our own, nothing else; it holds no data until it asks.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import WGS84
from gridkit.errors import GridkitError
from gridkit.geojson import dumps, to_geojson
from gridkit.maps.areas import aggregate, pick_level, switch_zoom
from gridkit.maps.context import Context
from gridkit.maps.labels import labels
from gridkit.maps.legend import _CSS
from gridkit.maps.page import script_code

__all__ = ["ViewIndex", "viewport_page"]

STATUS_COLORS = {"staffed": "#1a9641", "unassigned": "#7b3294"}
AREA_COLORS = {"staffed_all": "#1a9641", "staffed_most": "#fdae61", "staffed_low": "#d7191c"}
MAX_BBOX_DEG = 20.0


def _bbox(bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    w, s, e, n = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (w, s, e, n)) or w >= e or s >= n:
        raise GridkitError(
            f"bbox {bbox!r} is not west,south,east,north.", hint="e.g. bbox=113.0,27.7,113.3,28.0"
        )
    if e - w > MAX_BBOX_DEG or n - s > MAX_BBOX_DEG:
        raise GridkitError(f"bbox wider than {MAX_BBOX_DEG:.0f} degrees.")
    return w, s, e, n


def _tolerance(zoom: int) -> float:
    """About half a pixel at ``zoom``, in degrees."""
    return 0.5 * 360.0 / (256.0 * 2 ** max(0, min(22, int(zoom))))


@dataclass
class ViewIndex:
    """The units of one scope, ready to serve per viewport (see the module's description).

    Examples
    --------
    >>> from gridkit.synth import maps as synth
    >>> u = synth.units(400)
    >>> ix = ViewIndex.build(u, assignments=synth.assignments(u, n_workers=20))
    >>> doc = json.loads(ix.units((113.1, 27.8, 113.11, 27.81), zoom=16))
    >>> len(doc["features"]), sorted(doc["features"][0]["properties"])
    (30, ['id', 's', 'w'])
    >>> json.loads(ix.units((113.1, 27.8, 113.2, 27.9), zoom=12, limit=10))["too_many"]
    400
    >>> len(json.loads(ix.areas((113.0, 27.7, 113.2, 27.9), zoom=12))["features"])
    20
    >>> ix.search("0007")[0][0]
    '430202000001-0007 荷塘区第8网格 · W001'
    """

    frame: gpd.GeoDataFrame
    tree: shapely.STRtree
    area_frame: gpd.GeoDataFrame | None
    level: str | None
    entries: list
    switch: int

    @classmethod
    def build(
        cls,
        units: gpd.GeoDataFrame,
        *,
        assignments: pd.DataFrame | None = None,
        workers: pd.DataFrame | None = None,
        context: Context | None = None,
    ) -> ViewIndex:
        """Index ``units`` (any CRS) with their status and workers' names."""
        u = units.to_crs(WGS84) if units.crs is not None and not units.crs.equals(WGS84) else units
        u = u[~(u.geometry.isna() | u.geometry.is_empty)].reset_index(drop=True)
        ids = u["unit_id"].astype(str)
        names = {}
        if workers is not None and "name" in workers.columns:
            names = dict(zip(workers["worker_id"].astype(str), workers["name"].astype(str),
                             strict=True))  # fmt: skip
        who = pd.Series("", index=ids.to_numpy())
        if assignments is not None and len(assignments):
            a = assignments
            if "valid_to" in a.columns:
                a = a[a["valid_to"].isna()]
            w = a["worker_id"].astype(str).map(lambda x: names.get(x, x))
            joined = w.groupby(a["unit_id"].astype(str).to_numpy()).agg(
                lambda s: " · ".join(sorted(set(s))))  # fmt: skip
            who = joined.reindex(ids.to_numpy()).fillna("")
        staffed = (who != "").to_numpy()
        frame = gpd.GeoDataFrame(
            {"id": ids.to_numpy(), "s": np.where(staffed, "staffed", "unassigned"),
             "w": who.to_numpy()}, geometry=u.geometry.array, crs=WGS84)  # fmt: skip
        level = pick_level(u["admin_code"]) if "admin_code" in u.columns else None
        area_frame = None
        if level is not None:
            area_frame = aggregate(u, pd.DataFrame({"staffed": staffed.astype(int)}), level,
                                   context)  # fmt: skip
            share = area_frame["staffed"] / area_frame["n_units"]
            most = np.where(share >= 0.8, "staffed_most", "staffed_low")
            area_frame["c"] = np.where(share >= 0.999, "staffed_all", most)
        title = ids + (" " + u["name"].fillna("").astype(str) if "name" in u.columns else "")
        text = np.where(staffed, title + " · " + who.to_numpy(), title)
        b = np.round(u.geometry.bounds.to_numpy(), 5).tolist()
        entries = [[t, q[1], q[0], q[3], q[2]] for t, q in zip(text, b, strict=True)]
        if area_frame is not None:
            ab = np.round(area_frame.geometry.bounds.to_numpy(), 5).tolist()
            entries += [[str(n), q[1], q[0], q[3], q[2]]
                        for n, q in zip(area_frame["name"], ab, strict=True)]  # fmt: skip
        return cls(
            frame=frame, tree=shapely.STRtree(np.asarray(frame.geometry.array)),
            area_frame=area_frame, level=level, entries=entries, switch=switch_zoom(u),
        )  # fmt: skip

    def units(self, bbox: tuple, zoom: int, *, limit: int = 20_000) -> bytes:
        """GeoJSON of the units meeting ``bbox`` (w, s, e, n), simplified for ``zoom``;
        ``{"too_many": n}`` when more than ``limit`` meet it."""
        hit = np.sort(self.tree.query(shapely.box(*_bbox(bbox)), predicate="intersects"))
        if len(hit) > limit:
            return dumps({"type": "FeatureCollection", "features": [], "too_many": len(hit)})
        sub = self.frame.iloc[hit]
        geoms = shapely.simplify(np.asarray(sub.geometry.array), _tolerance(zoom),
                                 preserve_topology=True)  # fmt: skip
        sub = sub.set_geometry(geoms)
        return to_geojson(sub, precision=6 if zoom >= 15 else 5)

    def areas(self, bbox: tuple, zoom: int) -> bytes:
        """GeoJSON of the areas (``name``, ``n_units``, ``staffed``, class ``c``) meeting
        ``bbox``, simplified for ``zoom``."""
        a = self.area_frame
        if a is None:
            return dumps({"type": "FeatureCollection", "features": []})
        hit = a.sindex.query(shapely.box(*_bbox(bbox)), predicate="intersects")
        sub = a.iloc[np.sort(hit)][["admin_code", "name", "n_units", "staffed", "c", "geometry"]]
        geoms = shapely.simplify(np.asarray(sub.geometry.array), _tolerance(zoom),
                                 preserve_topology=True)  # fmt: skip
        return to_geojson(sub.set_geometry(geoms), precision=5)

    def search(self, q: str, limit: int = 20) -> list:
        """Entries ``[text, south, west, north, east]`` whose text holds ``q``."""
        q = q.strip().lower()[:100]
        if not q:
            return []
        return [e for e in self.entries if q in e[0].lower()][:limit]

    def overview(self) -> dict:
        """Bounds, the zoom from which units are served, and the areas' level."""
        b = self.frame.total_bounds
        return {"bounds": [[b[1], b[0]], [b[3], b[2]]], "switch": self.switch,
                "level": self.level, "units": len(self.frame)}  # fmt: skip


_VIEW_JS = r"""
(function () {
  var cfg = __CFG__, map = L.map('map', {preferCanvas: true, zoomControl: true});
  L.control.scale().addTo(map);
  if (cfg.tiles) { L.tileLayer(cfg.tiles, {maxZoom: 19, attribution: cfg.tiles_attr}).addTo(map); }
  map.fitBounds(cfg.overview.bounds);
  function tip(rows) {
    var d = document.createElement('div');
    rows.forEach(function (r) {
      var b = document.createElement('b'); b.textContent = r[0] + ' ';
      d.appendChild(b); d.appendChild(document.createTextNode(r[1]));
      d.appendChild(document.createElement('br'));
    });
    return d;
  }
  var units = L.geoJSON(null, {
    style: function (f) { var c = cfg.colors[f.properties.s];
      return {fillColor: c, color: '#333', weight: 0.6, fillOpacity: 0.6,
              dashArray: f.properties.s === 'unassigned' ? '4 3' : null}; },
    onEachFeature: function (f, l) {
      l.bindTooltip(function () { return tip([[cfg.L.unit, f.properties.id],
        [cfg.L.worker, f.properties.w || cfg.L.unassigned]]); }, {sticky: true});
    }
  }).addTo(map);
  var areas = L.geoJSON(null, {
    style: function (f) { return {fillColor: cfg.area_colors[f.properties.c], color: '#444',
                                  weight: 1, fillOpacity: 0.65}; },
    onEachFeature: function (f, l) {
      var p = f.properties;
      l.bindTooltip(function () {
        return tip([[cfg.L.area, p.name], [cfg.L.units_n, p.n_units], [cfg.L.staffed, p.staffed],
                    [cfg.L.share, Math.round(100 * p.staffed / p.n_units) + '%']]); },
        {sticky: true});
    }
  }).addTo(map);
  var seq = 0;
  window.gkLoads = 0;
  function load() {
    var my = ++seq, z = map.getZoom(), b = map.getBounds();
    var q = 'bbox=' + [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) {
      return v.toFixed(5); }).join(',') + '&zoom=' + z;
    var low = z < cfg.overview.switch;
    fetch(cfg.base + (low ? 'areas?' : 'units?') + q, {credentials: 'same-origin'})
      .then(function (r) { return r.json(); })
      .then(function (doc) {
        if (my !== seq) { return; }
        if (doc.too_many) { low = true; return fetch(cfg.base + 'areas?' + q,
          {credentials: 'same-origin'}).then(function (r) { return r.json(); }).then(function (d) {
            if (my === seq) { show(true, d); } }); }
        show(low, doc);
      });
  }
  function show(low, doc) {
    units.clearLayers(); areas.clearLayers();
    (low ? areas : units).addData(doc);
    document.querySelectorAll('.gk-legend [data-view]').forEach(function (el) {
      el.style.display = (el.getAttribute('data-view') === (low ? 'areas' : 'units')) ? '' : 'none';
    });
    window.gkLoads++; window.gkShown = {low: low, n: doc.features.length};
  }
  map.on('moveend', load);
  load();
  window.gkMap = map;
})();
"""


def viewport_page(
    *,
    base_url: str,
    overview: Mapping,
    lang: str = "zh",
    title: str | None = None,
    asset_base_url: str = "/assets/",
    tiles: str | None = None,
) -> str:
    """The map page that loads units per viewport from ``base_url`` (``units``,
    ``areas`` and ``search`` endpoints answering as :class:`ViewIndex` does).

    Examples
    --------
    >>> page = viewport_page(base_url="/maps/data/", overview={"bounds": [[0, 0], [1, 1]],
    ...                      "switch": 12, "level": "village", "units": 9})
    >>> "/assets/leaflet.js" in page, len(page) < 20_000
    (True, True)
    """
    L = labels(lang)
    level = overview.get("level") or "township"
    cfg = {
        "base": base_url, "overview": dict(overview), "colors": STATUS_COLORS,
        "area_colors": AREA_COLORS, "tiles": tiles, "tiles_attr": "",
        "L": {"unit": L["unit"], "worker": L["worker"], "unassigned": L["unassigned"],
              "area": L[f"admin_{level}"].rstrip("界"), "units_n": L["units_n"],
              "staffed": L["staffed"], "share": L["share_staffed"]},
    }  # fmt: skip
    legend = (
        f'<details class="gk-legend" open><summary>{html.escape(L["legend"])}</summary>'
        f'<section data-view="units"><b>{html.escape(L["status_worker"])}</b>'
        + "".join(f'<div><i style="background:{c}"></i>{html.escape(L[k])}</div>'
                  for k, c in (("staffed", STATUS_COLORS["staffed"]),
                               ("unassigned", STATUS_COLORS["unassigned"])))
        + f'</section><section data-view="areas"><b>{html.escape(L["share_staffed"])}</b>'
        + "".join(f'<div><i style="background:{c}"></i>{html.escape(L[k])}</div>'
                  for k, c in AREA_COLORS.items())
        + "</section></details>"
    )  # fmt: skip
    code = _VIEW_JS.replace("__CFG__", json.dumps(cfg, ensure_ascii=True).replace("<", "\\u003c"))
    search = script_code(
        "gkMap",
        {
            "search_url": base_url + "search",
            "search_placeholder": L["search"],
            "printed_label": L["printed"],
        },
    )
    base = html.escape(asset_base_url.rstrip("/") + "/")
    head = html.escape(title or L["coverage"])
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{head}</title>"
        f'<link rel="stylesheet" href="{base}leaflet.css"><script src="{base}leaflet.js"></script>'
        f"{_CSS}<style>html,body,#map{{height:100%;margin:0}}</style></head><body>"
        f'<div id="map"></div><div class="gk-title">{head}</div>{legend}'
        f"<script>{code}</script><script>{search}</script></body></html>"
    )
