"""The field app (/app): shell size compressed and first paint on a throttled phone.

Issue 23 sets the budgets: the app shell under 150 kB compressed, first paint under
1.5 s on Lighthouse's "slow 4G" profile in Chromium. Peer: none (no other field app
is served by these tools); the figures are checked against the budgets instead.

- ``shell gzip``: each file of the shell as a proxy sends it (gzip level 6), the shell
  (HTML, JS, CSS, manifest, icon, service worker) and Leaflet (loaded only when the
  report screen opens its small map) counted apart.
- ``first paint``: a cold phone (no cache, no service worker; 360x740, DevTools
  throttling 562.5 ms latency, 1.47 Mbit/s down) opening ``/app/`` from ``gridkit
  serve``: first paint and first contentful paint from the browser's own timing, the
  median of three loads; then the same page offline from the service worker. Needs
  Debian's chromium and selenium; skipped in ``--quick``.
"""

from __future__ import annotations

import gzip
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._runner import Case

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "api" / "static" / "app"
SHELL = ["index.html", "app.js", "app.css", "manifest.webmanifest", "icon.svg", "sw.js"]
SHELL_BUDGET_KB = 150
PAINT_BUDGET_S = 1.5
SLOW_4G = {
    "offline": False,
    "latency": 562.5,
    "downloadThroughput": 1474.56 * 1024 / 8,
    "uploadThroughput": 675 * 1024 / 8,
}
PHONE = {"deviceMetrics": {"width": 360, "height": 740, "pixelRatio": 2.0, "touch": True}}


def _files() -> dict[str, bytes]:
    from gridkit.maps import offline_assets  # the maps extra: Leaflet from XStatic

    out = {name: (STATIC / name).read_bytes() for name in SHELL}
    assets = offline_assets(cluster=False)
    for name in ("leaflet.js", "leaflet.css"):
        out[name] = assets[name].read_bytes()
    return out


def _gzip(files: dict[str, bytes]) -> dict[str, int]:
    return {name: len(gzip.compress(data, compresslevel=6)) for name, data in files.items()}


def _sizes(files: dict[str, bytes], packed: dict[str, int]) -> dict:
    shell = sum(packed[n] for n in SHELL)
    leaflet = packed["leaflet.js"] + packed["leaflet.css"]
    return {
        "files_gzip_bytes": packed,
        "files_raw_bytes": {n: len(d) for n, d in files.items()},
        "shell_gzip_kb": round(shell / 1024, 1),
        "leaflet_gzip_kb": round(leaflet / 1024, 1),
        "with_leaflet_gzip_kb": round((shell + leaflet) / 1024, 1),
        "budget_kb": SHELL_BUDGET_KB,
        "within_budget": (shell + leaflet) / 1024 <= SHELL_BUDGET_KB,
    }


# ------------------------------------------------------------------------ first paint


def _browser_ready() -> bool:
    if not Path("/usr/bin/chromium").exists() or not Path("/usr/bin/chromedriver").exists():
        return False
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return True


def _workspace(tmp: Path) -> Path:
    from gridkit.io import write_layer
    from gridkit.synth import maps as synth

    ws = tmp / "ws.gpkg"
    write_layer(synth.units(50, seed=1), ws, "units")
    return ws


def _serve(ws: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridkit.cli", "serve", str(ws), "--port", str(port),
         "--no-access-log"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("gridkit serve did not start within 30 s")


def _phone(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={profile}",
    ):  # fmt: skip
        opts.add_argument(flag)
    opts.add_experimental_option("mobileEmulation", PHONE)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": False})
    return driver


PAINTS = """
const p = Object.fromEntries(performance.getEntriesByType('paint').map(e => [e.name, e.startTime]));
const nav = performance.getEntriesByType('navigation')[0];
return {fp: p['first-paint'] ?? null, fcp: p['first-contentful-paint'] ?? null,
        bytes: nav ? nav.transferSize : null,
        form: !!document.getElementById('key')};
"""


def _load(driver, url: str) -> dict:
    driver.get(url)  # returns after the load event
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        got = driver.execute_script(PAINTS)
        if got["fcp"] is not None and got["form"]:
            return got
        time.sleep(0.05)
    raise RuntimeError(f"no first contentful paint of {url}")


def _first_paint(data: dict) -> dict:
    """Three cold loads under slow 4G (a new profile each), then one warm load offline
    from the service worker."""
    cold = []
    for _ in range(3):
        profile = Path(tempfile.mkdtemp(prefix="gridkit-bench-app-"))
        driver = _phone(profile)
        try:
            driver.execute_cdp_cmd("Network.emulateNetworkConditions", SLOW_4G)
            cold.append(_load(driver, f"{data['url']}/app/"))
            if len(cold) == 3:  # the last phone: installed, then offline
                driver.execute_script(
                    "return navigator.serviceWorker.ready.then(() => new Promise(r => "
                    "setTimeout(r, 300)))"
                )
                driver.execute_cdp_cmd(
                    "Network.emulateNetworkConditions", {**SLOW_4G, "offline": True}
                )
                data["offline"] = _load(driver, f"{data['url']}/app/")
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)
    return {"cold": cold}


def _paint_figures(data: dict, result: dict) -> dict:
    fcp = sorted(r["fcp"] for r in result["cold"])[1] / 1000
    fp = sorted(r["fp"] or r["fcp"] for r in result["cold"])[1] / 1000
    offline = data.get("offline") or {}
    return {
        "profile": "slow 4G (DevTools: 562.5 ms, 1.47 Mbit/s down, 0.66 Mbit/s up), 360x740",
        "first_paint_s": round(fp, 3),
        "first_contentful_paint_s": round(fcp, 3),
        "html_transfer_bytes": result["cold"][1]["bytes"],
        "offline_first_contentful_paint_s": (
            None if offline.get("fcp") is None else round(offline["fcp"] / 1000, 3)
        ),
        "budget_s": PAINT_BUDGET_S,
        "within_budget": fcp <= PAINT_BUDGET_S,
    }


def _paint_setup() -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="gridkit-bench-app-ws-"))
    proc, url = _serve(_workspace(tmp))
    return {"proc": proc, "url": url, "tmp": tmp}


def cases(quick: bool) -> list[Case]:
    out = [
        Case(
            name="field app shell, gzip",
            setup=_files,
            ours=_gzip,
            size={"files": len(SHELL) + 2},
            extra=_sizes,
            repeat=1,
        )
    ]
    if not quick and _browser_ready():
        out.append(
            Case(
                name="field app first paint, slow 4G",
                setup=_paint_setup,
                ours=_first_paint,
                size={"loads": 3},
                extra=_stop_after(_paint_figures),
                repeat=1,
            )
        )
    return out


def _stop_after(figures):
    """The figures, then the server stopped (the runner has no teardown)."""

    def extra(data: dict, result: dict) -> dict:
        try:
            return figures(data, result)
        finally:
            data["proc"].kill()
            data["proc"].wait(10)
            shutil.rmtree(data["tmp"], ignore_errors=True)

    return extra
