"""Report categories on maps: a colour per domain and a symbol per category.

The same category looks the same on every page: its symbol comes from its place in the
rules (``reports.toml``, in file order within its domain), not from which categories
happen to be in the data; its colour is its domain's. The colours (Okabe-Ito bluish
green and yellow, with a black outline) are told apart from the red-white-blue
hot/cold spot classes and from each other by colour-blind readers; the symbol carries
the category.

Maps take the categories as a plain mapping (``{key: {"label_zh": ..., "domain": ...}}``,
what :class:`gridkit.ops.ReportRules` holds in ``.categories``) so the map room does
not depend on the rules' room.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["DOMAIN_COLORS", "SYMBOLS", "CategoryStyle", "category_styles", "symbol_svg"]

#: fill colour per domain; anything else (unknown domain) is grey
DOMAIN_COLORS = {"river": "#009E73", "community": "#F0E442", "other": "#BBBBBB"}

#: SVG paths in a 16 x 16 box, one per category of a domain, in rules order
SYMBOLS = {
    "circle": "M8 2.5a5.5 5.5 0 1 0 0 11a5.5 5.5 0 1 0 0-11z",
    "triangle": "M8 1.5L14.5 14H1.5z",
    "square": "M2.5 2.5h11v11h-11z",
    "diamond": "M8 1l7 7l-7 7l-7-7z",
    "star": "M8 1l2 5h5.2l-4.2 3.2l1.6 5.3L8 11.4l-4.6 3.1L5 9.2L.8 6H6z",
    "plus": "M5.5 1.5h5v4h4v5h-4v4h-5v-4h-4v-5h4z",
    "cross": "M3.2 1l4.8 4.8L12.8 1l2.2 2.2l-4.8 4.8l4.8 4.8l-2.2 2.2L8 10.2L3.2 15L1 12.8"
    "L5.8 8L1 3.2z",
    "down": "M1.5 2h13L8 14.5z",
    "hexagon": "M4.5 1.5h7l3.5 6.5l-3.5 6.5h-7L1 8z",
}
_ORDER = tuple(SYMBOLS)


@dataclass(frozen=True)
class CategoryStyle:
    """How one category is drawn and named on a page.

    Examples
    --------
    >>> CategoryStyle("cctv", "监控老旧", "community", "#F0E442", "circle").symbol
    'circle'
    """

    key: str
    label: str
    domain: str
    color: str
    symbol: str


def _label(key: str, spec: Mapping[str, object], lang: str) -> str:
    if lang == "zh" and spec.get("label_zh"):
        return str(spec["label_zh"])
    if lang == "en" and spec.get("label_en"):
        return str(spec["label_en"])
    return key.replace("_", " ") if lang == "en" else key


def category_styles(
    categories: Mapping[str, Mapping[str, object]] | None,
    present: list[str] | None = None,
    *,
    lang: str = "zh",
) -> dict[str, CategoryStyle]:
    """Label, colour and symbol of every category (the rules' and those ``present``).

    Parameters
    ----------
    categories
        ``{key: {"label_zh": ..., "domain": "river" | "community"}}`` in rules order
        (``report_rules().categories``); ``None`` when the caller has no rules.
    present
        Category keys found in the data; those missing from the rules get a symbol
        after the rules' ones (in sorted order) and the grey of an unknown domain.
    lang
        ``"zh"``: ``label_zh``; ``"en"``: ``label_en`` or the key with spaces.

    Examples
    --------
    >>> rules = {"sand_mining": {"label_zh": "非法采砂", "domain": "river"},
    ...          "cctv": {"label_zh": "监控老旧", "domain": "community"}}
    >>> s = category_styles(rules, ["cctv", "oil"])
    >>> s["sand_mining"].label, s["sand_mining"].color, s["sand_mining"].symbol
    ('非法采砂', '#009E73', 'circle')
    >>> s["cctv"].symbol, s["oil"].symbol, s["oil"].color
    ('circle', 'circle', '#BBBBBB')
    >>> category_styles(rules, lang="en")["sand_mining"].label
    'sand mining'
    """
    out: dict[str, CategoryStyle] = {}
    used: dict[str, int] = {}
    specs = dict(categories or {})
    extra = sorted(set(present or ()) - set(specs))
    for key in [*specs, *extra]:
        spec = specs.get(key, {})
        domain = str(spec.get("domain", "other"))
        domain = domain if domain in DOMAIN_COLORS else "other"
        k = used.get(domain, 0)
        used[domain] = k + 1
        out[str(key)] = CategoryStyle(
            key=str(key),
            label=_label(str(key), spec, lang),
            domain=domain,
            color=DOMAIN_COLORS[domain],
            symbol=_ORDER[k % len(_ORDER)],
        )
    return out


def symbol_svg(symbol: str, color: str, size: int = 16) -> str:
    """An inline SVG of ``symbol`` filled with ``color``, outlined in black.

    Examples
    --------
    >>> symbol_svg("star", "#009E73").startswith('<svg class="gk-sym" width="16"')
    True
    """
    path = SYMBOLS[symbol]
    return (
        f'<svg class="gk-sym" width="{size}" height="{size}" viewBox="0 0 16 16" '
        f'aria-hidden="true"><path d="{path}" fill="{html.escape(color)}" stroke="#111" '
        'stroke-width="1.3" stroke-linejoin="round"/></svg>'
    )
