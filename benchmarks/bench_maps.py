"""Maps: build time and HTML size of an offline coverage map, 1,000 / 5,000 / 20,000 units.

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
    return [
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
