"""How a map looks: one options object passed to every map function.

Every map function takes ``options=MapOptions(...)`` and, for convenience and for
the callers written before it, the same settings as keywords
(``coverage_map(units, lang="en")``): keywords override the options object through
:meth:`MapOptions.merged`, the one place that knows them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gridkit.errors import GridkitError
from gridkit.maps.labels import labels

__all__ = ["MapOptions", "UnknownOptionError"]

Tiles = str | None
_DATUMS = ("wgs84", "gcj02")


class UnknownOptionError(GridkitError, TypeError):
    """A keyword given to a map function is not a :class:`MapOptions` field."""


@dataclass(frozen=True, kw_only=True)
class MapOptions:
    """Title, language, basemap, assets and display settings of a map page.

    Parameters
    ----------
    title
        Title at the top (default: the map kind in ``lang``, e.g. "网格覆盖").
    period
        Period shown under the title (``compliance_map`` also selects rows by it).
    lang
        ``"zh"`` (default) or ``"en"`` labels.
    tiles
        ``None`` / ``"none"`` (default: no tiles; the context layers are the base), a
        tile URL template (an intranet server, ``/maps/tiles/{z}/{x}/{y}`` of
        ``gridkit serve --mbtiles``), or ``"OpenStreetMap"``.
    tiles_attr
        Attribution text for a custom tile URL (shown as text).
    tiles_datum
        ``"wgs84"`` or ``"gcj02"`` for Chinese web tiles; the data is shifted to match.
    offline
        Load Leaflet from local packages, inlined (default: no CDN, works on
        intranets); ``False`` loads it from public CDNs. See
        :func:`gridkit.maps.offline_assets`.
    asset_base_url
        With ``offline``: reference the assets at this URL instead of inlining them.
    precision
        Decimals kept in coordinates (6 ≈ 0.1 m).
    simplify_m
        Simplify geometry for display with this tolerance in metres.
    prefer_canvas
        Draw on a canvas instead of SVG; default: when more than 2,000 features.
    height
        CSS height of the map (``"100%"`` fills the page; e.g. ``"600px"`` in notebooks).

    Raises
    ------
    GridkitError
        For an unknown language or datum, or a precision outside 0..15.

    Examples
    --------
    >>> o = MapOptions(lang="en", tiles="none")
    >>> o.tiles is None, o.L["coverage"]
    (True, 'Grid coverage')
    >>> o.merged(title="Zhuzhou").title
    'Zhuzhou'
    >>> o.merged(colour="red")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gridkit.maps.options.UnknownOptionError: unknown map option 'colour'.
    Hint: Map options are: title, period, lang, tiles, ...
    """

    title: str | None = None
    period: str | None = None
    lang: str = "zh"
    tiles: Tiles = None
    tiles_attr: str | None = None
    tiles_datum: str = "wgs84"
    offline: bool = True
    asset_base_url: str | None = None
    precision: int = 6
    simplify_m: float | None = None
    prefer_canvas: bool | None = None
    height: str = "100%"

    def __post_init__(self) -> None:
        labels(self.lang)  # fail early on an unknown language
        if isinstance(self.tiles, str) and self.tiles.strip().lower() in ("", "none"):
            object.__setattr__(self, "tiles", None)
        if self.tiles_datum not in _DATUMS:
            raise GridkitError(
                f"Unknown tiles_datum {self.tiles_datum!r}.",
                hint="Use 'wgs84' (OpenStreetMap, most intranet servers) or 'gcj02' "
                "(AMap, Tencent and other Chinese web tiles).",
            )
        if self.precision < 0 or self.precision > 15:
            raise GridkitError(f"precision must be 0..15 decimals, got {self.precision}.")

    @property
    def L(self) -> dict[str, str]:  # the label table, read as L["unit"]
        """The label table of :attr:`lang`."""
        return labels(self.lang)

    def merged(self, **overrides: Any) -> MapOptions:
        """A copy with ``overrides`` applied (checked like the constructor's arguments).

        Raises
        ------
        UnknownOptionError
            For a keyword that is not a field (the message lists the fields).

        Examples
        --------
        >>> MapOptions().merged(lang="en", offline=False).offline
        False
        """
        fields = [f.name for f in dataclasses.fields(self)]
        unknown = [k for k in overrides if k not in fields]
        if unknown:
            raise UnknownOptionError(
                f"unknown map option {unknown[0]!r}.",
                hint=f"Map options are: {', '.join(fields)} (see gridkit.maps.MapOptions).",
            )
        return dataclasses.replace(self, **overrides) if overrides else self


def resolve(options: MapOptions | None, overrides: Mapping[str, Any]) -> MapOptions:
    """The options a map function works with: ``options`` (or the defaults) with the
    keyword ``overrides`` applied."""
    return (options if options is not None else MapOptions()).merged(**overrides)
