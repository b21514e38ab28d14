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

import functools
import html
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit import codes
from gridkit.crs import WGS84
from gridkit.errors import GridkitError
from gridkit.geojson import dumps, to_geojson
from gridkit.maps.areas import aggregate, pick_level, switch_zoom
from gridkit.maps.context import Context
from gridkit.maps.labels import labels
from gridkit.maps.legend import _CSS
from gridkit.maps.page import script_code
from gridkit.maps.views import (
    RATE_TEXT,
    VIEWS,
    Theme,
    cases_theme,
    compliance_theme,
    coverage_theme,
)
from gridkit.webmap import check_bbox, half_pixel, places_of

__all__ = ["ViewIndex", "viewport_page"]

STATUS_COLORS = VIEWS["coverage"]["units"]
AREA_COLORS = VIEWS["coverage"]["areas"]


def _sizes(u: gpd.GeoDataFrame) -> pd.DataFrame:
    """Households and km of river per unit (0 where unknown), for case rates."""
    out = {}
    for col, name, scale in (("households", "households", 1.0), ("length_m", "km", 1e-3)):
        v = u[col] if col in u.columns else pd.Series(0.0, index=u.index)
        out[name] = (pd.to_numeric(v, errors="coerce").fillna(0) * scale).astype("float32")
    return pd.DataFrame(out).reset_index(drop=True)


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
    >>> [hit[0] for hit in ix.search("0007")][:2]  # places first, then units
    ['430202000007', '430202000001-0007 荷塘区第8网格 · W001']

    The other views take numbers computed by the rules (compliance rows, open cases):

    >>> rows = pd.DataFrame({"unit_id": ["430202000001-0000"], "required": [4], "done": [1]})
    >>> box = (113.1, 27.8, 113.102, 27.802)
    >>> json.loads(ix.units(box, 18, theme=ix.compliance(rows)))["features"][0]["properties"]
    {'id': '430202000001-0000', 's': 'low', 'w': 'W001', 'q': 4, 'd': 1}
    >>> cases = pd.DataFrame({"unit_id": ["430202000001-0000"], "overdue": [True]})
    >>> doc = json.loads(ix.areas(box, 12, theme=ix.cases(cases)))
    >>> {k: doc["features"][0]["properties"][k] for k in ("n_units", "open", "late", "c")}
    {'n_units': 20, 'open': 1, 'late': 1, 'c': 'rate_low'}
    """

    frame: gpd.GeoDataFrame
    tree: shapely.STRtree
    area_frame: gpd.GeoDataFrame | None
    level: str | None
    entries: tuple
    switch: int
    extent: tuple
    area_of: np.ndarray
    sizes: pd.DataFrame
    coverage: Theme
    _simplified: dict = field(default_factory=dict, repr=False)

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
            w = a["worker_id"].astype(str).astype(object)
            named = w.map(names)
            pairs = pd.DataFrame({"u": a["unit_id"].astype(str).to_numpy(),
                                  "w": named.where(named.notna(), w).to_numpy()})  # fmt: skip
            pairs = pairs.drop_duplicates().sort_values(["u", "w"])
            many = pairs["u"].duplicated(keep=False)  # the few units with several workers
            joined = pd.concat([
                pairs[~many].set_index("u")["w"],
                pairs[many].groupby("u")["w"].agg(" · ".join),
            ])  # fmt: skip
            who = joined.reindex(ids.to_numpy()).fillna("")
        staffed = (who != "").to_numpy()
        frame = gpd.GeoDataFrame(
            {"id": ids.to_numpy(), "w": who.to_numpy()}, geometry=u.geometry.array, crs=WGS84
        )
        level = pick_level(u["admin_code"]) if "admin_code" in u.columns else None
        area_frame, area_of = None, np.full(len(u), -1)
        if level is not None:
            area_frame = aggregate(u, pd.DataFrame(index=u.index), level, context)
            code = codes.ancestor(u["admin_code"].astype(str), level)
            area_of = pd.Index(area_frame["admin_code"]).get_indexer(code)
        n_areas = 0 if area_frame is None else len(area_frame)
        title = ids + (" " + u["name"].fillna("").astype(str) if "name" in u.columns else "")
        text = np.where(staffed, title + " · " + who.to_numpy(), title)
        text = pd.Series(text, dtype=object)
        bounds = u.geometry.bounds.to_numpy()
        places = _places(context, u, area_frame)
        if len(places):  # place names before the units: areas, then the levels above
            text = pd.concat([places["name"].astype(str), text], ignore_index=True)
            bounds = np.vstack([places.geometry.bounds.to_numpy(), bounds])
        entries = (text.str.lower(), text, np.round(bounds[:, [1, 0, 3, 2]], 5))
        return cls(
            frame=frame, tree=shapely.STRtree(np.asarray(frame.geometry.array)),
            area_frame=area_frame, level=level, entries=entries, switch=switch_zoom(u),
            extent=tuple(float(v) for v in frame.total_bounds), area_of=area_of,
            sizes=_sizes(u), coverage=coverage_theme(staffed, area_of, n_areas),
        )  # fmt: skip

    @functools.cached_property
    def ids(self) -> pd.Index:
        """The units' ids, hashed once (the views look units up by id)."""
        return pd.Index(self.frame["id"].to_numpy())

    def positions(self, unit_ids: pd.Series) -> np.ndarray:
        """The position of each of ``unit_ids`` among the units (-1: not in this index)."""
        return np.asarray(self.ids.get_indexer(unit_ids.astype(str).to_numpy()))

    @property
    def n_areas(self) -> int:
        """How many villages or townships the choropleth has (0: none)."""
        return 0 if self.area_frame is None else len(self.area_frame)

    def compliance(self, rows: pd.DataFrame) -> Theme:
        """The compliance view from compliance rows (``gridkit.ops.patrol_compliance``),
        see :func:`~gridkit.maps.views.compliance_theme`."""
        return compliance_theme(self.ids, rows, self.area_of, self.n_areas)

    def cases(self, cases: pd.DataFrame, *, until: pd.Timestamp | None = None) -> Theme:
        """The cases view from open cases (``unit_id``, ``overdue``), see
        :func:`~gridkit.maps.views.cases_theme`; ``until``: when one falls overdue."""
        return cases_theme(self.ids, cases, self.sizes, self.area_of, self.n_areas,
                           until=until)  # fmt: skip

    def units(
        self, bbox: tuple, zoom: int, *, limit: int = 20_000, theme: Theme | None = None
    ) -> bytes:
        """GeoJSON of the units meeting ``bbox`` (w, s, e, n), simplified for ``zoom``,
        with their class ``s`` and numbers in ``theme`` (default: coverage);
        ``{"too_many": n}`` when more than ``limit`` meet it."""
        box = check_bbox(bbox)
        guess = self._estimate(box)
        if guess > 4 * limit:  # clearly too many: refused without touching them
            return dumps({"type": "FeatureCollection", "features": [], "too_many": guess})
        hit = np.sort(self.tree.query(shapely.box(*box), predicate="intersects"))
        if len(hit) > limit:
            return dumps({"type": "FeatureCollection", "features": [], "too_many": len(hit)})
        t = self.coverage if theme is None else theme
        f = self.frame
        geoms = shapely.simplify(np.asarray(f.geometry.array)[hit], half_pixel(zoom),
                                 preserve_topology=True)  # fmt: skip
        props = {"id": f["id"].to_numpy()[hit], "s": t.unit_class[hit], "w": f["w"].to_numpy()[hit]}
        props |= {k: t.unit_values[k].to_numpy()[hit] for k in t.unit_values.columns}
        sub = gpd.GeoDataFrame(props, geometry=geoms, crs=WGS84)
        return to_geojson(sub, precision=6 if zoom >= 15 else 5)

    def areas(self, bbox: tuple, zoom: int, *, theme: Theme | None = None) -> bytes:
        """GeoJSON of the areas (``name``, ``n_units``, the sums of ``theme``, default
        coverage, and its class ``c``) meeting ``bbox``, simplified for ``zoom``."""
        a = self.area_frame
        if a is None:
            return dumps({"type": "FeatureCollection", "features": []})
        hit = np.sort(a.sindex.query(shapely.box(*check_bbox(bbox)), predicate="intersects"))
        z = max(0, min(22, int(zoom)))
        if z not in self._simplified:  # once per zoom: areas are few, requests many
            self._simplified[z] = shapely.simplify(
                np.asarray(a.geometry.array), half_pixel(z), preserve_topology=True
            )
        t = self.coverage if theme is None else theme
        sub = a.iloc[hit][["admin_code", "name", "n_units"]].reset_index(drop=True)
        sub = pd.concat([sub, t.area_values.iloc[hit].reset_index(drop=True)], axis=1)
        frame = gpd.GeoDataFrame(sub, geometry=self._simplified[z][hit], crs=WGS84)
        return to_geojson(frame, precision=5)

    def _estimate(self, box: tuple) -> int:
        """Units expected in ``box`` if they were spread evenly over the extent."""
        w, s, e, n = self.extent
        iw = max(0.0, min(e, box[2]) - max(w, box[0]))
        ih = max(0.0, min(n, box[3]) - max(s, box[1]))
        area = max((e - w) * (n - s), 1e-12)
        return int(len(self.frame) * min(1.0, iw * ih / area))

    def search(self, q: str, limit: int = 20) -> list:
        """Entries ``[text, south, west, north, east]`` whose text holds ``q``: places
        (areas drawn, then the admin areas above them) first, then units."""
        q = q.strip().lower()[:100]
        if not q:
            return []
        low, text, b = self.entries
        found = np.flatnonzero(low.str.contains(q, regex=False).to_numpy())[:limit]
        return [[text.iat[i], *b[i].tolist()] for i in found]

    def overview(self) -> dict:
        """Bounds, the zoom from which units are served, and the areas' level."""
        b = self.extent
        return {"bounds": [[b[1], b[0]], [b[3], b[2]]], "switch": self.switch,
                "level": self.level, "units": len(self.frame)}  # fmt: skip


def _places(
    context: Context | None, units: gpd.GeoDataFrame, area_frame: gpd.GeoDataFrame | None
) -> gpd.GeoDataFrame:
    """The places a search finds by name: the areas drawn, then every other admin area
    holding units (:func:`gridkit.webmap.places_of`: a village's township and county)."""
    parts = [] if area_frame is None else [area_frame[["admin_code", "name", "geometry"]]]
    admin = None if context is None else context.admin
    if admin is not None and "name" in admin.columns and "admin_code" in units.columns:
        more = admin.iloc[places_of(admin, units["admin_code"])].to_crs(WGS84)
        drawn = set() if area_frame is None else set(area_frame["admin_code"].astype(str))
        more = more[~more["admin_code"].astype(str).isin(drawn)]
        more = more[
            more["name"].notna()
            & ~shapely.is_missing(more.geometry.array)
            & ~more.geometry.is_empty
        ]
        parts.append(more[["admin_code", "name", "geometry"]].drop_duplicates("admin_code"))
    if not parts:
        return gpd.GeoDataFrame({"admin_code": [], "name": []}, geometry=[], crs=WGS84)
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=WGS84)


_VIEW_JS = r"""
(function () {
  var cfg = __CFG__, map = L.map('map', {preferCanvas: true, zoomControl: true});
  L.control.scale().addTo(map);
  if (cfg.tiles) { L.tileLayer(cfg.tiles, {maxZoom: 19, attribution: cfg.tiles_attr}).addTo(map); }
  map.fitBounds(cfg.overview.bounds);
  function val(p, k) {
    if (k.indexOf('/') > 0) { var ab = k.split('/'), b = p[ab[1]];
      return b ? Math.round(100 * p[ab[0]] / b) + '%' : '—'; }
    return (p[k] === null || p[k] === undefined || p[k] === '') ? '—' : String(p[k]);
  }
  function tip(rows) {
    var d = document.createElement('div');
    rows.forEach(function (r) {
      var b = document.createElement('b'); b.textContent = r[0] + ' ';
      d.appendChild(b); d.appendChild(document.createTextNode(r[1]));
      d.appendChild(document.createElement('br'));
    });
    return d;
  }
  function more(p, rows) { return rows.map(function (r) { return [r[0], val(p, r[1])]; }); }
  var units = L.geoJSON(null, {
    style: function (f) { var s = f.properties.s;
      return {fillColor: cfg.colors[s], color: '#333', weight: 0.6, fillOpacity: 0.7,
              dashArray: (s === 'unassigned' || s === 'no_data') ? '4 3' : null}; },
    onEachFeature: function (f, l) {
      var p = f.properties, head = [[cfg.L.unit, p.id], [cfg.L.status, cfg.names[p.s]]];
      l.bindTooltip(function () { return tip(head); }, {sticky: true});
      l.bindPopup(function () {  // people only here (and in search), never in colours
        return tip(head.concat([[cfg.L.worker, p.w || cfg.L.unassigned]],
                               more(p, cfg.unit_rows))); });
    }
  }).addTo(map);
  var areas = L.geoJSON(null, {
    style: function (f) { return {fillColor: cfg.area_colors[f.properties.c], color: '#ffffff',
                                  weight: 0.6, opacity: 0.8, fillOpacity: 0.75}; },
    onEachFeature: function (f, l) {
      var p = f.properties, rows = function () {
        return tip([[cfg.L.area, p.name], [cfg.L.units_n, p.n_units]]
                   .concat(more(p, cfg.area_rows))); };
      l.bindTooltip(rows, {sticky: true});
      l.bindPopup(rows);  // the numbers on click
    }
  }).addTo(map);
  var seq = 0, tail = cfg.tail;
  window.gkLoads = 0;
  function get(url) {
    return fetch(url, {credentials: 'same-origin'}).then(function (r) { return r.json(); });
  }
  function load() {
    var my = ++seq, z = map.getZoom(), b = map.getBounds();
    var q = 'bbox=' + [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) {
      return v.toFixed(5); }).join(',') + '&zoom=' + z + tail;
    var low = z < cfg.overview.switch;
    get(cfg.base + (low ? 'areas?' : 'units?') + q).then(function (doc) {
      if (my !== seq) { return; }
      if (doc.too_many) { return get(cfg.base + 'areas?' + q).then(function (d) {
        if (my === seq) { show(true, d); } }); }
      show(low, doc);
    });
  }
  function show(low, doc) {
    units.clearLayers(); areas.clearLayers();
    (low ? areas : units).addData(doc);
    var drawn = {};  // the legend lists only the classes drawn
    doc.features.forEach(function (f) { drawn[low ? f.properties.c : f.properties.s] = 1; });
    var part = low ? 'areas' : 'units';
    document.querySelectorAll('.gk-legend section[data-view]').forEach(function (el) {
      var on = el.getAttribute('data-view') === part;
      el.style.display = on ? '' : 'none';
      el.querySelectorAll('[data-k]').forEach(function (e) {
        e.style.display = on && drawn[e.getAttribute('data-k')] ? '' : 'none'; });
    });
    window.gkLoads++;
    window.gkShown = {low: low, n: doc.features.length, classes: Object.keys(drawn).sort()};
  }
  map.on('moveend', load);
  load();
  window.gkMap = map;
})();
"""

#: the numbers of each view in the popups: [label key, property] ("a/b": a share)
_ROWS = {
    "coverage": ([], [("staffed", "staffed"), ("share_staffed", "staffed/n_units")]),
    "compliance": (
        [("required", "q"), ("done", "d"), ("completion", "d/q")],
        [("required", "required"), ("done", "done"), ("completion", "done/required")],
    ),
    "cases": (
        [("open_cases", "o"), ("overdue_cases", "l")],
        [("open_cases", "open"), ("overdue_cases", "late"), ("households", "households"),
         ("per_1000", "r"), ("river_km", "km"), ("per_km", "rk")],
    ),
}  # fmt: skip
_HEADS = {
    "coverage": ("status_worker", "share_staffed"),
    "compliance": ("completion", "completion"),
    "cases": ("open_cases", "case_rate"),
}
TITLES = {"coverage": "coverage", "compliance": "compliance", "cases": "cases_view"}


def _legend(view: str, L: Mapping[str, str], level: str, lang: str, period: str | None) -> str:
    """The legend of ``view``: unit classes, area classes, and links to the other views."""
    esc = html.escape
    names = _class_names(view, L)
    heads = _HEADS[view]

    def section(part: str, head: str) -> str:
        return (f'<section data-view="{part}"><b>{esc(head)}</b>'
                + "".join(f'<div data-k="{k}"><i style="background:{c}"></i>{esc(names[k])}</div>'
                          for k, c in VIEWS[view][part].items())
                + "</section>")  # fmt: skip

    links = " · ".join(
        f"<b>{esc(L[TITLES[v]])}</b>" if v == view
        else f'<a href="?{esc(_query(v, lang, period))}">{esc(L[TITLES[v]])}</a>'
        for v in VIEWS
    )  # fmt: skip
    return (
        f'<details class="gk-legend" open><summary>{esc(L["legend"])}</summary>'
        f'<nav class="gk-views">{links}</nav>'
        + section("units", L[heads[0]])
        + section("areas", f"{L[heads[1]]} · {L[f'areas_{level}']}")
        + "</details>"
    )


def _query(view: str, lang: str, period: str | None) -> str:
    return urlencode({"view": view, "lang": lang, **({"period": period} if period else {})})


def _class_names(view: str, L: Mapping[str, str]) -> dict[str, str]:
    keys = {*VIEWS[view]["units"], *VIEWS[view]["areas"]}
    return {k: f"{L[k]} ({RATE_TEXT[k]})" if k in RATE_TEXT else L[k] for k in keys}


def viewport_page(
    *,
    base_url: str,
    overview: Mapping,
    lang: str = "zh",
    view: str = "coverage",
    period: str | None = None,
    title: str | None = None,
    asset_base_url: str = "/assets/",
    tiles: str | None = None,
) -> str:
    """The map page that loads units per viewport from ``base_url`` (``units``,
    ``areas`` and ``search`` endpoints answering as :class:`ViewIndex` does), showing
    ``view`` (``coverage``, ``compliance`` or ``cases``, see :data:`~gridkit.maps.views.VIEWS`)
    over ``period`` (compliance: asked of the endpoints and named under the title).

    Examples
    --------
    >>> page = viewport_page(base_url="/maps/data/", overview={"bounds": [[0, 0], [1, 1]],
    ...                      "switch": 12, "level": "village", "units": 9})
    >>> "/assets/leaflet.js" in page, len(page) < 20_000
    (True, True)
    >>> "巡查达标情况" in viewport_page(base_url="/d/", overview={"bounds": [[0, 0], [1, 1]],
    ...                                  "switch": 12}, view="compliance")
    True
    """
    if view not in VIEWS:
        raise GridkitError(f"Unknown map view {view!r}.", hint=f"One of {', '.join(VIEWS)}.")
    L = labels(lang)
    level = overview.get("level") or "township"
    unit_rows, area_rows = _ROWS[view]
    cfg = {
        "base": base_url, "view": view, "overview": dict(overview),
        "tail": "&" + urlencode({"view": view, **({"period": period} if period else {})}),
        "colors": VIEWS[view]["units"], "area_colors": VIEWS[view]["areas"],
        "names": _class_names(view, L), "tiles": tiles, "tiles_attr": "",
        "unit_rows": [[L[k], p] for k, p in unit_rows],
        "area_rows": [[L[k], p] for k, p in area_rows],
        "L": {"unit": L["unit"], "worker": L["worker"], "unassigned": L["unassigned"],
              "area": L[f"level_{level}"], "units_n": L["units_n"], "status": L["status"]},
    }  # fmt: skip
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
    head = html.escape(title or L[TITLES[view]])
    if period and view == "compliance":
        head += f"<small>{html.escape(L['period'])}: {html.escape(period)}</small>"
    return (
        f'<!DOCTYPE html>\n<html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title or L[TITLES[view]])}</title>"
        '<link rel="icon" href="data:,">'  # no request for a favicon the server has not
        f'<link rel="stylesheet" href="{base}leaflet.css"><script src="{base}leaflet.js"></script>'
        f"{_CSS}<style>html,body,#map{{height:100%;margin:0}}"
        ".gk-views{margin:2px 0 4px;white-space:normal}.gk-views b{display:inline}</style>"
        f'</head><body><div id="map"></div><div class="gk-title">{head}</div>'
        f"{_legend(view, L, level, lang, period)}"
        f"<script>{code}</script><script>{search}</script></body></html>"
    )
