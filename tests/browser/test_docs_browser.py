"""The API docs page (Swagger UI) in headless Chromium with no internet: it draws."""

from __future__ import annotations

import json
import time

from tests.api.live import live_server
from tests.api.test_writes import field_workspace


def test_api_docs_page_draws_offline(browser, tmp_path):
    ws, _ = field_workspace(tmp_path / "ws.gpkg")
    # loopback only: names resolve to nothing (the browser fixture's rules), so a CDN
    # cannot be reached; the offline emulation is lifted for the server on 127.0.0.1
    browser.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    try:
        with live_server(ws) as url:
            browser.get_log("performance")
            browser.get(f"{url}/docs")
            deadline = time.time() + 20
            drawn = {}
            while time.time() < deadline:
                drawn = browser.execute_script(
                    "return {title: (document.querySelector('.swagger-ui .info .title') || {})"
                    ".textContent || null, authorize: document.querySelectorAll("
                    "'.swagger-ui .btn.authorize').length, operations: "
                    "document.querySelectorAll('.swagger-ui .opblock').length};"
                )
                if drawn["title"] and drawn["operations"]:
                    break
                time.sleep(0.2)
            requests = [
                json.loads(e["message"])["message"]["params"]["request"]["url"]
                for e in browser.get_log("performance")
                if json.loads(e["message"])["message"].get("method") == "Network.requestWillBeSent"
            ]
    finally:
        browser.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
    assert drawn["title"] and "gridkit" in drawn["title"], drawn
    assert drawn["authorize"] == 1 and drawn["operations"] >= 15, drawn
    outside = [r for r in requests if not r.startswith((url, "data:"))]
    assert not outside, outside
