"""Map title and legend in plain HTML/CSS (no branca colormaps, no d3).

Every text passed here is escaped; colours are checked against a strict pattern.
"""

from __future__ import annotations

import html
import re

from branca.element import Element, Figure, MacroElement

_COLOR = re.compile(r"^#[0-9a-fA-F]{3,8}$")

_CSS = """<style>
.gk-title{position:absolute;top:10px;left:50%;transform:translateX(-50%);z-index:1000;
background:rgba(255,255,255,.92);padding:6px 14px;border-radius:4px;
box-shadow:0 1px 4px rgba(0,0,0,.35);font:600 16px/1.3 system-ui,"Noto Sans CJK SC",
"Microsoft YaHei",sans-serif;text-align:center;pointer-events:none;max-width:70%}
.gk-title small{display:block;font-weight:400;font-size:12px;color:#444}
.gk-legend{position:absolute;bottom:28px;right:10px;z-index:1000;background:rgba(255,255,255,.92);
padding:8px 10px;border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.35);
font:12px/1.5 system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;max-height:45%;
overflow:auto}
.gk-legend b{display:block;margin-bottom:2px}
.gk-legend i{display:inline-block;width:14px;height:12px;margin-right:6px;vertical-align:-1px;
border:1px solid #555}
.gk-legend i.gk-dot{border-radius:50%;width:10px;height:10px}
.gk-legend i.gk-dash{border:2px dashed #333}
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


def legend_element(sections: list[tuple[str, list[tuple[str, str, str]]]]) -> MacroElement:
    """A legend: ``[(heading, [(colour, label, shape), ...]), ...]``.

    ``shape`` is ``"box"``, ``"dot"`` or ``"dash"`` (dashed outline). Text is escaped.

    Examples
    --------
    >>> import folium
    >>> m = folium.Map(tiles=None)
    >>> _ = m.add_child(legend_element([("Worker", [("#1f77b4", "W<1>", "box")])]))
    >>> "<b>Worker</b>" in m.get_root().render(), "W&lt;1&gt;" in m.get_root().render()
    (True, True)
    """
    parts = ['<div class="gk-legend">']
    for heading, items in sections:
        parts.append(f"<b>{html.escape(heading)}</b>")
        for color, label, shape in items:
            cls = {"dot": ' class="gk-dot"', "dash": ' class="gk-dash"'}.get(shape, "")
            parts.append(
                f'<div><i{cls} style="background:{_color(color)}"></i>{html.escape(label)}</div>'
            )
    parts.append("</div>")
    return _HtmlBlock("".join(parts), "GridkitLegend")
