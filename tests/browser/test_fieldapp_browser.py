"""The field app (issue 23) in headless Chromium as a phone: 360x740, touch, GPS
overridden, the network throttled to Lighthouse's "slow 4G" and cut. Reports with
photos and patrols are made offline, the browser is closed and opened again, and once
the connection returns exactly one of each arrives. One run is over HTTPS with a
self-signed certificate.

Screenshots go to ``tests/browser/artifacts/``; with ``GRIDKIT_DOCS_SCREENSHOTS=1``
also to ``docs/field-app/`` (the ones the docs show).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pandas as pd
import pytest

from gridkit.io import write_layer
from gridkit.store import issue_key, open_store
from tests.api.live import free_port, start
from tests.api.test_writes import INSIDE, field_workspace
from tests.browser.conftest import ARTIFACTS, CHROMEDRIVER, CHROMIUM, FLAGS, _skip_reason

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

DOCS = Path(__file__).parents[2] / "docs" / "field-app"
#: Lighthouse's "slow 4G" as DevTools applies it (150 ms RTT x 3.75, 1.6 Mbit/s x 0.9 down,
#: 750 kbit/s x 0.9 up)
SLOW_4G = {
    "offline": False,
    "latency": 562.5,
    "downloadThroughput": 1474.56 * 1024 / 8,
    "uploadThroughput": 675 * 1024 / 8,
}
OFFLINE = {**SLOW_4G, "offline": True}
PHONE = {
    "deviceMetrics": {"width": 360, "height": 740, "pixelRatio": 2.0, "touch": True},
    "userAgent": "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
}
#: inside W2's unit (430203001001-001) of the field workspace
W2_AT = (113.014, 27.704)
#: a name that is not localhost, for the plain-HTTP warning (resolved to loopback)
LAN_NAME = "grid.lan"


#: seconds the whole module may take (GRIDKIT_BROWSER_BUDGET_S to change)
BUDGET_S = float(os.environ.get("GRIDKIT_BROWSER_BUDGET_S", "90"))


@pytest.fixture(scope="module", autouse=True)
def budget():
    """The module within its time budget: a slower run fails here, not in CI's timeout."""
    t0 = time.monotonic()
    yield
    took = time.monotonic() - t0
    assert took <= BUDGET_S, f"the field app's browser tests took {took:.0f} s (> {BUDGET_S:.0f})"


@pytest.fixture(scope="module")
def phone():
    reason = _skip_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="gridkit-phone-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        if flag.startswith("--host-resolver-rules"):
            flag = f"--host-resolver-rules=MAP {LAN_NAME} 127.0.0.1, {flag.split('=', 1)[1]}"
        if not flag.startswith("--window-size"):
            opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument("--ignore-certificate-errors")  # the HTTPS run's self-signed certificate
    opts.add_argument("--lang=zh-CN")
    opts.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    opts.add_experimental_option("mobileEmulation", PHONE)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    driver.execute_cdp_cmd("Network.enable", {})
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# ---------------------------------------------------------------------------- helpers


def net(d, conditions: dict) -> None:
    d.execute_cdp_cmd("Network.emulateNetworkConditions", conditions)


class Cable:
    """A TCP relay between the phone and the server that can be unplugged: while cut,
    open connections are dropped and new ones refused, as when a phone loses its
    signal (DevTools' offline mode tells the page it is offline, but a request made as
    a page starts may still slip through it)."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.cut = False
        self.sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if self.cut:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def unplug(self) -> None:
        self.cut = True
        for s in self.sockets:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self.sockets = []

    def plug(self) -> None:
        self.cut = False

    def close(self) -> None:
        self.unplug()
        self.listener.close()


@contextmanager
def cut(d, cable: Cable):
    """No network while inside: the page is offline and the server out of reach."""
    net(d, OFFLINE)
    cable.unplug()
    try:
        yield
    finally:
        cable.plug()
        net(d, SLOW_4G)  # the 'online' event: the app sends its queue


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One workspace and server for the module, reached through a :class:`Cable`."""
    ws, keys = field_workspace(tmp_path_factory.mktemp("fieldapp") / "ws.gpkg")
    # W2 is also the village chief of a river section: his patrols have the checklist
    chiefs = {"chief_id": ["RC2"], "worker_id": ["W2"], "level": ["village"]}
    write_layer(pd.DataFrame({**chiefs, "river_id": ["R1"], "admin_code": ["430203001001"]}),
                ws, "river_chiefs")  # fmt: skip
    # W7 is on the staff of department D1 (荷塘区城管局): accepts and reports back its cases
    staff = {"worker_id": ["W7"], "post": ["department"], "admin_code": ["430202"]}
    write_layer(pd.DataFrame({**staff, "department_id": ["D1"]}), ws, "staff")
    keys["staff"] = issue_key(open_store(ws), "刘工", role="worker", worker_id="W7")[0]
    port = free_port()
    proc = start(ws, port)
    cable = Cable(port)
    try:
        yield ws, keys, f"http://127.0.0.1:{cable.port}", cable
    finally:
        cable.close()
        proc.kill()
        proc.wait(10)


def gps(d, lon: float, lat: float, accuracy: float = 8.0) -> None:
    d.execute_cdp_cmd(
        "Emulation.setGeolocationOverride",
        {"latitude": lat, "longitude": lon, "accuracy": accuracy},
    )


def wait(d, script: str, timeout: float = 20.0, what: str = ""):
    """Poll ``script`` (a JS expression) until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = d.execute_script(f"return {script}")
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or script}")
        time.sleep(0.1)


def tap(d, css: str) -> None:
    """Tap what a thumb would: scrolled to the middle of the screen first (the tab bar
    covers the bottom edge, where WebDriver would scroll it)."""
    node = d.find_element("css selector", css)
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", node)
    node.click()


def shot(d, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    d.save_screenshot(str(ARTIFACTS / f"fieldapp_{name}.png"))
    if os.environ.get("GRIDKIT_DOCS_SCREENSHOTS"):
        DOCS.mkdir(parents=True, exist_ok=True)
        d.save_screenshot(str(DOCS / f"{name}.png"))


def no_sideways_scroll(d) -> None:
    """Usable at 360 px: nothing sticks out to the side."""
    width = d.execute_script("return document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width} px wide on a 360 px screen"


def sign_in(
    d, url: str, key: str, at: tuple[float, float] = INSIDE, *, by_link: bool = False
) -> None:
    """A phone that never opened the app (nothing stored, no service worker) signs in:
    typing the key, or (``by_link``) opening the link of its QR code."""
    d.get("about:blank")
    d.execute_cdp_cmd("Storage.clearDataForOrigin", {"origin": url, "storageTypes": "all"})
    d.execute_cdp_cmd("Browser.grantPermissions", {"origin": url, "permissions": ["geolocation"]})
    gps(d, *at)
    if by_link:  # what `gridkit keys add --qr --app-url URL/app/` puts in the code
        d.get(f"{url}/app/#key={key}")
        wait(d, "!document.getElementById('tabs').hidden", what="signed in by the link")
        assert "key=" not in d.current_url  # the key leaves the address bar at once
        return
    d.get(f"{url}/app/")  # in Chinese: the browser's language is zh-CN
    wait(d, "document.getElementById('key')", what="the sign-in form")
    d.find_element("id", "key").send_keys(key)
    tap(d, "#signin")
    wait(d, "!document.getElementById('tabs').hidden", what="signed in")


def service_worker_ready(d) -> None:
    wait(d, "navigator.serviceWorker.controller", what="the service worker controls the page")


def queue_length(d) -> int:
    return d.execute_async_script(
        "const done = arguments[0]; queueAll().then(q => done(q.length), e => done(-1));"
    )


def queue_empties(d, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while queue_length(d):
        if time.monotonic() > deadline:
            states = d.execute_async_script(
                "const done = arguments[0]; queueAll().then(q => done(q.map(i => [i.kind, "
                "i.state, i.error])));"
            )
            raise AssertionError(f"the queue was not sent: {states}")
        time.sleep(0.2)
    wait(d, "document.getElementById('badge').hidden", what="the badge gone")


def photo(tmp_path: Path, size=(2400, 1800)) -> Path:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, (90, 140, 190))
    draw = ImageDraw.Draw(img)
    for i in range(0, size[0], 120):
        draw.rectangle([i, size[1] // 3, i + 60, size[1] // 2], fill=(200, 60, 40))
    path = tmp_path / "problem.jpg"
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    path.write_bytes(buf.getvalue())
    return path


def fill_report(d, picture: Path, text: str, category: str = "street_light") -> None:
    wait(d, "document.querySelector('button[data-cat]')", what="the categories")
    tap(d, f"button[data-cat={category}]")
    d.find_element("id", "desc").send_keys(text)
    d.find_element("css selector", "input.photo-input").send_keys(str(picture))
    wait(d, "document.querySelectorAll('.thumbs img').length === 1", what="the photo resized")
    wait(d, "document.getElementById('pos').textContent.includes('精度')", what="a GPS fix")


def reports_of(ws: Path, description: str):
    reports = open_store(ws).read("reports")
    return reports[reports["description"].astype(str) == description]


# ---------------------------------------------------------------------------- the tests


def test_report_with_photo_made_offline_arrives_exactly_once(phone, served, tmp_path):
    d = phone
    ws, keys, url, cable = served
    picture = photo(tmp_path)
    text = "路灯不亮，离线上报"
    net(d, SLOW_4G)
    sign_in(d, url, keys["w1"])
    service_worker_ready(d)
    wait(d, "document.querySelector('#minimap .leaflet-overlay-pane path')", what="outlines")
    with cut(d, cable):
        d.refresh()  # the shell comes from the service worker
        wait(d, "document.getElementById('net').classList.contains('off')", what="offline")
        fill_report(d, picture, text)
        no_sideways_scroll(d)
        shot(d, "report")
        # the small map works offline: Leaflet and the outlines around the worker, cached
        wait(d, "document.querySelector('#minimap .leaflet-overlay-pane path')", what="map")
        d.execute_script("document.getElementById('pos').scrollIntoView({block: 'start'})")
        shot(d, "report_map")
        tap(d, "#submit")
        wait(d, "document.getElementById('report-done')", what="queued")
        assert queue_length(d) == 2  # the report and its photo
        # the browser closed and opened again, still offline: the queue is still there
        d.get("about:blank")
        d.get(f"{url}/app/")
        wait(d, "!document.getElementById('tabs').hidden", what="the app again, offline")
        tap(d, "#tabs [data-tab=pending]")
        wait(d, "document.querySelectorAll('#view [data-kind]').length === 2", what="pending")
        assert d.find_element("id", "badge").text == "2"
        no_sideways_scroll(d)
        shot(d, "pending")
        # a copy of the queue, sent again below as by a phone whose answers were lost
        d.execute_script("queueAll().then(q => { window.__copy = q; })")
        wait(d, "window.__copy && window.__copy.length === 2", what="the copy")
        assert reports_of(ws, text).empty
    # back online: the 'online' event sends the queue
    queue_empties(d)
    d.execute_async_script(
        "const done = arguments[0]; tx('queue', 'readwrite', s => window.__copy.forEach("
        "i => { delete i.seq; s.add(i); })).then(() => sync()).then(done);"
    )
    queue_empties(d)
    sent = reports_of(ws, text)
    assert len(sent) == 1, sent
    rid = sent["report_id"].iloc[0]
    assert sent["category"].iloc[0] == "street_light"
    photos = httpx.get(f"{url}/reports/{rid}/evidence", headers={"X-API-Key": keys["w1"]}).json()[
        "evidence"
    ]
    assert len(photos) == 1, photos
    assert photos[0]["kind"] == "before" and photos[0]["width"] == 1600  # resized
    assert photos[0]["taken_at"] and abs(photos[0]["lon"] - INSIDE[0]) < 1e-6


def test_patrol_recorded_offline_is_synced(phone, served):
    d = phone
    ws, keys, url, cable = served
    net(d, SLOW_4G)
    sign_in(d, url, keys["w2"], at=W2_AT)
    service_worker_ready(d)
    tap(d, "#tabs [data-tab=patrol]")
    wait(d, "document.getElementById('p-start')", what="patrol screen")

    def walk(steps: int, start: int) -> None:
        for i in range(start, start + steps):  # ~2 m a step: a brisk walk
            gps(d, W2_AT[0] + i * 2e-5, W2_AT[1], accuracy=5 + i % 3)
            time.sleep(0.4)

    with cut(d, cable):
        tap(d, "#p-start")
        wait(d, "document.getElementById('p-stop')", what="patrol started")
        walk(6, 0)
        wait(d, "document.getElementById('p-fixes').textContent.includes('6')", what="fixes")
        tap(d, "#p-pause")
        wait(d, "document.getElementById('p-pause').textContent === '继续'", what="paused")
        walk(3, 6)  # paused: not recorded
        tap(d, "#p-pause")  # resume
        wait(d, "document.getElementById('p-pause').textContent === '暂停'", what="resumed")
        walk(4, 9)
        fixes = d.execute_async_script(
            "const done = arguments[0]; patrol().then(p => done(p.points.length));"
        )
        assert fixes == 10, fixes  # 6 + 4: none while paused
        assert d.find_element("id", "p-units").text == "1"
        # the chief's 看/查/交 checklist: water colour fine, floating matter a problem
        assert len(d.find_elements("css selector", "[data-check]")) == 15  # 4 看 + 11 查
        tap(d, "[data-check=water_colour] [data-value=ok]")
        wait(d, "document.querySelector('[data-check=water_colour] [aria-pressed=true]')")
        no_sideways_scroll(d)
        shot(d, "patrol")
        tap(d, "[data-check=floating] [data-value=problem]")
        # 交: the problem becomes a report, its category from the checklist
        wait(d, "document.querySelector('[data-cat=floating_garbage][aria-pressed=true]')")
        d.find_element("id", "desc").send_keys("上游漂浮垃圾约20米")
        tap(d, "#submit")
        wait(d, "document.getElementById('p-stop')", what="back on the patrol")
        tap(d, "#p-stop")
        wait(d, "document.getElementById('patrol-done')", what="patrol saved")
        assert queue_length(d) == 2  # the problem's report and the patrol
        assert "patrols" not in open_store(ws).layers()
    queue_empties(d)
    found = open_store(ws).read("reports")
    found = found[found["description"].astype(str).str.contains("上游漂浮垃圾约20米")]
    assert len(found) == 1 and found["category"].iloc[0] == "floating_garbage"
    assert found["source"].iloc[0] == "patrol" and "水面漂浮物" in found["description"].iloc[0]
    store = open_store(ws)
    patrols = store.read("patrols")
    patrols = patrols[patrols["worker_id"] == "W2"]
    assert len(patrols) == 1
    pid = patrols["patrol_id"].iloc[0]
    assert pid.startswith("app-")
    points = store.read("patrol_points")
    assert (points["patrol_id"] == pid).sum() == fixes
    assert pid in found["description"].iloc[0]  # the report names its patrol
    record = json.loads(patrols["checklist"].iloc[0])  # the record, as the ledger reads it
    assert record["water_colour"] == {"result": "ok"}
    assert record["floating"] == {"result": "problem", "reported": True}
    reports = open_store(ws).read("reports")  # the app's report is the one case: none twice
    assert "patrol_id" not in reports or not (reports["patrol_id"] == pid).any()


def take_step(d, rid: str, step: str, picture: Path | None = None) -> None:
    """On the cases screen: tap the step on the case's card, confirm, wait until sent."""
    tap(d, "#tabs [data-tab=cases]")
    button = f"[data-case={rid}] [data-action={step}]"
    wait(d, f"document.querySelector('{button}')", what=f"{step} offered")
    tap(d, button)
    wait(d, "document.getElementById('action-dialog')", what="the step's dialog")
    if picture is not None:
        d.find_element("css selector", "#action-dialog input.photo-input").send_keys(str(picture))
        wait(d, "document.querySelectorAll('#action-dialog .thumbs img').length === 1")
        shot(d, "report_back")
    tap(d, "#action-ok")
    wait(d, "!document.getElementById('action-dialog')", what="the step queued")
    queue_empties(d)


def test_staff_accept_and_report_back_the_grid_worker_verifies(phone, served, tmp_path):
    d = phone
    ws, keys, url, _ = served
    net(d, SLOW_4G)
    at = (113.006, 27.706)  # W1's unit; routed to D1 by category and place
    r = httpx.post(
        f"{url}/reports",
        json={"category": "road_damage", "description": "路面塌陷", "lon": at[0], "lat": at[1]},
        headers={"X-API-Key": keys["w1"]},
    )
    rid = r.json()["id"]
    before = httpx.post(  # the problem's photo, sent with the report (the rules want both)
        f"{url}/reports/{rid}/evidence",
        files={"photo": ("p.jpg", photo(tmp_path, size=(640, 480)).read_bytes(), "image/jpeg")},
        data={"kind": "before"},
        headers={"X-API-Key": keys["w1"]},
    )
    assert before.status_code == 201

    def status() -> str:
        rows = open_store(ws).read("reports")
        return rows.loc[rows["report_id"] == rid, "status"].iloc[0]

    for step in ("open", "dispatch"):  # the centre's steps (立案, 派遣 to D1)
        body = {"action": step, "department_id": "D1" if step == "dispatch" else None}
        assert httpx.post(
            f"{url}/reports/{rid}/actions", json=body, headers={"X-API-Key": keys["sup"]}
        ).is_success
    assert status() == "dispatched"
    sign_in(d, url, keys["staff"], at=at)
    tap(d, "#tabs [data-tab=cases]")
    wait(d, f"document.querySelector('[data-case={rid}] [data-action=accept]')", what="accept")
    no_sideways_scroll(d)
    shot(d, "cases")
    take_step(d, rid, "accept")
    assert status() == "handling"
    take_step(d, rid, "report_back", picture=photo(tmp_path, size=(800, 600)))
    assert status() == "reported_back"
    kinds = httpx.get(f"{url}/reports/{rid}/evidence", headers={"X-API-Key": keys["w1"]}).json()
    assert [e["kind"] for e in kinds["evidence"]] == ["before", "after"]
    sign_in(d, url, keys["w1"], at=at)  # the grid worker of the unit, on site
    take_step(d, rid, "verify")
    assert status() == "verified"


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@contextmanager
def https_server(ws: Path, cert: Path, key: Path):
    port = free_port()
    args = ["--port", str(port), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridkit.cli", "serve", str(ws), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", verify=False, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.kill()
        proc.wait(10)


def test_report_over_https_with_a_self_signed_certificate(phone, served, tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl missing")
    d = phone
    ws, keys, _, _ = served  # a second server on the same workspace, over HTTPS
    text = "HTTPS 上报"
    net(d, SLOW_4G)
    with https_server(ws, *_self_signed(tmp_path)) as url:
        sign_in(d, url, keys["w1"], by_link=True)
        assert d.execute_script("return isSecureContext && location.protocol") == "https:"
        assert d.find_element("id", "insecure").is_displayed() is False
        fill_report(d, photo(tmp_path, size=(1200, 900)), text, category="road_damage")
        tap(d, "#submit")
        queue_empties(d)
        sent = reports_of(ws, text)
        assert len(sent) == 1
        rid = sent["report_id"].iloc[0]
        photos = httpx.get(
            f"{url}/reports/{rid}/evidence", headers={"X-API-Key": keys["w1"]}, verify=False
        ).json()["evidence"]
        assert len(photos) == 1 and photos[0]["width"] == 1200  # small photos stay as taken


def test_plain_http_is_named_and_sign_in_refuses_a_bad_key(phone, served):
    d = phone
    _, _, url, _ = served
    net(d, SLOW_4G)
    lan = url.replace("127.0.0.1", LAN_NAME)
    d.get(f"{lan}/app/")
    wait(d, "document.getElementById('key')", what="the sign-in form")
    banner = d.find_element("id", "insecure")
    assert banner.is_displayed() and "HTTPS" in banner.text
    assert d.execute_script("return isSecureContext") is False
    d.find_element("id", "key").send_keys("gk_not-a-key")
    tap(d, "#signin")
    wait(d, "document.getElementById('signin-error').textContent", what="the refusal")
    no_sideways_scroll(d)
    shot(d, "signin_http")
