"""Maps: ``/maps/view`` at 10^4, 10^5 and 10^6 units in headless Chromium (``--quick``:
2,000), side by side with ``GeoDataFrame.explore``'s page where it still runs (up to
10^5); then build time and HTML size of an offline coverage map, 1,000 / 5,000 / 20,000
units (``gridkit map``, one self-contained file).

Peer: ``GeoDataFrame.explore()`` on the same units, coloured by worker, with its
default tooltip (all columns) — the one-liner an analyst would use. It loads its
assets from CDNs and does not escape; gridkit inlines Leaflet (about 150 kB), escapes
every string, rounds coordinates and adds legend, popups and tooltips.

``figures`` records both HTML sizes and, when Debian's chromium is installed, the time
headless Chromium takes to load and draw gridkit's page (network off).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._runner import Case
from gridkit.maps import coverage_map, map_html
from gridkit.synth import maps as synth


def _setup(n: int):
    def setup():
        u = synth.units(n, seed=1)
        a = synth.assignments(u, n_workers=max(5, n // 12), seed=1)
        c = synth.compliance(a, seed=1)
        r = synth.reports(u, n // 5, seed=1)
        peer_units = u.merge(a, on="unit_id", how="left")
        return {"units": u, "assignments": a, "compliance": c, "reports": r, "peer": peer_units}

    return setup


def _ours(d) -> str:
    m = coverage_map(
        d["units"],
        assignments=d["assignments"],
        compliance=d["compliance"],
        reports=d["reports"],
        offline=True,
        tiles=None,
    )
    return map_html(m)


def _peer(d) -> str:
    m = d["peer"].explore(column="worker_id", tiles=None, legend=False)
    return m.get_root().render()


def _check(ours: str, peer: str) -> dict | None:
    if "L.map(" not in ours:
        return {"error": "no Leaflet map in gridkit's page"}
    return None


def _render_seconds(page: str) -> float | None:
    """Load-to-drawn time in headless Chromium, or None without a browser."""
    if not Path("/usr/bin/chromium").exists() or not Path("/usr/bin/chromedriver").exists():
        return None
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None
    tmp = Path(tempfile.mkdtemp(prefix="gridkit-bench-maps-"))
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={tmp / 'profile'}",
    ):  # fmt: skip
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        path = tmp / "map.html"
        path.write_text(page, encoding="utf-8")
        t0 = time.perf_counter()
        driver.get(path.as_uri())  # returns after the load event: scripts have run
        driver.execute_script(
            "return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
        )
        return time.perf_counter() - t0
    finally:
        driver.quit()
        shutil.rmtree(tmp, ignore_errors=True)


def _figures(data, ours: str) -> dict:
    peer = _peer(data)
    out = {
        "html_mb": round(len(ours.encode("utf-8")) / 2**20, 3),
        "peer_html_mb": round(len(peer.encode("utf-8")) / 2**20, 3),
        "units": len(data["units"]),
    }
    out["chromium_render_s"] = _render_seconds(ours)
    return out


def cases(quick: bool) -> list[Case]:
    sizes = [1_000] if quick else [1_000, 5_000, 20_000]
    return view_cases(quick) + [
        Case(
            name=f"coverage_map {n:,} units (offline)",
            setup=_setup(n),
            ours=_ours,
            peer=_peer,
            peer_name="GeoDataFrame.explore",
            size={"units": n},
            check=_check,
            extra=_figures,
        )
        for n in sizes
    ]


# ---------------------------------------------------------------- any size, in a browser
#
# gridkit's /maps/view (served by `gridkit serve`, units per viewport) against the one-file
# page of GeoDataFrame.explore (its Leaflet inlined from the same local packages: the
# browser has no internet), in headless Chromium with precise memory figures. Measured per
# size: the page's own bytes and the bytes transferred before the map is drawn, the time
# to the drawn map (and Chromium's first contentful paint), the time to show a unit after
# a jump to a far corner at street zoom, the JS heap (after a forced GC) and the number of
# features the browser holds; for gridkit also the server's index build time and peak RSS.

VIEW_SIZES_QUICK = (2_000,)
VIEW_SIZES = (10_000, 100_000, 1_000_000)
EXPLORE_MAX = 100_000  # explore's one-file page beyond this is not tried (10^6: ~500 MB)
DRAWN = "return window.gkLoads >= 1 && window.gkShown ? window.gkShown : null;"
EXPLORE_DRAWN = (
    "const k = Object.keys(window).find(k => { try { return window[k] instanceof L.Map; }"
    " catch (e) { return false; } }); if (!k) return null; let n = 0;"
    " window[k].eachLayer(l => { if (l.feature) n++; }); return n > 0 ? n : null;"
)
RESOURCES = """
const nav = performance.getEntriesByType('navigation')[0] || {};
const res = performance.getEntriesByType('resource');
const fcp = performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint');
return {bytes: (nav.transferSize || nav.encodedBodySize || 0)
               + res.reduce((s, r) => s + (r.transferSize || r.encodedBodySize || 0), 0),
        page: nav.encodedBodySize || nav.transferSize || 0,
        fcp_s: fcp ? fcp.startTime / 1000 : null,
        heap: performance.memory ? performance.memory.usedJSHeapSize : null};
"""


def _browser(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--enable-precise-memory-info", "--js-flags=--expose-gc", "--window-size=1400,900",
        f"--user-data-dir={profile}",
    ):  # fmt: skip
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(300)
    driver.set_script_timeout(300)
    driver.set_window_size(1400, 900)
    return driver


def _wait(driver, script: str, budget: float = 120.0):
    deadline = time.perf_counter() + budget
    while time.perf_counter() < deadline:
        got = driver.execute_script(script)
        if got:
            return got
        time.sleep(0.02)
    return None


def _heap(driver) -> int | None:
    driver.execute_script("if (window.gc) { window.gc(); }")
    return driver.execute_script(
        "return performance.memory ? performance.memory.usedJSHeapSize : null"
    )


def _rss_peak_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _view_setup(n: int):
    def setup():
        from gridkit.store import create_store, issue_key
        from tests.api.live import free_port, start

        tmp = Path(tempfile.mkdtemp(prefix="gridkit-bench-view-"))
        t = time.perf_counter()
        u = synth.units(n, seed=1)
        a = synth.assignments(u, n_workers=max(1, n // 60), seed=1)
        r = synth.reports(u, max(100, n // 20), seed=1)  # for the cases view
        hours = np.random.default_rng(1).integers(-72, 72, len(r))
        r["due_at"] = pd.Timestamp.now(tz="UTC") + pd.to_timedelta(hours, unit="h")
        store = create_store(tmp / "ws.gpkg", {"units": u, "assignments": a, "reports": r})
        key, _ = issue_key(store, "bench", role="viewer")
        made = time.perf_counter() - t
        proc = start(tmp / "ws.gpkg", free_port(), "--no-access-log")
        url = proc.args[proc.args.index("--port") + 1]
        url = f"http://127.0.0.1:{url}"
        driver = _browser(tmp / "profile")
        t = time.perf_counter()
        driver.get(f"{url}/maps/view?key={key}")  # the cookie, then the index is built
        _wait(driver, DRAWN, 900)
        build = time.perf_counter() - t
        t = time.perf_counter()
        driver.get(f"{url}/maps/view?view=cases")  # the cases view's first build
        _wait(driver, DRAWN, 900)
        cases_first = time.perf_counter() - t
        explore = None
        if n <= EXPLORE_MAX:
            from gridkit.maps.assets import apply_assets

            t = time.perf_counter()
            m = u.explore()
            apply_assets(m, offline=True, cluster=False)  # its CDN scripts cannot load offline
            explore = tmp / "explore.html"
            m.save(str(explore))
            explore_build = time.perf_counter() - t
        corner = (float(u.total_bounds[3] - 0.001), float(u.total_bounds[2] - 0.001))
        return {"n": n, "tmp": tmp, "proc": proc, "url": url, "driver": driver,
                "corner": corner, "workspace_s": made, "index_first_s": build,
                "cases_first_s": cases_first,
                "explore": explore, "explore_build_s": explore_build if explore else None,
                "last": {}}  # fmt: skip

    return setup


def _view_ours(d) -> dict:
    """One fresh load of /maps/view (no browser cache), then a jump to a far corner."""
    driver = d["driver"]
    driver.execute_cdp_cmd("Network.clearBrowserCache", {})
    driver.get("about:blank")
    t0 = time.perf_counter()
    driver.get(f"{d['url']}/maps/view")
    shown = _wait(driver, DRAWN)
    first = time.perf_counter() - t0
    res = driver.execute_script(RESOURCES)
    heap_first = _heap(driver)
    loads = driver.execute_script("return window.gkLoads")
    t1 = time.perf_counter()
    driver.execute_script(
        "window.gkMap.setView([arguments[0], arguments[1]], 17, {animate: false});", *d["corner"]
    )
    _wait(driver, f"return window.gkLoads > {loads} && !window.gkShown.low;")
    jump = time.perf_counter() - t1
    d["last"] = {
        "page_bytes": res["page"], "bytes_before_drawn": res["bytes"], "drawn_s": round(first, 3),
        "fcp_s": res["fcp_s"], "jump_s": round(jump, 3), "heap_mb": _mb(heap_first),
        "heap_after_jump_mb": _mb(_heap(driver)), "first_view": shown,
        "held_after_jump": driver.execute_script("return window.gkShown.n"),
        "holds_all": driver.execute_script("return window.gkShown.n") >= d["n"] / 10,
    }  # fmt: skip
    t2 = time.perf_counter()
    driver.get(f"{d['url']}/maps/view?view=cases")  # another view, kept by the server
    cases = _wait(driver, DRAWN)
    d["last"]["cases_drawn_s"] = round(time.perf_counter() - t2, 3)
    d["last"]["cases_first_view"] = cases
    return d["last"]


def _mb(v) -> float | None:
    return None if v is None else round(v / 2**20, 2)


def _view_peer(d) -> dict | None:
    """explore's page loaded and drawn (every unit in the page)."""
    if d["explore"] is None:
        return None
    driver = d["driver"]
    driver.get("about:blank")
    t0 = time.perf_counter()
    driver.get(d["explore"].as_uri())
    held = _wait(driver, EXPLORE_DRAWN, 300)
    first = time.perf_counter() - t0
    res = driver.execute_script(RESOURCES)
    size = d["explore"].stat().st_size
    d["peer_last"] = {
        "page_bytes": size, "bytes_before_drawn": size,
        "drawn_s": round(first, 3), "fcp_s": res["fcp_s"], "jump_s": None,
        "heap_mb": _mb(_heap(driver)), "held": held, "build_s": round(d["explore_build_s"], 1),
    }  # fmt: skip
    return d["peer_last"]


def _view_figures(d, ours) -> dict:
    """The last run's figures (ours and explore's), the server's build time and peak RSS;
    then the server and the browser are stopped."""
    try:
        return {
            "units": d["n"], "gridkit": d["last"], "explore": d.get("peer_last"),
            "index_first_view_s": round(d["index_first_s"], 2),
            "cases_view_first_s": round(d["cases_first_s"], 2),
            "server_peak_rss_mb": _rss_peak_mb(d["proc"].pid),
            "workspace_made_s": round(d["workspace_s"], 1),
        }  # fmt: skip
    finally:
        d["driver"].quit()
        d["proc"].kill()
        d["proc"].wait(10)
        shutil.rmtree(d["tmp"], ignore_errors=True)


def _view_check(ours: dict, peer: dict | None) -> dict | None:
    """The browser never holds all units: at most a tenth of them after a jump."""
    if not ours.get("first_view") or ours.get("held_after_jump") is None:
        return {"error": "the map was not drawn", **ours}
    if ours["holds_all"]:
        return {"error": "the browser holds a tenth of the units or more", **ours}
    return None


def view_cases(quick: bool) -> list[Case]:
    """The browser cases (skipped without Debian's chromium and chromedriver)."""
    if not Path("/usr/bin/chromium").exists() or not Path("/usr/bin/chromedriver").exists():
        return []
    return [
        Case(
            name=f"/maps/view {n:,} units in Chromium (first draw, jump)",
            setup=_view_setup(n),
            ours=_view_ours,
            peer=_view_peer if n <= EXPLORE_MAX else None,
            peer_name="GeoDataFrame.explore page",
            size={"units": n},
            check=_view_check,
            repeat=1 if n >= 1_000_000 else 3,
            extra=_view_figures,
            trace_peer=False,
        )
        for n in (VIEW_SIZES_QUICK if quick else VIEW_SIZES)
    ]
