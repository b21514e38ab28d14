"""Headless Chromium for map tests (Debian ``chromium`` + ``chromium-driver``, PyPI ``selenium``).

The browser runs with the network cut: every host name resolves to nothing, and the
DevTools protocol puts the page offline. Every request the page makes is recorded
(``requests`` of :func:`open_map`), as are console messages.

Screenshots go to ``tests/browser/artifacts/`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).parent / "artifacts"

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # loopback: the API tests
    "--window-size=1200,800",
)


def _skip_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} missing: apt-get install chromium chromium-driver fonts-noto-cjk"
    if not CHROMEDRIVER.exists():
        return f"{CHROMEDRIVER} missing: apt-get install chromium-driver"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed: pip install selenium"
    return None


@pytest.fixture(scope="session")
def browser():
    reason = _skip_reason()
    if reason:
        if os.environ.get("CI"):  # CI installs Chromium: a missing browser is a failure there
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="gridkit-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # an explicit driver path: Selenium Manager must not try to download one
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# JS: the page's Leaflet map (folium names it map_<hash>) and what it draws
FIND_MAP = """
const maps = Object.keys(window).filter(k => {
    try { return window[k] instanceof L.Map; } catch (e) { return false; } });
return maps;
"""

COUNT_LAYERS = """
const map = window[arguments[0]];
let polygons = 0, points = 0, groups = 0, clusters = 0;
map.eachLayer(l => {
    if (l.feature && l.feature.geometry) {
        if (l.feature.geometry.type.endsWith('Polygon')) polygons++; else points++;
    } else if (l instanceof L.GeoJSON) { groups++; }
    if (L.MarkerClusterGroup && l instanceof L.MarkerClusterGroup) clusters++;
});
return {polygons, points, groups, clusters,
        svgPaths: document.querySelectorAll('.leaflet-overlay-pane svg path').length,
        canvases: document.querySelectorAll('.leaflet-overlay-pane canvas').length,
        zoom: map.getZoom(),
        scaleBars: document.querySelectorAll('.leaflet-control-scale').length,
        layerControls: document.querySelectorAll('.leaflet-control-layers').length,
        legends: document.querySelectorAll('.gk-legend').length,
        title: (document.querySelector('.gk-title') || {}).textContent || null};
"""


def open_map(driver, path: Path, *, screenshot: str | None = None) -> dict:
    """Load a saved map page; return map name, counts, console errors and requests."""
    driver.get_log("browser")  # drop earlier messages
    driver.get_log("performance")
    driver.get(path.as_uri())
    deadline = time.time() + 20
    names: list[str] = []
    while time.time() < deadline:
        if driver.execute_script("return typeof L !== 'undefined'"):
            names = driver.execute_script(FIND_MAP)
            if names:
                break
        time.sleep(0.1)
    time.sleep(0.5)  # let Leaflet finish drawing
    info = {"maps": names}
    if names:
        info.update(driver.execute_script(COUNT_LAYERS, names[0]))
    info["console"] = driver.get_log("browser")
    info["errors"] = [e for e in info["console"] if e.get("level") == "SEVERE"]
    requests = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            requests.append(msg["params"]["request"]["url"])
    info["requests"] = requests
    if screenshot:
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / screenshot))
    return info
