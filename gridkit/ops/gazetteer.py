"""Offline address matching: hotline addresses to admin areas, communities and buildings.

A 12345 ticket often carries only an address ("荷塘区桂花街道西塘社区3栋"). A
:class:`Gazetteer` is built from the workspace's own layers (admin area names, community
names, building names or addresses when the buildings layer has them), and
:func:`match_addresses` finds in each address the deepest place it names, with a
confidence:

- a full name found (``西塘社区``) counts 0.8, a name without its suffix (``西塘``) 0.6;
- each larger place also named in the address that contains the candidate adds 0.1
  (``桂花街道`` and ``荷塘区`` around ``西塘社区``), up to 1.0;
- a larger place named by its full name in the address that does NOT contain the
  candidate takes 0.3 off (a same-named community of another district); a name read
  two ways (two townships called 东湾镇) speaks against only when neither holds it;
- a short form followed by 路, 街, 巷 ... is a street, not a place (建设路 is not
  建设街道);
- several equally good candidates share the confidence (``和平村`` in two townships).

Matches under ``min_confidence`` are flagged ``review``: they go to a review queue, not
straight into a case. Nothing leaves the machine (no geocoding service).

Examples
--------
>>> import pandas as pd
>>> admin = pd.DataFrame({"admin_code": ["430202", "430202001", "430202001001"],
...                       "name": ["荷塘区", "桂花街道", "西塘社区"],
...                       "level": ["county", "township", "village"]})
>>> gaz = Gazetteer.from_layers(admin_areas=admin)
>>> m = match_addresses(["荷塘区桂花街道西塘社区5栋楼下路灯不亮", "某某路口"], gaz)
>>> m[["name", "admin_code", "confidence", "review"]].values.tolist()
[['西塘社区', '430202001001', 1.0, False], [None, None, 0.0, True]]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit import codes
from gridkit.crs import to_wgs84
from gridkit.errors import GridkitError

__all__ = ["Gazetteer", "GazetteerError", "match_addresses"]

#: how deep each kind of place lies (a deeper match wins over a shallower one)
RANK = {"city": 0, "county": 1, "township": 2, "village": 3, "community": 4, "building": 5}
#: suffixes a caller may leave out (longest first): 西塘社区 is also found as 西塘
SUFFIXES = (
    "社区居委会",
    "街道办事处",
    "村委会",
    "居委会",
    "社区",
    "街道",
    "小区",
    "村",
    "镇",
    "乡",
    "区",
    "县",
    "市",
)
FULL, SHORT, SUPPORT, CONFLICT = 0.8, 0.6, 0.1, 0.3
STREET = "路街巷道桥弄里"  # after a short form: a street's name, not the place's
MAX_ADDRESS = 120  # characters of an address looked at (a ticket's address, not its story)


class GazetteerError(GridkitError, ValueError):
    """A gazetteer cannot be built from the layers given."""


def _short(name: pd.Series) -> pd.Series:
    """Names without their suffix, where at least two characters remain (else None)."""
    out = pd.Series(None, index=name.index, dtype=object)
    for suffix in SUFFIXES:  # a loop over 13 suffixes, each vectorised over the names
        todo = out.isna() & name.str.endswith(suffix) & (name.str.len() >= len(suffix) + 2)
        out[todo] = name[todo].str.slice(0, -len(suffix))
    return out


def _clean(text: pd.Series) -> pd.Series:
    """NFKC (full-width digits and letters), no spaces, at most MAX_ADDRESS characters."""
    s = text.astype("string").fillna("").str.normalize("NFKC")
    return s.str.replace(r"\s+", "", regex=True).str.slice(0, MAX_ADDRESS).astype(object)


@dataclass(frozen=True)
class Gazetteer:
    """Place names of a workspace, each with its kind, id and admin code.

    ``entries`` has one row per place: ``name``, ``short`` (the name without its
    suffix), ``kind`` (city ... village, community, building), ``ref_id``,
    ``admin_code``, ``community_id`` and ``lon``/``lat`` (a point inside the place,
    WGS84, NaN when unknown). Build it with :meth:`from_layers`.

    Examples
    --------
    >>> import pandas as pd
    >>> communities = pd.DataFrame({"community_id": ["C1"], "name": ["西塘社区"],
    ...                             "admin_code": ["430202001001"]})
    >>> Gazetteer.from_layers(communities=communities).entries[["name", "short", "kind"]
    ...                                                        ].values.tolist()
    [['西塘社区', '西塘', 'community']]
    """

    entries: pd.DataFrame

    @classmethod
    def from_layers(
        cls,
        *,
        admin_areas: pd.DataFrame | None = None,
        communities: pd.DataFrame | None = None,
        buildings: pd.DataFrame | None = None,
    ) -> Gazetteer:
        """Names from the workspace's admin areas, communities and buildings.

        Buildings take part when they have a ``name`` or ``address`` column (e.g.
        ``3栋``, ``桂花苑5栋``) and a ``community_id``; their point is the footprint's
        representative point.

        Examples
        --------
        >>> import pandas as pd
        >>> admin = pd.DataFrame({"admin_code": ["430202"], "name": ["荷塘区"],
        ...                       "level": ["county"]})
        >>> len(Gazetteer.from_layers(admin_areas=admin).entries)
        1
        >>> Gazetteer.from_layers()
        Traceback (most recent call last):
        ...
        gridkit.ops.gazetteer.GazetteerError: no place names in the layers given.
        Hint: The workspace's admin_areas (name, admin_code, level) are enough.
        """
        parts = [
            _admin_entries(admin_areas),
            _community_entries(communities),
            _building_entries(buildings, communities),
        ]
        parts = [p for p in parts if p is not None and len(p)]
        if not parts:
            raise GazetteerError(
                "no place names in the layers given.",
                hint="The workspace's admin_areas (name, admin_code, level) are enough.",
            )
        entries = pd.concat(parts, ignore_index=True)
        entries["name"] = _clean(entries["name"])
        entries = entries[entries["name"].str.len() >= 2].reset_index(drop=True)
        entries["short"] = _short(entries["name"])
        return cls(entries)


def _point_lonlat(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    n = len(frame)
    if not isinstance(frame, gpd.GeoDataFrame) or frame.crs is None:
        return np.full(n, np.nan), np.full(n, np.nan)
    geoms = np.asarray(to_wgs84(frame).geometry.array)
    pts = shapely.point_on_surface(geoms)
    return shapely.get_x(pts), shapely.get_y(pts)


def _admin_entries(admin: pd.DataFrame | None) -> pd.DataFrame | None:
    if admin is None or "name" not in admin.columns:
        return None
    lon, lat = _point_lonlat(admin)
    code = codes.normalise(admin["admin_code"].astype(str)).to_numpy(dtype=object)
    return pd.DataFrame(
        {
            "name": admin["name"].to_numpy(dtype=object),
            "kind": admin["level"].astype(str).to_numpy(dtype=object),
            "ref_id": code,
            "admin_code": code,
            "community_id": None,
            "lon": lon,
            "lat": lat,
        }
    )


def _community_entries(communities: pd.DataFrame | None) -> pd.DataFrame | None:
    if communities is None or "name" not in communities.columns:
        return None
    lon, lat = _point_lonlat(communities)
    ids = communities["community_id"].astype(str).to_numpy(dtype=object)
    return pd.DataFrame(
        {
            "name": communities["name"].to_numpy(dtype=object),
            "kind": "community",
            "ref_id": ids,
            "admin_code": codes.normalise(communities["admin_code"].astype(str)).to_numpy(
                dtype=object
            ),
            "community_id": ids,
            "lon": lon,
            "lat": lat,
        }
    )


def _building_entries(
    buildings: pd.DataFrame | None, communities: pd.DataFrame | None
) -> pd.DataFrame | None:
    if buildings is None or "community_id" not in buildings.columns:
        return None
    col = next((c for c in ("name", "address") if c in buildings.columns), None)
    if col is None:
        return None
    named = buildings[buildings[col].notna().to_numpy()]
    lon, lat = _point_lonlat(named)
    admin = None
    if communities is not None:
        admin = pd.Series(
            communities["admin_code"].astype(str).to_numpy(),
            index=communities["community_id"].astype(str).to_numpy(),
        )
    cid = named["community_id"].astype(str)
    return pd.DataFrame(
        {
            "name": named[col].astype(str).to_numpy(dtype=object),
            "kind": "building",
            "ref_id": named["building_id"].astype(str).to_numpy(dtype=object),
            "admin_code": None if admin is None else cid.map(admin).to_numpy(dtype=object),
            "community_id": cid.to_numpy(dtype=object),
            "lon": lon,
            "lat": lat,
        }
    )


def _found(addr: pd.Series, keys: pd.Series) -> pd.DataFrame:
    """Every span of every address that is a key: ``addr`` (position), ``start``,
    ``length``, ``key``. A loop over key lengths and start positions (bounded by
    MAX_ADDRESS), each step vectorised over the addresses."""
    keyset = set(keys)
    lengths = addr.str.len().to_numpy()
    hits = []
    for k in sorted({len(x) for x in keyset}, reverse=True):
        for start in range(0, max(int(lengths.max(initial=0)) - k + 1, 0)):
            sub = addr.str.slice(start, start + k)
            ok = (lengths >= start + k) & sub.isin(keyset).to_numpy()
            if ok.any():
                pos = np.flatnonzero(ok)
                hits.append(
                    pd.DataFrame(
                        {"addr": pos, "start": start, "length": k, "key": sub.to_numpy()[pos]}
                    )
                )
    if not hits:
        return pd.DataFrame({"addr": [], "start": [], "length": [], "key": []})
    found = pd.concat(hits, ignore_index=True)
    # a span inside a longer span of the same address is not a name of its own
    # (西塘 inside 西塘社区): a self-join per address, few spans each
    pairs = found.reset_index().merge(found, on="addr", suffixes=("", "_o"))
    inner = (
        (pairs["start"] >= pairs["start_o"])
        & (pairs["start"] + pairs["length"] <= pairs["start_o"] + pairs["length_o"])
        & (pairs["length"] < pairs["length_o"])
    )
    return found.drop(index=pairs.loc[inner, "index"].unique())


def _next_char(addr: pd.Series, found: pd.DataFrame) -> np.ndarray:
    """The character after each span ('' at the end): one vectorised slice per end
    position (bounded by MAX_ADDRESS)."""
    end = (found["start"] + found["length"]).to_numpy(dtype=int)
    rows = found["addr"].to_numpy(dtype=int)
    out = np.full(len(found), "", dtype=object)
    for e in np.unique(end):
        at = end == e
        out[at] = addr.iloc[rows[at]].str.slice(int(e), int(e) + 1).to_numpy(dtype=object)
    return out


def _candidates(found: pd.DataFrame, entries: pd.DataFrame, addr: pd.Series) -> pd.DataFrame:
    """Each span joined to the places it names (full name or short form). A short form
    followed by 路, 街, 巷 ... names a street (建设路 is not 建设街道)."""
    e = entries.reset_index(names="entry")
    full = found.merge(e, left_on="key", right_on="name").assign(base=FULL)
    street = pd.Series(_next_char(addr, found)).isin(list(STREET)).to_numpy()
    short = found[~street].merge(e.dropna(subset=["short"]), left_on="key", right_on="short")
    cand = pd.concat([full, short.assign(base=SHORT)], ignore_index=True)
    cand["rank"] = cand["kind"].map(RANK).fillna(3).astype(int)
    # the same place found by its full name and its short form counts once, as full
    return cand.sort_values("base", ascending=False).drop_duplicates(["addr", "entry"])


def _scored(cand: pd.DataFrame) -> pd.DataFrame:
    """``score`` per candidate: its base, plus support of the places around it named
    in the same address, less the conflicts."""
    pairs = cand.merge(cand, on="addr", suffixes=("", "_o"))
    # places named elsewhere in the address (another span), not the same name's
    # other readings (a village and a community both called 西塘社区)
    other = (pairs["rank_o"] < pairs["rank"]) & (pairs["start_o"] != pairs["start"])
    pairs = pairs[other.to_numpy()]
    if len(pairs):
        is_community = pairs["kind_o"] == "community"
        inside = np.where(
            is_community,
            (pairs["community_id"] == pairs["ref_id_o"]).to_numpy(),
            codes.in_scope(
                pairs["admin_code"].reset_index(drop=True),
                pairs["admin_code_o"].reset_index(drop=True),
            ).to_numpy(dtype=bool),
        )
        # a span read several ways (two townships named 东湾镇) supports the candidate
        # when one reading contains it; it conflicts only when none does, and only
        # when it is a full name (a short form is too weak to speak against)
        span = (
            pairs.assign(inside=inside, full=pairs["base_o"] == FULL)
            .groupby(["addr", "entry", "start_o"])[["inside", "full"]]
            .max()
        )
        span["against"] = ~span["inside"] & span["full"]
        per = span.groupby(level=["addr", "entry"]).agg(
            support=("inside", "sum"), conflict=("against", "sum")
        )
        cand = cand.join(per, on=["addr", "entry"])
    else:
        cand = cand.assign(support=0, conflict=0)
    support = cand["support"].fillna(0).astype(float)
    conflict = (cand["conflict"].fillna(0) > 0).astype(float)
    cand["score"] = (cand["base"] + SUPPORT * support - CONFLICT * conflict).clip(0, 1)
    return cand


def match_addresses(
    addresses: Iterable[object] | pd.Series,
    gazetteer: Gazetteer,
    *,
    min_confidence: float = 0.7,
) -> pd.DataFrame:
    """The place each address names, with a confidence and a ``review`` flag.

    Parameters
    ----------
    addresses
        Address texts (a Series keeps its index; None and empty give no match).
    gazetteer
        Place names of the workspace (:meth:`Gazetteer.from_layers`).
    min_confidence
        Matches below it are flagged ``review`` (a person confirms the place).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``addresses``: ``kind``, ``ref_id``, ``name``, ``admin_code``,
        ``community_id``, ``lon``/``lat`` (a point inside a matched building, NaN
        otherwise), ``confidence`` (0 to 1), ``candidates`` (how many places tied)
        and ``review``.

    Examples
    --------
    Two villages named 和平村 in two townships: the township in the address decides.

    >>> import pandas as pd
    >>> admin = pd.DataFrame({
    ...     "admin_code": ["430211001", "430211002", "430211001003", "430211002004"],
    ...     "name": ["马家河街道", "白关镇", "和平村", "和平村"],
    ...     "level": ["township", "township", "village", "village"]})
    >>> gaz = Gazetteer.from_layers(admin_areas=admin)
    >>> m = match_addresses(["白关镇和平村三组", "和平村"], gaz)
    >>> m[["admin_code", "confidence", "candidates", "review"]].values.tolist()
    [['430211002004', 0.9, 1, False], ['430211001003', 0.4, 2, True]]
    """
    index = addresses.index if isinstance(addresses, pd.Series) else None
    addr = _clean(pd.Series(list(addresses), dtype=object)).reset_index(drop=True)
    out = pd.DataFrame(
        {
            "kind": None,
            "ref_id": None,
            "name": None,
            "admin_code": None,
            "community_id": None,
            "lon": np.nan,
            "lat": np.nan,
            "confidence": 0.0,
            "candidates": 0,
            "review": True,
        },
        index=addr.index,
    )
    e = gazetteer.entries
    keys = pd.concat([e["name"], e["short"].dropna()]).drop_duplicates()
    found = _found(addr, keys) if len(addr) else pd.DataFrame()
    if len(found):
        cand = _scored(_candidates(found, e, addr))
        # the deepest place found wins; among them the best score, ties shared
        cand["key_rank"] = cand["rank"] + cand["score"] * 0.5  # 0.5: a deeper weak match
        best = cand.groupby("addr")["key_rank"].transform("max")
        top = cand[(cand["key_rank"] >= best - 1e-9).to_numpy()]
        ties = top.groupby("addr")["entry"].transform("nunique")
        top = top.assign(candidates=ties).drop_duplicates("addr")
        pos = top["addr"].to_numpy(dtype=int)
        for col in ("kind", "ref_id", "name", "admin_code", "community_id", "lon", "lat"):
            out.loc[pos, col] = top[col].to_numpy()
        conf = (top["score"] / top["candidates"]).round(3).to_numpy()
        out.loc[pos, "confidence"] = conf
        out.loc[pos, "candidates"] = top["candidates"].to_numpy()
    out["review"] = (out["confidence"] < min_confidence).to_numpy()
    out["candidates"] = out["candidates"].astype(int)
    out["confidence"] = out["confidence"].astype(float)
    if index is not None:
        out.index = index
    return out
