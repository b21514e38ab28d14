"""Map title and legend in plain HTML/CSS (no branca colormaps, no d3).

Every text passed here is escaped; colours are checked against a strict pattern.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from branca.element import Element, Figure, MacroElement

from gridkit.maps.symbols import symbol_svg

_COLOR = re.compile(r"^#[0-9a-fA-F]{3,8}$")

_CSS = """<style>
.gk-title{position:absolute;top:10px;left:50%;transform:translateX(-50%);z-index:1000;
background:rgba(255,255,255,.92);padding:6px 14px;border-radius:4px;
box-shadow:0 1px 4px rgba(0,0,0,.35);font:600 16px/1.3 system-ui,"Noto Sans CJK SC",
"Microsoft YaHei",sans-serif;text-align:center;pointer-events:none;max-width:60%}
.gk-title small{display:block;font-weight:400;font-size:12px;color:#444}
.gk-legend{position:absolute;bottom:28px;right:10px;z-index:1000;background:rgba(255,255,255,.94);
padding:6px 10px;border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.35);
font:12px/1.5 system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;
max-height:calc(100% - 150px);max-width:300px;overflow:auto;box-sizing:border-box}
.gk-legend summary{cursor:pointer;font-weight:600;list-style-position:inside}
.gk-legend section{margin-top:4px}
.gk-legend b{display:block;margin-bottom:2px}
.gk-legend div{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.gk-legend i{display:inline-block;width:14px;height:12px;margin-right:6px;vertical-align:-1px;
border:1px solid #555;box-sizing:border-box}
.gk-legend i.gk-dot{border-radius:50%;width:10px;height:10px}
.gk-legend i.gk-dash{border:2px dashed #333}
.gk-legend i.gk-line{height:0;border:0;border-top:3px solid;vertical-align:3px;
background:none!important}
.gk-legend i.gk-outline{background:none!important;border:2px solid}
.gk-legend .gk-sym{vertical-align:-3px;margin-right:6px}
.gk-lbl{background:none;border:0}
.gk-lbl span{display:inline-block;transform:translate(-50%,-50%);white-space:nowrap;
font:12px/1.2 system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;color:#222;
text-shadow:0 0 2px #fff,0 0 2px #fff,0 0 3px #fff;pointer-events:none}
.gk-lbl-county span{font-size:15px;font-weight:700;color:#333}
.gk-lbl-township span{font-size:13px;font-weight:600}
.gk-lbl-village span{font-size:11px;color:#444}
.gk-lbl-unit span{font-size:10px;color:#222}
.gk-hide-county .gk-lbl-county,.gk-hide-township .gk-lbl-township,
.gk-hide-village .gk-lbl-village,.gk-hide-unit .gk-lbl-unit{display:none}
.gk-search{background:#fff;border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.35);
font:13px system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif}
.gk-search input{width:190px;padding:5px 7px;border:0;border-radius:4px;font:inherit}
.gk-search ul{list-style:none;margin:0;padding:0;max-height:240px;overflow:auto;width:260px}
.gk-search li{padding:4px 7px;cursor:pointer;border-top:1px solid #eee;white-space:nowrap;
overflow:hidden;text-overflow:ellipsis}
.gk-search li:hover,.gk-search li.gk-on{background:#e8f0fe}
.gk-cluster{background:none}
.gk-cluster span{display:flex;align-items:center;justify-content:center;border-radius:50%;
background:#333;color:#fff;border:2px solid #fff;box-shadow:0 0 3px #000;
font:600 12px system-ui,sans-serif;width:100%;height:100%;box-sizing:border-box}
.gk-marker{background:none;border:0}
@media (max-width:600px){
.gk-title{left:50px;right:50px;transform:none;max-width:none;top:8px;font-size:13px;
padding:3px 8px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.gk-title small{display:inline;margin-left:6px;font-size:11px}
.gk-legend{right:6px;bottom:22px;max-width:58%;max-height:40%;font-size:11px;padding:4px 8px}
.gk-search input{width:110px}
.gk-search ul{width:200px}
}
.gk-print .leaflet-control-zoom,.gk-print .leaflet-control-layers,.gk-print .gk-search{display:none}
.gk-print .gk-legend{max-height:none;overflow:visible}
</style>"""


def _color(value: str) -> str:
    if not _COLOR.match(value):
        raise ValueError(f"not a hex colour: {value!r}")
    return value


class _HtmlBlock(MacroElement):
    """Static HTML in the page body plus shared CSS in the header."""

    def __init__(self, markup: str, name: str) -> None:
        super().__init__()
        self._name = name
        self.markup = markup

    def render(self, **kwargs) -> None:
        figure = self.get_root()
        assert isinstance(figure, Figure)
        figure.header.add_child(Element(_CSS), name="gk_css")
        figure.html.add_child(Element(self.markup), name=self.get_name())


def title_element(title: str, subtitle: str | None = None) -> MacroElement:
    """A centred title box (text is escaped).

    Examples
    --------
    >>> import folium
    >>> m = folium.Map(tiles=None)
    >>> _ = m.add_child(title_element("<b>网格</b>", "2026-03"))
    >>> page = m.get_root().render()
    >>> "&lt;b&gt;网格&lt;/b&gt;<small>2026-03</small>" in page
    True
    """
    sub = f"<small>{html.escape(subtitle)}</small>" if subtitle else ""
    return _HtmlBlock(f'<div class="gk-title">{html.escape(title)}{sub}</div>', "GridkitTitle")


def _swatch(color: str, shape: str) -> str:
    if shape.startswith("sym:"):
        return symbol_svg(shape[4:], _color(color))
    if shape in ("line", "outline"):
        return f'<i class="gk-{shape}" style="border-color:{_color(color)}"></i>'
    cls = {"dot": ' class="gk-dot"', "dash": ' class="gk-dash"'}.get(shape, "")
    return f'<i{cls} style="background:{_color(color)}"></i>'


def legend_element(
    sections: Sequence[tuple], *, heading: str = "图例", open_: bool = True
) -> MacroElement:
    """A legend that folds: ``[(heading, [(colour, label, shape), ...][, layer]), ...]``.

    ``shape`` is ``"box"``, ``"dot"``, ``"dash"`` (dashed outline), ``"line"``,
    ``"outline"`` or ``"sym:NAME"`` (a symbol of :mod:`gridkit.maps.symbols`). A
    section naming a ``layer`` key is shown only while that layer is on the map (the
    page script of :mod:`gridkit.maps.page` keeps them in step). The legend is a
    ``<details>`` element: it scrolls when long and folds on narrow screens. Text is
    escaped.

    Examples
    --------
    >>> import folium
    >>> m = folium.Map(tiles=None)
    >>> _ = m.add_child(legend_element([("Worker", [("#1f77b4", "W<1>", "box")], "units")]))
    >>> page = m.get_root().render()
    >>> "<b>Worker</b>" in page, "W&lt;1&gt;" in page, 'data-layer="units"' in page
    (True, True, True)
    """
    parts = [f'<details class="gk-legend"{" open" if open_ else ""}>']
    parts.append(f"<summary>{html.escape(heading)}</summary>")
    for section in sections:
        title, items = section[0], section[1]
        layer = section[2] if len(section) > 2 and section[2] else None
        attr = f' data-layer="{html.escape(layer)}"' if layer else ""
        parts.append(f"<section{attr}><b>{html.escape(title)}</b>")
        for color, label, shape in items:
            parts.append(f"<div>{_swatch(color, shape)}{html.escape(label)}</div>")
        parts.append("</section>")
    parts.append("</details>")
    return _HtmlBlock("".join(parts), "GridkitLegend")
