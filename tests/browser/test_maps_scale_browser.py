"""``/maps/view`` (the page of any size) in headless Chromium, served by ``gridkit serve``
over a small synthetic workspace (1,200 units in 35 villages, a May of patrols, cases
open, overdue, paused and closed); the browser reaches the loopback server only.

For each view (coverage, compliance, cases), at city zoom (villages) and street zoom
(units), 1400 and 390 px wide:

- every colour in the legend is drawn and every fill drawn is in the legend;
- the fills are the view's own classes (colour-blind safe palettes, never by person);
- visible labels are in the page's language (zh default, en);
- people appear in a unit's popup, never in its tooltip or the legend;
- the page never holds all units (areas at city zoom, the units in view after a jump).

Screenshots go to ``tests/browser/artifacts/``; with ``GRIDKIT_UPDATE_DOCS=1`` also to
``docs/maps/view_<view>_<zoom>_<width>.png``. Sizes and timings at 10^4–10^6 units are
measured by ``python -m benchmarks --only maps``, not here.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridkit.maps.views import VIEWS
from gridkit.store import create_store, issue_key, open_store
from gridkit.synth import maps as synth
from tests.api.live import live_server
from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs" / "maps"
N = 1_200
DRAWN = "return window.gkLoads >= 1 && window.gkShown ? window.gkShown : null;"
# fills drawn (every feature the page holds: the view's own request) and the legend's
# visible swatches, as #rrggbb
COLOURS = """
function hex(c) {
  if (!c) return null; c = c.trim().toLowerCase();
  if (c[0] === '#') return c;
  const m = c.match(/\\d+/g); if (!m) return null;
  return '#' + m.slice(0, 3).map(v => (+v).toString(16).padStart(2, '0')).join('');
}
const fills = new Set();
window.gkMap.eachLayer(l => { if (l.feature && l.options && l.options.fillColor)
  fills.add(hex(l.options.fillColor)); });
const legend = [];
document.querySelectorAll('.gk-legend section').forEach(s => {
  if (s.style.display === 'none') return;
  s.querySelectorAll('div[data-k]').forEach(d => {
    if (d.style.display === 'none') return;
    legend.push(hex(d.querySelector('i').style.background));
  });
});
return {fills: [...fills].sort(), legend: legend.sort()};
"""
TEXTS = """
const q = s => Array.from(document.querySelectorAll(s)).filter(e => e.offsetParent !== null
  || e.tagName === 'SUMMARY').map(e => e.innerText).join('\\n');
return {legend: q('.gk-legend'), title: q('.gk-title'),
        search: (document.querySelector('.gk-search input') || {}).placeholder || ''};
"""
# a unit's tooltip and popup (built as the page builds them, by opening them)
UNIT_TEXTS = """
let unit = null;
window.gkMap.eachLayer(l => { if (!unit && l.feature && l.feature.properties.w) unit = l; });
if (!unit) return null;
unit.openTooltip(); const tip = unit.getTooltip().getElement().innerText;
unit.openPopup(); const pop = unit.getPopup().getElement().innerText;
unit.closePopup(); unit.closeTooltip();
return {tip: tip, pop: pop, w: unit.feature.properties.w};
"""


def _workspace(path: Path) -> Path:
    """1,200 units, 35 villages; workers on 90 %; a May of weekly patrols done fully,
    half or not at all by village; cases open, overdue, paused and closed."""
    rng = np.random.default_rng(7)
    u = synth.units(N, seed=3)
    a = synth.assignments(u, n_workers=20, seed=3)
    village = a["unit_id"].str[:12]
    share = village.map({v: (1.0, 0.5, 0.0)[i % 3] for i, v in enumerate(sorted(set(village)))})
    weeks = pd.to_datetime(["2026-05-05T02:00Z", "2026-05-12T02:00Z", "2026-05-19T02:00Z",
                            "2026-05-26T02:00Z"])  # fmt: skip
    rows = [(uid, wid, t) for uid, wid, s in zip(a["unit_id"], a["worker_id"], share, strict=True)
            for t in weeks[: round(4 * s)]]  # fmt: skip
    patrols = pd.DataFrame(rows, columns=["unit_id", "worker_id", "started_at"])
    patrols.insert(0, "patrol_id", [f"P{i:05d}" for i in range(len(patrols))])
    workers = pd.DataFrame({"worker_id": sorted(set(a["worker_id"]))})
    workers["name"] = [f"网格员{i:02d}" for i in range(len(workers))]
    workers["level"] = "village"
    r = synth.reports(u, 3_000, seed=3)
    v = r["unit_id"].str[:12]
    rank = {code: i for i, code in enumerate(sorted(set(v)))}
    r = r[(r.groupby(v).cumcount() < v.map(rank) % 4 * 20).to_numpy()]  # 0-60 by village
    now = pd.Timestamp.now(tz="UTC")
    r["status"] = rng.choice(["handling", "dispatched", "opened", "closed"], len(r))
    r["due_at"] = now + pd.to_timedelta(rng.integers(-96, 96, len(r)), unit="h")
    r["admin_code"] = r["unit_id"].str[:12]
    create_store(path, {"units": u, "assignments": a, "patrols": patrols, "workers": workers,
                        "reports": r})  # fmt: skip
    return path


@pytest.fixture(scope="module")
def served(browser, tmp_path_factory):
    ws = _workspace(tmp_path_factory.mktemp("view") / "ws.gpkg")
    key, _ = issue_key(open_store(ws), "browser", role="viewer")
    online(browser, True)  # loopback only: other names still resolve to nothing
    try:
        with live_server(ws) as url:
            browser.get(f"{url}/maps/view?key={key}")  # the cookie for /maps
            assert _wait(browser, DRAWN, 60)
            yield url
    finally:
        online(browser, False)


def online(browser, on: bool) -> None:
    browser.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": not on, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )


def _wait(browser, script: str, budget: float = 20.0):
    deadline = time.perf_counter() + budget
    while time.perf_counter() < deadline:
        got = browser.execute_script(script)
        if got:
            return got
        time.sleep(0.05)
    return None


def _open(browser, url: str, view: str, lang: str, width: int) -> dict:
    browser.get_log("browser")  # the shared browser's log of earlier pages: not ours
    browser.set_window_size(width, 900 if width > 600 else 844)
    browser.get(f"{url}/maps/view?view={view}&lang={lang}&period=2026-05")
    shown = _wait(browser, DRAWN)
    assert shown, (view, lang, width)
    return shown


def _street(browser) -> dict:
    """Zoom to street level (16) on a unit in the middle of the grid."""
    loads = browser.execute_script("return window.gkLoads")
    browser.execute_script("window.gkMap.setView([27.845, 113.145], 16, {animate: false});")
    shown = _wait(browser, f"return window.gkLoads > {loads} && window.gkShown;")
    assert shown and not shown["low"], shown
    return shown


def _shot(browser, name: str) -> None:
    time.sleep(0.3)  # let the canvas paint
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / name))
    if os.environ.get("GRIDKIT_UPDATE_DOCS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ARTIFACTS / name, DOCS / name)


def _agree(browser, view: str, part: str) -> set:
    c = browser.execute_script(COLOURS)
    fills, legend = set(c["fills"]), set(c["legend"])
    assert fills, (view, part)
    assert fills == legend, (view, part, "drawn not listed:", fills - legend,
                             "listed not drawn:", legend - fills)  # fmt: skip
    assert fills <= set(VIEWS[view][part].values()), (view, part, fills)  # the view's classes
    return fills


@pytest.mark.parametrize("width", [1400, 390])
@pytest.mark.parametrize("view", list(VIEWS))
def test_legend_and_map_agree_at_city_and_street_zoom(browser, served, view, width):
    city = _open(browser, served, view, "zh", width)
    assert city["low"] and city["n"] < N / 10  # villages, never all the units
    _agree(browser, view, "areas")
    _shot(browser, f"view_{view}_city_{width}.png")
    street = _street(browser)
    assert street["n"] < N / 5
    _agree(browser, view, "units")
    if width < 600:
        browser.execute_script("document.querySelector('.gk-legend').open = true")
    _shot(browser, f"view_{view}_street_{width}.png")
    assert not [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]


def test_each_view_draws_its_classes(browser, served):
    """The synthetic villages patrolled fully, half and not at all, and cases overdue
    and in time, give every view more than one class at each zoom."""
    for view in VIEWS:
        _open(browser, served, view, "zh", 1400)
        assert len(_agree(browser, view, "areas")) >= 2, view
        _street(browser)
        assert len(_agree(browser, view, "units")) >= 2, view


@pytest.mark.parametrize("view", list(VIEWS))
def test_visible_labels_are_in_the_page_language(browser, served, view):
    for lang in ("zh", "en"):
        _open(browser, served, view, lang, 1400)
        for zoom in ("city", "street"):
            if zoom == "street":
                _street(browser)
            texts = browser.execute_script(TEXTS)
            words = " ".join(texts.values())
            if lang == "zh":
                latin = re.findall(r"[A-Za-z]{3,}", words)
                assert not latin, (view, zoom, latin)
            else:
                assert not re.findall(r"[\u4e00-\u9fff]+", words), (view, zoom, texts)
                assert re.search(r"[A-Za-z]{3,}", texts["title"])


def test_people_in_popups_not_in_tooltips(browser, served):
    _open(browser, served, "cases", "zh", 1400)
    _street(browser)
    t = browser.execute_script(UNIT_TEXTS)
    assert t and t["w"].startswith("网格员")
    assert t["w"] in t["pop"] and t["w"] not in t["tip"]
    assert "未办结问题" in t["pop"]  # the view's numbers on click
    legend = browser.execute_script(TEXTS)["legend"]
    assert "网格员0" not in legend  # coloured by status, never by person


def test_area_numbers_on_click(browser, served):
    _open(browser, served, "compliance", "en", 1400)
    pop = browser.execute_script(
        "let a = null; window.gkMap.eachLayer(l => { if (!a && l.feature) a = l; });"
        "a.openPopup(); return a.getPopup().getElement().innerText;"
    )
    assert "Required" in pop and "Done" in pop and "Completion" in pop and "%" in pop
