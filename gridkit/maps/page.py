"""The page script of every map: zoom-dependent views, labels, legend in step, search.

One small script of our own (no third-party code) runs after the map is built, with a
JSON configuration written by the map function:

- ``layers``: layer keys (``"units"``, ``"areas"``, ``"reports"``...) to the page's
  Leaflet layer variables; a legend section naming a key is shown only while one of
  its layers is on the map, so the legend never lists what is not drawn;
- ``switch``: below zoom ``zoom`` the ``low`` layer (areas, a choropleth) is shown
  instead of the ``high`` one (units); crossing the zoom swaps them, the layer
  control still lets the user choose;
- ``labels``: the zoom from which each level's labels (county, township, village,
  unit ids) show; ``point_labels``: ``[text, lat, lng]`` labels (unit ids) made only
  for the view (at most 600) from the ``unit`` label zoom on;
- ``search``: ``[text, south, west, north, east]`` entries searched as the user types
  (substring, any language); picking one flies there and outlines it;
  ``search_url``: a server endpoint answering ``?q=`` with the same entries (pages
  too large to carry their index);
- on a narrow screen (< 600 px) the legend starts folded; in print mode (``#print``
  in the URL) the controls are hidden and the legend shown whole.

The configuration is written base64-encoded (no data text appears in the page as
such) and all text reaches the page through ``textContent``, never as HTML.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from branca.element import MacroElement
from jinja2 import Template

__all__ = ["page_script", "script_code"]

_JS = r"""
(function () {
  var map = __MAP__;
  var cfg = JSON.parse(new TextDecoder().decode(
    Uint8Array.from(atob('__CFG__'), function (c) { return c.charCodeAt(0); })));
  cfg.layers = cfg.layers || {};
  var root = map.getContainer(), doc = document;
  function lay(key) {
    return (cfg.layers[key] || []).map(function (n) { return window[n]; })
      .filter(function (l) { return !!l; });
  }
  function shown(key) { return lay(key).some(function (l) { return map.hasLayer(l); }); }
  var printing = cfg.print || location.hash.indexOf('print') >= 0;
  if (printing) {
    doc.body.classList.add('gk-print');
    var t = doc.querySelector('.gk-title');
    if (t) {
      var d = doc.createElement('small');
      d.textContent = (cfg.printed_label || '') + ': ' + new Date().toISOString().slice(0, 10);
      t.appendChild(d);
    }
  }
  var legend = doc.querySelector('.gk-legend');
  if (legend && !printing && window.matchMedia('(max-width: 600px)').matches) {
    legend.removeAttribute('open');
  }
  var low = null;
  function syncSwitch() {
    var sw = cfg['switch'];
    if (!sw) { return; }
    var nowLow = map.getZoom() < sw.zoom;
    if (nowLow === low) { return; }
    low = nowLow;
    lay(nowLow ? sw.high : sw.low).forEach(function (l) { map.removeLayer(l); });
    lay(nowLow ? sw.low : sw.high).forEach(function (l) { map.addLayer(l); });
  }
  function syncLabels() {
    var z = map.getZoom();
    Object.keys(cfg.labels || {}).forEach(function (level) {
      root.classList.toggle('gk-hide-' + level, z < cfg.labels[level]);
    });
  }
  function syncLegend() {
    doc.querySelectorAll('.gk-legend [data-layer]').forEach(function (el) {
      var keys = el.getAttribute('data-layer').split(' ');
      var known = keys.filter(function (k) { return !!cfg.layers[k]; });
      el.style.display = (!known.length || known.some(shown)) ? '' : 'none';
    });
  }
  var plabels = null;
  function syncPointLabels() {
    if (!cfg.point_labels) { return; }
    if (!plabels) { plabels = L.layerGroup().addTo(map); }
    plabels.clearLayers();
    if (map.getZoom() < ((cfg.labels || {}).unit || 99)) { return; }
    var b = map.getBounds(), n = 0;
    for (var i = 0; i < cfg.point_labels.length && n < 600; i++) {
      var p = cfg.point_labels[i];
      if (!b.contains([p[1], p[2]])) { continue; }
      var span = doc.createElement('span');
      span.textContent = p[0];
      L.marker([p[1], p[2]], {interactive: false, keyboard: false, icon: L.divIcon(
        {className: 'gk-lbl gk-lbl-unit', html: span, iconSize: null})}).addTo(plabels);
      n++;
    }
  }
  function sync() { syncSwitch(); syncLabels(); syncLegend(); }
  map.on('zoomend', sync);
  map.on('moveend', syncPointLabels);
  syncPointLabels();
  map.on('overlayadd overlayremove', syncLegend);
  sync();
  window.gkReady = true;
  if (!cfg.search && !cfg.search_url) { return; }
  var box = L.control({position: 'topleft'});
  var input, list, mark = null;
  box.onAdd = function () {
    var div = L.DomUtil.create('div', 'gk-search');
    input = L.DomUtil.create('input', '', div);
    input.type = 'search';
    input.placeholder = cfg.search_placeholder || 'search';
    input.setAttribute('aria-label', input.placeholder);
    list = L.DomUtil.create('ul', '', div);
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
    return div;
  };
  box.addTo(map);
  function go(e) {
    var b = L.latLngBounds([e[1], e[2]], [e[3], e[4]]);
    if (mark) { map.removeLayer(mark); }
    mark = L.rectangle(b.pad(0.15), {color: '#000', weight: 3, fill: false,
                                     dashArray: '6 4', interactive: false}).addTo(map);
    map.flyToBounds(b, {maxZoom: cfg.search_zoom || 17, duration: 0.6});
    list.textContent = '';
    input.value = e[0];
    window.gkFound = e[0];
  }
  function show(hits) {
    list.textContent = '';
    hits.slice(0, 30).forEach(function (e, i) {
      var li = doc.createElement('li');
      li.textContent = e[0];
      if (i === 0) { li.className = 'gk-on'; }
      li.addEventListener('click', function () { go(e); });
      list.appendChild(li);
    });
    list._hits = hits;
  }
  var timer = null;
  function find() {
    var q = input.value.trim().toLowerCase();
    if (!q) { show([]); return; }
    if (cfg.search) {
      var hits = [];
      for (var i = 0; i < cfg.search.length && hits.length < 30; i++) {
        if (cfg.search[i][0].toLowerCase().indexOf(q) >= 0) { hits.push(cfg.search[i]); }
      }
      show(hits);
    } else {
      clearTimeout(timer);
      timer = setTimeout(function () {
        fetch(cfg.search_url + '?q=' + encodeURIComponent(q), {credentials: 'same-origin'})
          .then(function (r) { return r.ok ? r.json() : []; }).then(show)
          .catch(function () { show([]); });
      }, 200);
    }
  }
  input.addEventListener('input', find);
  input.addEventListener('keydown', function (ev) {
    if (ev.key === 'Enter' && list._hits && list._hits.length) { go(list._hits[0]); }
  });
})();
"""


class _PageScript(MacroElement):
    _template = Template("{% macro script(this, kwargs) %}{{ this.code }}{% endmacro %}")

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self._name = "GridkitPage"
        self.config = dict(config)
        self.code = ""

    def render(self, **kwargs: Any) -> None:
        self.code = script_code(self._parent.get_name(), self.config)
        super().render(**kwargs)


def script_code(map_var: str, config: Mapping[str, Any]) -> str:
    """The page script's JavaScript for the Leaflet map in global ``map_var``.

    Examples
    --------
    >>> "window.gkReady = true" in script_code("gkMap", {"layers": {}})
    True
    """
    cfg = json.dumps(dict(config), ensure_ascii=False, separators=(",", ":"))
    # base64: no text of the data (a "</script", markup) appears in the page as such
    cfg = base64.b64encode(cfg.encode("utf-8")).decode("ascii")
    return _JS.replace("__MAP__", map_var).replace("__CFG__", cfg)


def page_script(config: Mapping[str, Any]) -> MacroElement:
    """The page script with ``config`` (see the module's description); add it last.

    Examples
    --------
    >>> import folium
    >>> m = folium.Map(tiles=None)
    >>> _ = m.add_child(page_script({"layers": {}, "search": [["</script>", 0, 0, 1, 1]]}))
    >>> page = m.get_root().render()
    >>> "gkReady" in page, "</script>\\"" in page
    (True, False)
    """
    return _PageScript(config)
