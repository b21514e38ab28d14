"""Offline maps in headless Chromium with the network cut: drawn, no errors, no scripts run."""

from __future__ import annotations

import shutil
import time

import pandas as pd
import pytest

from gridkit.maps import coverage_map, diff_map, hotspot_map, map_html, offline_assets
from gridkit.synth import maps as synth
from tests.browser.conftest import COUNT_LAYERS, open_map

pytestmark = pytest.mark.browser

# each payload sets a global flag (or opens an alert) if the browser ever runs it
PAYLOADS = (
    "<img src=x onerror=\"window.__xss='img'\">",
    "<script>window.__xss='script'</script>",
    '"><svg onload="window.__xss=\'svg\'">',
    "<img src=y onerror=alert(1)>",
)

# hover and click every feature as a user would: tooltips and popups open one by one
OPEN_ALL = """
const map = window[arguments[0]];
const feats = [];
map.eachLayer(l => { if (l.feature) feats.push(l); });
let tooltips = 0, popups = 0, texts = [];
for (const l of feats) {
    const ll = l.getLatLng ? l.getLatLng() : l.getBounds().getCenter();
    l.fire('mouseover', {latlng: ll}, true);
    if (document.querySelector('.leaflet-tooltip')) {
        tooltips++; texts.push(document.querySelector('.leaflet-tooltip').textContent);
    }
    l.fire('mouseout', {latlng: ll}, true);
    l.fire('click', {latlng: ll}, true);
    const pop = document.querySelector('.leaflet-popup-content');
    if (pop) { popups++; texts.push(pop.textContent); }
    map.closePopup();
}
return {features: feats.length, tooltips, popups, texts, xss: window.__xss || null};
"""


def _save(m, tmp_path, name):
    path = tmp_path / f"{name}.html"
    path.write_text(map_html(m), encoding="utf-8")
    return path


def _assert_clean(info):
    assert info["maps"], "no Leaflet map on the page"
    assert not info["errors"], info["errors"]
    remote = [u for u in info["requests"] if not u.startswith(("file:", "data:"))]
    assert not remote, remote


def test_offline_coverage_map_draws_every_unit(browser, tmp_path):
    u = synth.units(144)
    a = synth.assignments(u, n_workers=9)
    r = synth.reports(u, 60)
    m = coverage_map(u, assignments=a, reports=r, offline=True, tiles=None, period="2026年3月")
    info = open_map(browser, _save(m, tmp_path, "coverage"), screenshot="coverage_offline.png")
    _assert_clean(info)
    assert info["polygons"] == len(u)
    assert info["svgPaths"] >= len(u)
    assert info["scaleBars"] == 1 and info["layerControls"] == 1 and info["legends"] == 1
    assert "网格覆盖" in info["title"] and "2026年3月" in info["title"]
    assert info["zoom"] >= 13  # fitted to the data, not the world


def test_offline_canvas_map_counts_layers(browser, tmp_path):
    u = synth.units(2500)
    a = synth.assignments(u, n_workers=100)
    m = coverage_map(u, assignments=a, compliance=synth.compliance(a), offline=True, tiles=None)
    info = open_map(browser, _save(m, tmp_path, "canvas"), screenshot="coverage_canvas.png")
    _assert_clean(info)
    assert info["canvases"] >= 1 and info["svgPaths"] == 0
    # fitted to 2,500 units, the page shows their 50 villages; zoomed in, the units
    assert info["polygons"] == u["admin_code"].nunique() == 50
    browser.execute_script("window[arguments[0]].setZoom(16, {animate: false})", info["maps"][0])
    time.sleep(0.5)
    zoomed = browser.execute_script(COUNT_LAYERS, info["maps"][0])
    assert zoomed["polygons"] == len(u) and zoomed["canvases"] >= 1


def test_offline_hotspot_map_with_clusters(browser, tmp_path):
    u = synth.units(100)
    r = synth.reports(u, 300)
    m = hotspot_map(synth.hotspot_units(u), reports=r, offline=True, tiles=None, lang="en")
    info = open_map(browser, _save(m, tmp_path, "hotspots"), screenshot="hotspots_offline.png")
    _assert_clean(info)
    assert info["polygons"] == len(u)
    assert info["clusters"] == r["category"].nunique()


def test_offline_diff_map(browser, tmp_path):
    old, new = synth.units(50), synth.units(60)
    lineage = pd.DataFrame(
        {
            "old_id": list(old["unit_id"]) + [None] * 10,
            "new_id": list(new["unit_id"].iloc[:50]) + list(new["unit_id"].iloc[50:]),
            "relation": ["unchanged"] * 50 + ["added"] * 10,
            "share": 1.0,
        }
    )
    info = open_map(
        browser, _save(diff_map(old, new, lineage, offline=True, tiles=None), tmp_path, "diff")
    )
    _assert_clean(info)
    assert info["polygons"] == len(new)  # the old version's layer starts hidden


def test_assets_served_from_a_local_base_url(browser, tmp_path):
    static = tmp_path / "static"
    for rel, src in offline_assets().items():
        (static / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, static / rel)
    u = synth.units(30)
    m = coverage_map(u, offline=True, tiles=None, asset_base_url=static.as_uri())
    info = open_map(browser, _save(m, tmp_path, "served"))
    _assert_clean(info)
    assert info["polygons"] == len(u)


def _payload_maps():
    u = synth.units(36)
    u.loc[0, "unit_id"] = PAYLOADS[0]
    u.loc[1, "unit_id"] = PAYLOADS[3]
    a = pd.DataFrame({"unit_id": u["unit_id"].iloc[:20], "worker_id": PAYLOADS[1]})
    workers = pd.DataFrame({"worker_id": [PAYLOADS[1]], "name": [PAYLOADS[2]]})
    r = synth.reports(u, 24)
    r["description"] = [PAYLOADS[i % 4] for i in range(len(r))]
    r["category"] = [PAYLOADS[i % 2] for i in range(len(r))]
    r["report_id"] = [PAYLOADS[3]] * len(r)
    r["status"] = "reported"
    kw = dict(offline=True, tiles=None, title=PAYLOADS[1], period=PAYLOADS[0])
    hot = synth.hotspot_units(u)
    return {
        "coverage": coverage_map(u, assignments=a, workers=workers, reports=r, **kw),
        "recency": coverage_map(u, compliance=synth.compliance(a), reports=r, **kw),
        "hotspots": hotspot_map(hot, reports=r, cluster=False, **kw),
    }


@pytest.mark.parametrize("kind", ["coverage", "recency", "hotspots"])
def test_payloads_never_run(browser, tmp_path, kind):
    m = _payload_maps()[kind]
    info = open_map(browser, _save(m, tmp_path, f"xss_{kind}"), screenshot=f"xss_{kind}.png")
    _assert_clean(info)
    # an alert() would make the next command fail with UnexpectedAlertPresentException
    res = browser.execute_script(OPEN_ALL, info["maps"][0])
    assert res["xss"] is None
    assert res["tooltips"] == res["features"]
    # hotspot units have tooltips only; their 24 report points have popups too
    assert res["popups"] == (24 if kind == "hotspots" else res["features"])
    shown = "\n".join(res["texts"])
    assert "<img src=x onerror" in shown  # displayed as text, not parsed as HTML
    assert browser.execute_script("return window.__xss || null") is None
    assert (
        browser.execute_script("return document.querySelectorAll('.leaflet-pane img').length") == 0
    )
    legend_and_controls = browser.execute_script(
        "return document.querySelector('.gk-legend').textContent + "
        "document.querySelector('.leaflet-control-layers').textContent + "
        "document.querySelector('.gk-title').textContent"
    )
    assert "<script>" in legend_and_controls or kind == "recency"
    assert "<img src=x" in legend_and_controls


def test_harness_catches_an_unescaped_payload(browser, tmp_path):
    """Negative control: raw folium (no escaping) lets the payload run in this harness."""
    import folium

    from gridkit.maps.assets import apply_assets

    u = synth.units(4)
    u["tip"] = PAYLOADS[0]
    m = folium.Map(tiles=None)
    folium.GeoJson(u[["tip", "geometry"]], tooltip=folium.GeoJsonTooltip(["tip"])).add_to(m)
    m.fit_bounds([[27.8, 113.1], [27.81, 113.11]])
    apply_assets(m, offline=True, cluster=False)
    info = open_map(browser, _save(m, tmp_path, "raw"))
    res = browser.execute_script(OPEN_ALL, info["maps"][0])
    browser.execute_script("return 1")  # let the image error event fire
    assert browser.execute_script("return window.__xss || null") == "img"
    assert res["features"] == 4
