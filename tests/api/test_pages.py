"""Map pages over HTTP: offline assets from the app, key via cookie, escaped data."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from tests.api.conftest import auth


def test_coverage_page_uses_local_assets_only(client, keys) -> None:
    r = client.get("/maps/coverage", headers=auth(keys["viewer"]))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    srcs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert srcs, "the page loads its assets"
    assert all(not s.startswith(("http://", "https://", "//")) for s in srcs), srcs
    assert any(s.startswith("/assets/") for s in srcs)
    assert "网格&lt;0&gt;" not in html or "<0>" not in html  # names escaped, never raw
    for src in {s for s in srcs if s.startswith("/assets/")}:
        asset = client.get(src)
        assert asset.status_code == 200, src
        assert len(asset.content) > 100


def test_coverage_page_needs_a_key_and_accepts_it_once_in_the_url(client, keys) -> None:
    client.cookies.clear()
    assert client.get("/maps/coverage").status_code == 401
    r = client.get(f"/maps/coverage?key={keys['viewer']}&lang=en", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/maps/coverage?lang=en"  # key removed from the URL
    assert "httponly" in r.headers["set-cookie"].lower()
    assert "path=/maps" in r.headers["set-cookie"].lower()
    page = client.get(r.headers["location"])
    assert page.status_code == 200
    assert "Grid coverage" in page.text
    # the cookie opens map pages only: the API wants its header (no cross-site writes)
    key = r.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    cookie = {"Cookie": f"gridkit_key={key}"}
    client.cookies.clear()
    assert client.get("/maps/coverage", headers=cookie).status_code == 200
    assert client.get("/collections", headers=cookie).status_code == 401
    client.cookies.clear()


def test_unknown_query_parameters_are_400_everywhere(client, keys) -> None:
    for path in (
        "/maps/coverage?lnag=en",
        "/stats/coverage?fromat=xlsx",
        "/versions?x=1",
        "/?foo=1",
    ):
        r = client.get(path, headers=auth(keys["supervisor"]))
        assert r.status_code == 400, path
        assert "Unknown query parameter" in r.json()["detail"]
    assert client.get("/?f=json").status_code == 200  # the OGC f= is declared everywhere


def test_scoped_page_shows_only_the_scope(client, keys) -> None:
    html = client.get("/maps/coverage", headers=auth(keys["district_supervisor"])).text
    assert "430203001001-001" in html
    assert "430202001001-000" not in html


def test_text_assets_are_gzipped_for_clients_that_take_it(client) -> None:
    from gridkit.maps import offline_assets

    plain = Path(offline_assets()["leaflet.js"]).read_bytes()
    # httpx decodes gzip itself: read the raw stream to see what went over the wire
    with client.stream("GET", "/assets/leaflet.js", headers={"Accept-Encoding": "gzip"}) as r:
        wire = b"".join(r.iter_raw())
    assert r.headers["content-encoding"] == "gzip" and "Accept-Encoding" in r.headers["vary"]
    assert len(wire) < len(plain) / 3 and gzip.decompress(wire) == plain
    for refused in ("identity", "gzip;q=0, identity", ""):
        with client.stream("GET", "/assets/leaflet.js", headers={"Accept-Encoding": refused}) as r:
            assert "content-encoding" not in r.headers and b"".join(r.iter_raw()) == plain
    with client.stream("GET", "/assets/images/marker-icon.png") as r:  # already compressed
        assert "content-encoding" not in r.headers


def test_unknown_asset_404(client) -> None:
    assert client.get("/assets/evil.js").status_code == 404


def test_api_docs_work_without_internet(client) -> None:
    """/docs (Swagger UI) loads its script and style from the app, never a CDN."""
    page = client.get("/docs")
    assert page.status_code == 200
    refs = re.findall(r'(?:src|href|url)\s*[:=]\s*["\']([^"\']+)["\']', page.text)
    assert refs and all(not r.startswith(("http://", "https://", "//")) for r in refs), refs
    for name, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css")):
        asset = client.get(f"/docs/{name}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"]
        assert len(asset.content) > 10_000
    assert client.get("/docs/../../etc/passwd").status_code == 404
    assert client.get("/redoc").status_code == 404  # its script would come from a CDN
