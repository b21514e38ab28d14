"""Maps as a supervisor sees them, in headless Chromium with the network cut, on the
demo workspace (Zhuzhou's real districts and rivers, synthetic grids and a season):

- every colour in the legend is on the map and every fill on the map is in the legend,
  at city zoom (villages) and street zoom (units);
- visible labels are in the page's language;
- at 390 px the title, legend and layer control stay small and apart;
- the search box flies to a unit;
- screenshots at 1400 and 390 px, city and street zoom, go to ``tests/browser/artifacts/``
  and, with ``GRIDKIT_UPDATE_DOCS=1``, to ``docs/maps/`` (the README's pictures).

Made by ``gridkit map`` from the raw layers (hotspots from reports, compliance from
patrols), as a user would.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from gridkit.cli.app import main
from gridkit.demo import run_demo
from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs" / "maps"
KINDS = ("coverage", "compliance", "hotspots", "review")

FIND = """return Object.keys(window).filter(k => { try { return window[k] instanceof L.Map; }
                                            catch (e) { return false; } })[0];"""

# fills drawn in the view and on the whole map (polygons of data and context layers,
# symbol markers) and the legend's swatches of its visible sections, as #rrggbb
COLOURS = """
const map = window[arguments[0]], view = map.getBounds();
function hex(c) {
  if (!c) return null; c = c.trim().toLowerCase();
  if (c[0] === '#') return c.length === 4 ? '#' + c[1]+c[1]+c[2]+c[2]+c[3]+c[3] : c;
  const m = c.match(/\\d+/g); if (!m) return null;
  return '#' + m.slice(0, 3).map(v => (+v).toString(16).padStart(2, '0')).join('');
}
const fills = new Set(), strokes = new Set(), symbols = new Set(), all = new Set();
map.eachLayer(l => {
  if (l instanceof L.Path && l.getBounds && l.options) {
    const filled = l.options.fill !== false && (l.options.fillOpacity || 0) > 0
                   && l.options.fillColor;
    if (filled) all.add(hex(l.options.fillColor));
    let inView = false; try { inView = view.intersects(l.getBounds()); } catch (e) {}
    if (!inView) return;
    if (filled) fills.add(hex(l.options.fillColor));
    if (l.options.color && (l.options.opacity === undefined || l.options.opacity > 0))
      strokes.add(hex(l.options.color));
  }
  if (l instanceof L.Marker && l._icon && view.contains(l.getLatLng())) {
    const p = l._icon.querySelector('svg.gk-sym path');
    if (p) symbols.add(hex(p.getAttribute('fill')) + ' ' + p.getAttribute('d').slice(0, 12));
  }
});
const legend = {fills: [], lines: [], symbols: []};
document.querySelectorAll('.gk-legend section').forEach(s => {
  if (s.style.display === 'none') return;
  s.querySelectorAll('div').forEach(d => {
    const i = d.querySelector('i'), p = d.querySelector('svg.gk-sym path');
    if (p) {
      legend.symbols.push(hex(p.getAttribute('fill')) + ' ' + p.getAttribute('d').slice(0, 12));
      return;
    }
    if (!i) return;
    const cs = getComputedStyle(i);
    if (i.classList.contains('gk-line') || i.classList.contains('gk-outline'))
      legend.lines.push(hex(cs.borderTopColor));
    else legend.fills.push(hex(i.style.background || cs.backgroundColor));
  });
});
return {fills: [...fills], all: [...all], strokes: [...strokes], symbols: [...symbols], legend,
        zoom: map.getZoom()};
"""

TEXTS = """
const q = s => Array.from(document.querySelectorAll(s)).map(e => e.textContent).join('\\n');
return {legend: q('.gk-legend'), title: q('.gk-title'), control: q('.leaflet-control-layers'),
        search: (document.querySelector('.gk-search input') || {}).placeholder || ''};
"""

RECTS = """
const r = s => { const e = document.querySelector(s); if (!e) return null;
  const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
return {title: r('.gk-title'), legend: r('.gk-legend'), control: r('.leaflet-control-layers'),
        search: r('.gk-search'), open: document.querySelector('.gk-legend').open,
        w: innerWidth, h: innerHeight};
"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The demo workspace and one map page per kind, written by ``gridkit map``."""
    cache = os.environ.get("GRIDKIT_VIEWS_CACHE")  # developers: reuse pages between runs
    tmp = Path(cache) if cache else tmp_path_factory.mktemp("views")
    ws = tmp / "zhuzhou.gpkg"
    if cache and (tmp / "review_zh.html").exists():
        return {(p.stem.split("_")[0], p.stem.split("_")[1]): p for p in tmp.glob("*_*.html")}
    tmp.mkdir(parents=True, exist_ok=True)
    run_demo(ws)
    w = str(ws)
    args = {
        "coverage": ["--assignments", f"{w}:assignments", "--workers", f"{w}:workers",
                     "--reports", f"{w}:reports"],
        "compliance": ["--patrols", f"{w}:patrols", "--assignments", f"{w}:assignments",
                       "--workers", f"{w}:workers"],
        "hotspots": ["--reports", f"{w}:reports"],
        "review": ["--max-households", "400", "--max-length", "2000",
                   "--buildings", f"{w}:buildings", "--assignments", f"{w}:assignments",
                   "--workers", f"{w}:workers"],
    }  # fmt: skip
    out = {}
    for kind, more in args.items():
        for lang in ("zh", "en") if kind in ("coverage", "hotspots") else ("zh",):
            path = tmp / f"{kind}_{lang}.html"
            code = main(["map", f"{w}:units", "--kind", kind, "--lang", lang, *more,
                         "-o", str(path)])  # fmt: skip
            assert code == 0, kind
            out[kind, lang] = path
    return out


def _open(browser, path: Path, width: int, height: int) -> str:
    browser.get_log("browser")  # the shared browser's log of earlier pages: not ours
    browser.set_window_size(width, height)
    browser.get(path.as_uri())
    deadline = time.time() + 30
    while time.time() < deadline:
        if browser.execute_script("return window.gkReady === true"):
            break
        time.sleep(0.1)
    assert browser.execute_script("return window.gkReady === true"), "page script did not run"
    return browser.execute_script(FIND)


def _street(browser, name: str) -> None:
    """Zoom to street level (16) on the middle unit of the units layer."""
    browser.execute_script(
        "const m = window[arguments[0]], units = window[window.gkConfig.layers.units[0]];"
        "const all = units.getLayers(), u = all[Math.floor(all.length / 2)];"
        "m.setView(u.getBounds().getCenter(), 16, {animate: false});",
        name,
    )
    time.sleep(0.8)


def _shot(browser, name: str) -> None:
    """A screenshot in the artifacts; in ``docs/maps/`` too with ``GRIDKIT_UPDATE_DOCS=1``."""
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / name))
    if os.environ.get("GRIDKIT_UPDATE_DOCS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ARTIFACTS / name, DOCS / name)


def _errors(browser) -> list:
    return [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]


@pytest.mark.parametrize("kind", KINDS)
def test_legend_and_map_agree_at_city_and_street_zoom(browser, pages, kind):
    name = _open(browser, pages[kind, "zh"], 1400, 900)
    for zoom in ("city", "street"):
        if zoom == "street":
            _street(browser, name)
        else:
            time.sleep(0.8)
        c = browser.execute_script(COLOURS, name)
        drawn, legend = set(c["fills"]), set(c["legend"]["fills"])
        assert drawn, (kind, zoom)
        assert drawn <= legend, (kind, zoom, "on the map, not in the legend", drawn - legend)
        on_map = set(c["all"])  # the legend is the map's, not only the view's
        assert legend <= on_map, (kind, zoom, "in the legend, not on the map", legend - on_map)
        assert set(c["symbols"]) <= set(c["legend"]["symbols"]), (kind, zoom)
        assert set(c["legend"]["lines"]) <= set(c["strokes"]), (kind, zoom)
        _shot(browser, f"{kind}_{zoom}_1400.png")
    assert not _errors(browser)


@pytest.mark.parametrize("kind", KINDS)
def test_visible_labels_are_in_the_page_language(browser, pages, kind):
    _open(browser, pages[kind, "zh"], 1400, 900)
    zh = browser.execute_script(TEXTS)
    latin = re.findall(r"[A-Za-z]{3,}", " ".join(zh.values()))
    assert not latin, latin  # no category keys (floating_garbage), no English labels
    if (kind, "en") not in pages:
        return
    _open(browser, pages[kind, "en"], 1400, 900)
    en = browser.execute_script(TEXTS)
    cjk = re.findall(r"[\u4e00-\u9fff]+", " ".join(en.values()))
    assert not cjk, cjk


def _overlap(a, b) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


@pytest.mark.parametrize("kind", KINDS)
def test_phone_title_legend_and_control_fold(browser, pages, kind):
    name = _open(browser, pages[kind, "zh"], 390, 844)
    r = browser.execute_script(RECTS)
    assert r["open"] is False  # the legend starts folded on a phone
    boxes = [r[k] for k in ("title", "legend", "control", "search") if r[k]]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not _overlap(a, b), (kind, a, b)
    area = sum((b[2] - b[0]) * (b[3] - b[1]) for b in boxes)
    assert area < 0.12 * r["w"] * r["h"], (kind, area)
    time.sleep(0.5)
    _shot(browser, f"{kind}_city_390.png")
    _street(browser, name)
    browser.execute_script("document.querySelector('.gk-legend').open = true")
    time.sleep(0.3)
    r = browser.execute_script(RECTS)
    assert r["legend"][3] - r["legend"][1] <= 0.45 * r["h"]  # opened, it scrolls
    _shot(browser, f"{kind}_street_390.png")


def test_zoom_switches_areas_and_units_and_the_legend_follows(browser, pages):
    name = _open(browser, pages["coverage", "zh"], 1400, 900)
    time.sleep(0.5)
    state = """const m = window[arguments[0]]; return Array.from(document.querySelectorAll(
        '.gk-legend section[data-layer]')).filter(s => s.style.display !== 'none')
        .map(s => s.getAttribute('data-layer')).concat(['z' + m.getZoom()]);"""
    city = browser.execute_script(state, name)
    assert "areas" in city and "units" not in city, city
    _street(browser, name)
    street = browser.execute_script(state, name)
    assert "units" in street and "areas" not in street, street


def test_search_flies_to_a_unit(browser, pages):
    from selenium.webdriver.common.keys import Keys

    name = _open(browser, pages["coverage", "zh"], 1400, 900)
    uid = browser.execute_script(
        "const all = window[window.gkConfig.layers.units[0]].getLayers();"
        "const tip = all[Math.floor(all.length / 3)].feature.properties.tip;"
        "return tip.match(/单元<\\/b> ([^<]+)/)[1];"
    )
    assert uid
    box = browser.find_element("css selector", ".gk-search input")
    box.send_keys(uid)
    time.sleep(0.3)
    hits = browser.execute_script("return document.querySelectorAll('.gk-search li').length")
    assert hits >= 1
    box.send_keys(Keys.ENTER)
    time.sleep(1.5)
    z = browser.execute_script("return window[arguments[0]].getZoom()", name)
    found = browser.execute_script("return window.gkFound")
    assert found.startswith(uid) and z >= 15
    inside = browser.execute_script(
        "const m = window[arguments[0]], id = arguments[1]; let hit = false;"
        "window[window.gkConfig.layers.units[0]].eachLayer(l => { if (l.feature.properties.tip"
        ".indexOf(id + '<') >= 0 && l.getBounds().contains(m.getCenter())) hit = true; });"
        "return hit && m.hasLayer(window[window.gkConfig.layers.units[0]]);",
        name,
        uid,
    )
    assert inside  # centred on the unit, with the units (not the areas) shown
    _shot(browser, "search_1400.png")
