"""JavaScript and CSS for map pages: CDN, local files from XStatic packages, or inlined.

Folium's default page pulls Leaflet, jQuery, Bootstrap, glyphicons, Font Awesome and
awesome-markers from CDNs. gridkit maps use none of the extras (no ``folium.Popup``,
no ``Marker`` icons, no branca legends), so only Leaflet (and, for clustered report
points, Leaflet.markercluster) is loaded. Offline pages take those files from the
``XStatic-Leaflet`` / ``XStatic-Leaflet-MarkerCluster`` packages: inlined into the
HTML (a standalone file) or referenced under ``asset_base_url`` (an API serving
:func:`offline_assets` at that URL).
"""

from __future__ import annotations

import base64
import functools
import html
import re
from pathlib import Path

import folium
from branca.element import Element, Figure, MacroElement

from gridkit.errors import GridkitError

__all__ = ["AssetsMissingError", "apply_assets", "has_cluster_assets", "offline_assets"]

_LEAFLET_CDN = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/"
_CLUSTER_CDN = "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/"

_SOURCEMAP = re.compile(r"/[/*]# sourceMappingURL=[^\s*]*(\s*\*/)?")


class AssetsMissingError(GridkitError, ImportError):
    """The packages holding Leaflet for offline pages are not installed."""


def _leaflet_dir() -> Path:
    try:
        from xstatic.pkg import leaflet
    except ImportError as exc:
        raise AssetsMissingError(
            "Offline maps need Leaflet from the XStatic-Leaflet package, which is not installed.",
            hint="pip install XStatic-Leaflet XStatic-Leaflet-MarkerCluster (or gridkit[maps]).",
        ) from exc
    return Path(leaflet.BASE_DIR)


def _cluster_dir() -> Path | None:
    try:
        from xstatic.pkg import leaflet_markercluster
    except ImportError:
        return None
    return Path(leaflet_markercluster.BASE_DIR)


def has_cluster_assets() -> bool:
    """Whether Leaflet.markercluster is installed locally (XStatic-Leaflet-MarkerCluster).

    Examples
    --------
    >>> has_cluster_assets() == ("leaflet.markercluster.js" in offline_assets())
    True
    """
    return _cluster_dir() is not None


def offline_assets(*, cluster: bool = True) -> dict[str, Path]:
    """The asset files an offline map page loads, by the relative URL it loads them at.

    An API serves these files under one base URL and builds maps with
    ``offline=True, asset_base_url=BASE``; Leaflet's CSS finds its images under
    ``BASE/images/``.

    Parameters
    ----------
    cluster
        Include Leaflet.markercluster when installed.

    Returns
    -------
    dict
        Relative URL (``"leaflet.js"``, ``"images/layers.png"``, ...) to local file.

    Raises
    ------
    AssetsMissingError
        When XStatic-Leaflet is not installed.

    Examples
    --------
    >>> assets = offline_assets()
    >>> sorted(assets)[:2]
    ['MarkerCluster.Default.css', 'MarkerCluster.css']
    >>> assets["leaflet.js"].is_file()
    True
    """
    base = _leaflet_dir()
    out = {"leaflet.js": base / "leaflet.js", "leaflet.css": base / "leaflet.css"}
    for png in sorted((base / "images").glob("*.png")):
        out[f"images/{png.name}"] = png
    cdir = _cluster_dir() if cluster else None
    if cdir is not None:
        for name in ("leaflet.markercluster.js", "MarkerCluster.css", "MarkerCluster.Default.css"):
            out[name] = cdir / name
    return out


@functools.lru_cache(maxsize=4)
def _inline_bundle(cluster: bool) -> str:
    """``<style>``/``<script>`` blocks holding the asset files (images as data URIs)."""
    assets = offline_assets(cluster=cluster)

    def data_uri(match: re.Match) -> str:
        rel = match.group(1).strip("'\"")
        path = assets.get(rel)
        if path is None:  # e.g. url(#default#VML): leave as is, it loads nothing
            return match.group(0)
        return "url(data:image/png;base64," + base64.b64encode(path.read_bytes()).decode() + ")"

    parts = []
    css_names = ["leaflet.css", "MarkerCluster.css", "MarkerCluster.Default.css"]
    for name in css_names:
        if name in assets:
            css = assets[name].read_text(encoding="utf-8")
            css = re.sub(r"url\(([^)]*)\)", data_uri, _SOURCEMAP.sub("", css))
            parts.append(f"<style>/* {name} */\n{css}\n</style>")
    for name in ("leaflet.js", "leaflet.markercluster.js"):
        if name in assets:
            js = _SOURCEMAP.sub("", assets[name].read_text(encoding="utf-8"))
            # a literal "</script" would end the element early
            js = re.sub(r"</(script)", r"<\\/\1", js, flags=re.IGNORECASE)
            parts.append(f"<script>/* {name} */\n{js}\n</script>")
    return "\n".join(parts)


class _InlineAssets(MacroElement):
    """Puts the inlined bundle first in the page header."""

    def __init__(self, bundle: str) -> None:
        super().__init__()
        self._name = "GridkitAssets"
        self.bundle = bundle

    def render(self, **kwargs) -> None:
        figure = self.get_root()
        assert isinstance(figure, Figure)
        # after <meta charset>, which must come within the first 1024 bytes
        names = list(figure.header._children)
        index = names.index("meta_http") + 1 if "meta_http" in names else 0
        figure.header.add_child(Element(self.bundle), name="gridkit_assets", index=index)


def _elements(root) -> list:
    out = [root]
    for child in root._children.values():
        out += _elements(child)
    return out


def apply_assets(
    m: folium.Map, *, offline: bool, asset_base_url: str | None = None, cluster: bool
) -> None:
    """Point every element of ``m`` at the right Leaflet files (call after building).

    Online pages load Leaflet from folium's CDN; offline pages inline the files or, with
    ``asset_base_url``, reference them there. Either way nothing else is loaded.

    Examples
    --------
    >>> import folium
    >>> m = folium.Map(tiles=None)
    >>> apply_assets(m, offline=True, asset_base_url="/assets/", cluster=False)
    >>> page = m.get_root().render()
    >>> '<script src="/assets/leaflet.js">' in page, "jquery" in page
    (True, False)
    """
    js: list[tuple[str, str]]
    css: list[tuple[str, str]]
    if not offline:
        js = [("leaflet", _LEAFLET_CDN + "leaflet.js")]
        css = [("leaflet_css", _LEAFLET_CDN + "leaflet.css")]
        if cluster:
            js.append(("markerclusterjs", _CLUSTER_CDN + "leaflet.markercluster.js"))
            css += [
                ("markerclustercss", _CLUSTER_CDN + "MarkerCluster.css"),
                ("markerclusterdefaultcss", _CLUSTER_CDN + "MarkerCluster.Default.css"),
            ]
    elif asset_base_url is not None:
        base = asset_base_url.rstrip("/") + "/"
        available = offline_assets(cluster=cluster)
        js = [(n, html.escape(base + n)) for n in ("leaflet.js", "leaflet.markercluster.js")]
        css = [
            (n, html.escape(base + n))
            for n in ("leaflet.css", "MarkerCluster.css", "MarkerCluster.Default.css")
        ]
        js = [(n, u) for n, u in js if n in available]
        css = [(n, u) for n, u in css if n in available]
    else:
        js, css = [], []
        m.add_child(_InlineAssets(_inline_bundle(cluster)))
    # the Map carries the page's assets; every other element loads nothing of its own
    for el in _elements(m):
        if hasattr(el, "default_js"):
            el.default_js = []
            el.default_css = []
    m.default_js = js
    m.default_css = css
