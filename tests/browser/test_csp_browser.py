"""Map pages served by the API under its Content-Security-Policy, in headless Chromium
with no internet: they still draw, and the browser reports no CSP violation."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.api.live import live_server
from tests.api.test_writes import field_workspace
from tests.browser.conftest import COUNT_LAYERS, FIND_MAP

pytestmark = pytest.mark.browser

ONLINE = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}


@pytest.mark.parametrize("page", ["coverage", "hotspots"])
def test_map_pages_draw_under_the_csp(browser, tmp_path, page):
    ws, keys = field_workspace(tmp_path / "ws.gpkg")
    # loopback only: names resolve to nothing (the browser fixture's rules)
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", ONLINE)
    try:
        with live_server(ws) as url:
            r = httpx.get(f"{url}/maps/{page}", headers={"X-API-Key": keys["sup"]})
            assert "script-src 'self' 'unsafe-inline'" in r.headers["content-security-policy"]
            browser.get_log("browser")
            browser.get(f"{url}/maps/{page}?key={keys['sup']}")  # the cookie, then the page
            deadline = time.time() + 20
            names = []
            while time.time() < deadline and not names:
                if browser.execute_script("return typeof L !== 'undefined'"):
                    names = browser.execute_script(FIND_MAP)
                time.sleep(0.2)
            time.sleep(0.5)
            drawn = browser.execute_script(COUNT_LAYERS, names[0]) if names else {}
            console = browser.get_log("browser")
    finally:
        browser.execute_cdp_cmd("Network.emulateNetworkConditions", {**ONLINE, "offline": True})
    assert names, console
    assert drawn["polygons"] == 50, drawn
    blocked = [m for m in console if "Content Security Policy" in m.get("message", "")]
    assert not blocked, blocked
    severe = [m for m in console if m.get("level") == "SEVERE" and "favicon" not in m["message"]]
    assert not severe, console
