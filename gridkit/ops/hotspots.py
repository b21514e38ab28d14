"""Where reported problems cluster: counts and rates per unit, Getis-Ord Gi*, hex bins.

Rates are per km for river reaches and water bodies (``length_m``) and per 100
households for community grids. A raw rate is unstable where the exposure is small
(one report in a grid of 5 households is 20 per 100 households), so hotspots run on
an empirical-Bayes smoothed rate (``rate_eb``, Marshall's global method, as
``esda.smoothing.Empirical_Bayes``): each unit's rate is pulled towards the overall
rate of its kind (per km or per 100 households) the more, the smaller its exposure.
Gi* (``esda.G_Local`` with ``star=True``) runs on
unit contiguity (queen, from libpysal) with conditional permutation p-values, made
two-sided (``gi_p = 2 * p_sim``, capped at 1) so that about ``alpha`` of units are
flagged on spatially random data.

Examples
--------
>>> import geopandas as gpd, numpy as np
>>> from gridkit.synth.ops import grid_units
>>> units = grid_units(6, 6)
>>> rng = np.random.default_rng(0)
>>> x, y = rng.uniform(113.10, 113.11, 120), rng.uniform(27.80, 27.81, 120)  # a 2 x 2 block
>>> pts = gpd.GeoDataFrame({"category": ["cctv"] * 120}, geometry=gpd.points_from_xy(x, y),
...                        crs=4326)
>>> hs = hotspots(pts, units, permutations=99, seed=1)
>>> hs.loc[[0, 1, 6, 7], "count"].tolist(), hs.loc[[0, 1, 6, 7], "hotspot"].tolist()
([18, 38, 35, 29], ['hot-95', 'hot-95', 'hot-95', 'hot-95'])
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import like_input, local_metric_crs, result_crs, to_wgs84
from gridkit.errors import GridkitWarning, InvalidLayerError, import_quietly
from gridkit.layers import WATER_KINDS
from gridkit.ops.locate import NEAREST_WITHIN_M, locate
from gridkit.ops.times import utc_scalar, utc_series

__all__ = [
    "CLASSES",
    "GiGlobals",
    "eb_rates",
    "gi_star",
    "hex_density",
    "hotspot_values",
    "hotspots",
    "queen_neighbours",
    "recurring_hotspots",
    "unit_draws",
    "unit_rates",
]

CLASSES = ("hot-99", "hot-95", "hot-90", "not significant", "cold-90", "cold-95", "cold-99")


def _filter(
    reports: pd.DataFrame, category: str | list[str] | None, start: object, end: object
) -> pd.DataFrame:
    out = reports
    if category is not None:
        cats = [category] if isinstance(category, str) else list(category)
        out = out[out["category"].isin(cats)]
    if (start is not None or end is not None) and "reported_at" not in out:
        raise InvalidLayerError("reports need 'reported_at' to filter by start/end.")
    if start is not None:
        out = out[(utc_series(out["reported_at"]) >= utc_scalar(start)).to_numpy()]
    if end is not None:
        out = out[(utc_series(out["reported_at"]) < utc_scalar(end)).to_numpy()]
    if "duplicate_of" in out:
        out = out[out["duplicate_of"].isna().to_numpy()]  # a problem is counted once
    return out


def unit_rates(
    reports: pd.DataFrame,
    units: gpd.GeoDataFrame,
    *,
    category: str | list[str] | None = None,
    start: object = None,
    end: object = None,
    max_distance_m: float | None = NEAREST_WITHIN_M,
) -> gpd.GeoDataFrame:
    """Report counts and rates per unit.

    Reports are counted in their ``unit_id`` (or located with :func:`gridkit.locate`
    when they have none: in the unit holding them, else the nearest within
    ``max_distance_m``, 500 m by default; reports farther from every unit are not
    counted, with a :class:`~gridkit.GridkitWarning`); linked duplicates are counted
    once.

    Returns
    -------
    geopandas.GeoDataFrame
        ``units`` (same index and CRS) plus ``count``, ``exposure`` (km or hundreds of
        households), ``rate`` (per km / per 100 households; NaN without exposure) and
        ``rate_eb`` (empirical-Bayes smoothed rate, see :func:`eb_rates`).

    Examples
    --------
    Two river reaches of ~490 m (rates per km) and two community grids (per 100
    households):

    >>> import pandas as pd
    >>> from gridkit.synth.ops import grid_units
    >>> units = grid_units(2, 2, river_rows=1)
    >>> reports = pd.DataFrame({"unit_id": ["430202001000000"] * 2 + ["430202001000003"]})
    >>> rates = unit_rates(reports, units)
    >>> rates[["kind", "count", "exposure", "rate"]].round(2).values.tolist()
    ... # doctest: +NORMALIZE_WHITESPACE
    [['river_reach', 2, 0.49, 4.06], ['river_reach', 0, 0.49, 0.0],
     ['community_grid', 0, 2.43, 0.0], ['community_grid', 1, 1.66, 0.6]]
    >>> rates["rate_eb"].round(2).tolist()  # pulled towards each kind's overall rate
    [2.03, 2.03, 0.24, 0.24]
    """
    sel = _filter(reports, category, start, end)
    if "unit_id" not in sel or sel["unit_id"].isna().any():
        placed = (
            locate(sel, units, max_distance_m=max_distance_m)["unit_id"]
            if len(sel)
            else pd.Series([], dtype="string")
        )
        if "unit_id" in sel:
            placed = sel["unit_id"].astype("string").fillna(placed)
    else:
        placed = sel["unit_id"]
    counts = pd.Series(placed).value_counts()
    out = units.copy()
    out["count"] = out["unit_id"].map(counts).fillna(0).astype("int64").to_numpy()
    kind = (
        out["kind"].astype(str) if "kind" in out else pd.Series("community_grid", index=out.index)
    )
    by_length = kind.isin(WATER_KINDS).to_numpy()
    length_km = (
        pd.to_numeric(out["length_m"], errors="coerce").to_numpy(dtype=float) / 1000
        if "length_m" in out
        else np.full(len(out), np.nan)
    )
    if "length_m" not in out or np.isnan(length_km[by_length]).any():
        metric = out.to_crs(local_metric_crs(out)).geometry
        fallback = shapely.length(np.asarray(metric.array)) / 2 / 1000  # half the perimeter
        length_km = np.where(np.isnan(length_km), fallback, length_km)
    hh = (
        pd.to_numeric(out["households"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        if "households" in out
        else np.full(len(out), np.nan)
    )
    exposure = np.where(by_length, length_km, hh / 100)
    out["exposure"] = exposure
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rate"] = np.where(exposure > 0, out["count"] / exposure, np.nan)
    count = out["count"].to_numpy(dtype=float)
    smooth = np.full(len(out), np.nan)
    for group in (by_length, ~by_length):  # per km and per 100 households apart
        smooth[group] = eb_rates(count[group], exposure[group])
    out["rate_eb"] = smooth
    return out


def eb_rates(count: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    """Empirical-Bayes smoothed rates (Marshall 1991, global method).

    With ``b`` the overall rate (sum of counts over sum of exposures) and ``a`` the
    variance of the true rates between units (the exposure-weighted variance of the
    raw rates less the Poisson part ``b / mean exposure``, at least 0), each rate
    becomes ``w * count / exposure + (1 - w) * b`` with ``w = a / (a + b / exposure)``:
    units with a small exposure are pulled towards ``b``. Units without exposure
    (0 or NaN) get ``b``; with no exposure at all the result is NaN.

    Examples
    --------
    >>> eb_rates(np.array([1, 10, 10, 0]), np.array([0.05, 5.0, 5.0, 5.0])).round(2).tolist()
    [2.45, 1.91, 1.91, 0.2]
    """
    count = np.asarray(count, dtype=float)
    exposure = np.asarray(exposure, dtype=float)
    ok = np.isfinite(exposure) & (exposure > 0) & np.isfinite(count)
    out = np.full(len(count), np.nan)
    if not ok.any():
        return out
    n, e = exposure[ok], count[ok]
    b = e.sum() / n.sum()
    r = e / n
    a = max(float(np.sum(n * (r - b) ** 2) / n.sum() - b / n.mean()), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(a > 0, a / (a + b / n), 0.0)
    out[ok] = w * r + (1 - w) * b
    out[~ok] = b
    return out


def hotspots(
    reports: pd.DataFrame,
    units: gpd.GeoDataFrame,
    *,
    category: str | list[str] | None = None,
    start: object = None,
    end: object = None,
    value: str = "rate",
    permutations: int = 999,
    seed: int | None = 12345,
    weights: object = None,
    draws: str = "esda",
    max_distance_m: float | None = NEAREST_WITHIN_M,
) -> gpd.GeoDataFrame:
    """Hot and cold spots of reports per unit: Getis-Ord Gi* with permutation p-values.

    Parameters
    ----------
    reports
        The ``reports`` layer (points and/or ``unit_id``).
    units
        The ``units`` layer.
    category
        Only these categories.
    start, end
        Only reports with ``start <= reported_at < end`` (UTC).
    value
        ``"rate"`` (default): the empirical-Bayes smoothed rate ``rate_eb``, robust to
        units with a tiny exposure (see :func:`eb_rates`); ``"raw_rate"``: the raw
        rate (units without exposure count as 0); ``"count"``.
    permutations
        Conditional permutations for ``gi_p`` (999 gives p down to 0.002 two-sided).
    seed
        Seed of the permutations (same seed, same p-values).
    weights
        A libpysal ``W`` to use instead of queen contiguity of the units.
    draws
        ``"esda"`` (default): esda's conditional permutations (one random matrix shared
        by all units, so a unit's p-value depends on every unit's position);
        ``"unit"``: :func:`gi_star`, permutations seeded per unit (a unit's answer
        depends only on the seed, its id, its neighbours and the global values), so
        Gi* can run per partition with the same answer
        (:func:`gridkit.scale.ops.hotspots_partitioned`). ``gi_z`` is the same formula
        in both.
    max_distance_m
        Reports without a ``unit_id`` and outside every unit count in the nearest unit
        within this distance (500 m); farther ones are not counted (a
        :class:`~gridkit.GridkitWarning` says how many). ``None``: the nearest unit,
        however far.

    Returns
    -------
    geopandas.GeoDataFrame
        ``units`` (same index and CRS, whatever the reports' CRS) plus ``count``,
        ``exposure``, ``rate``, ``rate_eb``, ``gi_z``, ``gi_p`` (two-sided pseudo
        p-value) and ``hotspot``: ``hot-99`` / ``hot-95`` / ``hot-90`` when ``gi_z > 0``
        and ``gi_p`` is at most 0.01 / 0.05 / 0.10,
        ``cold-*`` likewise for ``gi_z < 0``, else ``not significant``.

    Examples
    --------
    120 reports in a 2 x 2 block of a 6 x 6 grid: the block is hot, the empty rest
    cold.

    >>> import geopandas as gpd, numpy as np
    >>> from gridkit.synth.ops import grid_units
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.uniform(113.10, 113.11, 120), rng.uniform(27.80, 27.81, 120)
    >>> pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=4326)
    >>> hs = hotspots(pts, grid_units(6, 6), value="count", permutations=99, seed=1)
    >>> hs.loc[[0, 1, 6, 7], "count"].tolist(), hs.loc[[0, 1, 6, 7], "hotspot"].tolist()
    ([18, 38, 35, 29], ['hot-95', 'hot-95', 'hot-95', 'hot-95'])
    >>> hs["hotspot"].value_counts().to_dict()
    {'cold-95': 27, 'not significant': 5, 'hot-95': 4}
    """
    # Heavy (the PySAL stack, slow to import) and needed only here: loaded on first use,
    # so that importing gridkit.ops stays fast; quietly (tqdm's notebook warning).
    esda = import_quietly("esda")
    from libpysal.weights import Queen

    out = unit_rates(
        reports, units, category=category, start=start, end=end, max_distance_m=max_distance_m
    )
    y = hotspot_values(out, value)
    if len(out) < 3 or np.all(y == y[0]):
        out["gi_z"] = 0.0
        out["gi_p"] = 1.0
        out["hotspot"] = "not significant"
        return out
    if draws not in ("esda", "unit"):
        raise ValueError(f"draws={draws!r}: use 'esda' or 'unit'.")
    if weights is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # libpysal warns about islands; we report them
            w = Queen.from_dataframe(
                out.reset_index(drop=True), use_index=False, silence_warnings=True
            )
    else:
        w = weights
    if w.islands:
        warnings.warn(
            f"{len(w.islands)} unit(s) touch no other unit; their Gi* uses only themselves "
            f"(e.g. {out['unit_id'].iloc[w.islands[0]]}).",
            GridkitWarning,
            stacklevel=2,
        )
    if draws == "unit":
        keys = out["unit_id"].astype(str).to_numpy()
        z, p = gi_star(
            y,
            _neighbours_of(w, keys),
            keys,
            stats=GiGlobals.of(y),
            permutations=permutations,
            seed=seed,
        )
    else:
        z, p = _esda_gi(esda, y, w, permutations, seed)
    out["gi_z"] = z
    out["gi_p"] = p
    out["hotspot"] = classify(z, p)
    return out


def _esda_gi(esda, y: np.ndarray, w, permutations: int, seed) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)  # disconnected components: fine here
        # esda warns that its default alternative will change; we double the directed
        # (folded) p_sim ourselves, which is what the two-sided option will return.
        warnings.simplefilter("ignore", DeprecationWarning)
        g = esda.G_Local(
            y,
            w,
            transform="B",
            star=True,
            permutations=permutations,
            seed=seed,
            n_jobs=1,
            keep_simulations=False,
        )
    z = np.asarray(g.Zs, dtype=float)
    p = np.minimum(1.0, 2 * np.asarray(g.p_sim, dtype=float)) if permutations else 2 * g.p_norm
    return z, p


def hotspot_values(rates: pd.DataFrame, value: str = "rate") -> np.ndarray:
    """The values Gi* runs on, from :func:`unit_rates`' table (NaN as 0).

    Examples
    --------
    >>> hotspot_values(pd.DataFrame({"count": [1, 2], "rate": [np.nan, 3.0],
    ...                              "rate_eb": [0.5, 2.5]}), "raw_rate").tolist()
    [0.0, 3.0]
    """
    column = {"rate": "rate_eb", "raw_rate": "rate", "count": "count"}.get(value)
    if column is None:
        raise ValueError(f"value={value!r}: use 'rate', 'raw_rate' or 'count'.")
    return np.nan_to_num(rates[column].to_numpy(dtype=float), nan=0.0)


@dataclass(frozen=True)
class GiGlobals:
    """What Gi* needs of the whole study area, whatever slice of units is scored:
    the number of units, the sum and sum of squares of their values (the global mean
    and variance of the z-score) and all values sorted (the pool conditional
    permutations draw from).

    Examples
    --------
    >>> g = GiGlobals.of(np.array([3.0, 1.0, 2.0]))
    >>> g.n, g.total, g.total_sq, g.pool.tolist()
    (3, 6.0, 14.0, [1.0, 2.0, 3.0])
    """

    n: int
    total: float
    total_sq: float
    pool: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> GiGlobals:
        """The globals of ``values`` (every unit's)."""
        y = np.asarray(values, dtype=float)
        return cls(len(y), float(np.sum(y)), float(np.sum(y * y)), np.sort(y))


def queen_neighbours(units: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Queen contiguity of ``units`` (libpysal, shared vertices) as ``(indptr,
    indices)``: the neighbours of row ``r`` are ``indices[indptr[r]:indptr[r + 1]]``
    (positions, self excluded), each row's sorted by ``unit_id``.

    Examples
    --------
    >>> from gridkit.synth.ops import grid_units
    >>> indptr, indices = queen_neighbours(grid_units(3, 3))
    >>> np.diff(indptr).tolist()
    [3, 5, 3, 5, 8, 5, 3, 5, 3]
    """
    from libpysal.weights import Queen

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = Queen.from_dataframe(
            units.reset_index(drop=True), use_index=False, silence_warnings=True
        )
    return _neighbours_of(w, units["unit_id"].astype(str).to_numpy())


def _neighbours_of(w, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A libpysal ``W`` (positions as ids) as CSR rows sorted by the neighbours' keys."""
    sparse = w.sparse.tocoo()
    row, col = sparse.row.astype(np.int64), sparse.col.astype(np.int64)
    keep = row != col
    row, col = row[keep], col[keep]
    order = np.lexsort((keys[col], row))
    row, col = row[order], col[order]
    indptr = np.zeros(len(keys) + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=len(keys)), out=indptr[1:])
    return indptr, col


def gi_star(
    values: np.ndarray,
    neighbours: tuple[np.ndarray, np.ndarray],
    keys: np.ndarray,
    *,
    stats: GiGlobals,
    permutations: int = 999,
    seed: int | None = 12345,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Getis-Ord Gi* (binary weights, self included) of the ``rows`` of a slice of
    units, with the study area's ``stats``: ``(gi_z, gi_p)``.

    ``gi_z`` is esda's analytic z-score (mean and variance from ``stats``). ``gi_p``
    is two-sided (2 x the folded pseudo p-value, capped at 1) from ``permutations``
    conditional permutations: unit ``i`` keeps its value and draws as many values as
    it has neighbours, without replacement, from ``stats.pool`` less one copy of its
    own, with random numbers that are a hash of ``(seed, keys[i], permutation,
    draw)`` (splitmix64 over pandas' stable string hash). A unit's answer depends
    only on its own value and key, its neighbours' values and ``stats``: any slice
    holding its neighbours (a partition and its halo) gives it bit for bit.
    Neighbour values are added in the order given (:func:`queen_neighbours` sorts
    them by key). Vectorised over units x permutations, in chunks.

    Examples
    --------
    A chain of six units (each touching the next), high values at one end:

    >>> y = np.array([9.0, 8.0, 1.0, 0.0, 1.0, 0.0])
    >>> indptr = np.array([0, 1, 3, 5, 7, 9, 10])
    >>> indices = np.array([1, 0, 2, 1, 3, 2, 4, 3, 5, 4])
    >>> keys = np.array(["a", "b", "c", "d", "e", "f"])
    >>> z, p = gi_star(y, (indptr, indices), keys, stats=GiGlobals.of(y), permutations=99)
    >>> z.round(2).tolist()
    [2.22, 1.67, -0.1, -1.47, -1.67, -1.11]
    >>> z2, p2 = gi_star(y, (indptr, indices), keys, stats=GiGlobals.of(y), permutations=99,
    ...                  rows=np.array([1]))
    >>> bool(z2[0] == z[1] and p2[0] == p[1])
    True
    """
    y = np.asarray(values, dtype=float)
    indptr, indices = neighbours
    rows = np.arange(len(y)) if rows is None else np.asarray(rows, dtype=np.int64)
    count = (indptr[rows + 1] - indptr[rows]).astype(np.int64)
    width = int(count.max()) if len(rows) else 0
    slot = np.arange(width)
    take = np.minimum(indptr[rows][:, None] + slot, max(len(indices) - 1, 0))
    nb = np.where(slot < count[:, None], y[indices[take]] if len(indices) else 0.0, 0.0)
    observed = _star_sums(y[rows], nb, count) / stats.total
    n = stats.n
    mean = stats.total / n
    var = stats.total_sq / n - mean**2
    card = count + 1.0
    expected = card / n
    variance = card * (n - card) / (n - 1) / n**2 * var / mean**2
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (observed - expected) / np.sqrt(variance)
    if not permutations:
        from scipy import stats as sstats

        return z, np.minimum(1.0, 2 * sstats.norm.sf(np.abs(z)))
    larger = _larger(y[rows], keys[rows], count, observed, stats, permutations, seed)
    folded = np.minimum(larger, permutations - larger)
    return z, np.minimum(1.0, 2 * (folded + 1) / (permutations + 1))


def _star_sums(own: np.ndarray, values: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``own + values[:, 0] + values[:, 1] + ...`` over the first ``count`` columns, added
    left to right (so that every slice adds a unit's terms in the same order)."""
    acc = np.array(own, dtype=float)
    for t in range(values.shape[1]):  # a loop over draw slots (at most ~10 for queen)
        acc = acc + np.where(t < count, values[:, t], 0.0)
    return acc


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix(z: np.ndarray) -> np.ndarray:
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def unit_draws(
    keys: np.ndarray, seed: int | None, permutations: int, width: int, n: int
) -> np.ndarray:
    """Rank of each draw among the pool still open: ``(units, permutations, width)``;
    draw ``t`` picks rank ``floor(u * (n - 1 - t))`` of the ``n - 1 - t`` values left,
    ``u`` uniform in [0, 1) from the hash of ``(seed, key, permutation, t)``.

    Examples
    --------
    >>> d = unit_draws(np.array(["a", "b"]), 7, 3, 2, 10)
    >>> d.shape, bool((d[:, :, 0] < 9).all() and (d[:, :, 1] < 8).all())
    ((2, 3, 2), True)
    >>> bool((unit_draws(np.array(["b"]), 7, 3, 2, 10) == d[1:]).all())
    True
    """
    base = pd.util.hash_array(np.asarray(keys, dtype=object).astype(str).astype(object))
    base = _splitmix(base ^ _splitmix(np.array([seed or 0], dtype=np.uint64)))
    counter = (
        np.arange(permutations, dtype=np.uint64)[:, None] * np.uint64(1 << 16)
        + np.arange(width, dtype=np.uint64)[None, :]
    )
    h = _splitmix(base[:, None, None] + counter[None] * _GOLDEN)
    u = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53
    left = np.maximum(n - 1 - np.arange(width), 1)
    return np.minimum((u * left).astype(np.int64), left - 1)


def _skip_taken(rank: np.ndarray, taken: list[np.ndarray]) -> np.ndarray:
    """The ``rank``-th position (from 0) not among the ``taken`` columns of its row:
    the fixed point of ``x = rank + #(taken <= x)``, reached in a pass or two (few
    ranks meet a taken position when the pool is much larger than the draws)."""
    x = rank.copy()
    for col in taken:
        x += col <= rank
    todo = np.flatnonzero(x != rank)
    while len(todo):  # each pass moves x up past newly counted positions; at most width
        xt = x[todo]
        new = rank[todo].copy()
        for col in taken:
            new += col[todo] <= xt
        moved = new != xt
        x[todo] = new
        todo = todo[moved]
    return x


def _larger(
    own: np.ndarray,
    keys: np.ndarray,
    count: np.ndarray,
    observed: np.ndarray,
    stats: GiGlobals,
    permutations: int,
    seed: int | None,
) -> np.ndarray:
    """How many permutations give each unit a Gi* at least its observed one."""
    out = np.zeros(len(own), dtype=np.int64)
    width = max(int(count.max()), 1) if len(own) else 1  # a slot even without neighbours
    me = np.searchsorted(stats.pool, own, side="left")  # one copy of its own value
    step = max(1, 2_000_000 // (permutations * (width + 1)))
    for lo in range(0, len(own), step):  # chunks bound the memory (units x permutations)
        sl = slice(lo, lo + step)
        rank = unit_draws(keys[sl], seed, permutations, width, stats.n)
        rank = rank.reshape(-1, width)
        taken = [np.repeat(me[sl], permutations)]
        for t in range(width):  # a loop over draw slots: rank -> pool position
            taken.append(_skip_taken(rank[:, t], taken))
        rank = np.column_stack(taken[1:])
        c = np.repeat(count[sl], permutations)
        drawn = _star_sums(np.repeat(own[sl], permutations), stats.pool[rank], c) / stats.total
        hit = drawn.reshape(-1, permutations) >= observed[sl][:, None]
        out[sl] = hit.sum(axis=1)
    return out


def classify(z: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Hotspot classes from Gi* z-scores and two-sided p-values.

    Examples
    --------
    >>> classify(np.array([3.0, -2.0, 1.0]), np.array([0.004, 0.04, 0.5])).tolist()
    ['hot-99', 'cold-95', 'not significant']
    """
    z = np.nan_to_num(np.asarray(z, dtype=float))
    p = np.nan_to_num(np.asarray(p, dtype=float), nan=1.0)
    level = np.select([p <= 0.01, p <= 0.05, p <= 0.10], ["99", "95", "90"], "")
    side = np.where(z > 0, "hot-", "cold-")
    return np.where((level != "") & (z != 0), np.char.add(side, level), "not significant").astype(
        object
    )


def recurring_hotspots(
    reports: pd.DataFrame,
    units: gpd.GeoDataFrame,
    *,
    freq: str = "MS",
    periods: int = 6,
    end: object = None,
    min_hot: int = 3,
    level: float = 0.05,
    tz: str = "Asia/Shanghai",
    **kwargs: object,
) -> gpd.GeoDataFrame:
    """Units hot in several of the last periods.

    Parameters
    ----------
    freq
        Period length as a pandas frequency of period starts (``"MS"`` months,
        ``"QS"`` quarters, ``"W-MON"`` weeks), in local time ``tz``.
    periods
        How many periods back from ``end`` (default: the start of the current period
        after the last report).
    min_hot
        A unit is ``recurring`` when hot (``gi_p <= level``, ``gi_z > 0``) in at least
        this many periods.
    **kwargs
        Passed to :func:`hotspots` (``category``, ``permutations``, ``seed``).

    Returns
    -------
    geopandas.GeoDataFrame
        ``units`` plus ``hot_periods`` (count), ``hot_in`` (``;``-separated period
        starts) and ``recurring``.

    Examples
    --------
    The reports of the :func:`hotspots` example, all in May 2026: over the last two
    months the block is hot once (in May).

    >>> import geopandas as gpd, numpy as np, pandas as pd
    >>> from gridkit.synth.ops import grid_units
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.uniform(113.10, 113.11, 120), rng.uniform(27.80, 27.81, 120)
    >>> pts = gpd.GeoDataFrame({"reported_at": [pd.Timestamp("2026-05-10T00:00Z")] * 120},
    ...                        geometry=gpd.points_from_xy(x, y), crs=4326)
    >>> rec = recurring_hotspots(
    ...     pts, grid_units(6, 6), periods=2, min_hot=1, permutations=99, seed=1)
    >>> rec.loc[[0, 1, 6, 7], "hot_in"].tolist(), bool(rec.loc[[0, 1, 6, 7], "recurring"].all())
    (['2026-05-01', '2026-05-01', '2026-05-01', '2026-05-01'], True)
    """
    t = utc_series(reports["reported_at"]).dt.tz_convert(tz)
    end_ts = (
        pd.Timestamp(end).tz_convert(tz)
        if end is not None and pd.Timestamp(end).tzinfo
        else (
            pd.Timestamp(end).tz_localize(tz)
            if end is not None
            else t.max() + pd.Timedelta(seconds=1)
        )
    )
    starts = pd.date_range(end=end_ts, periods=periods + 1, freq=freq, tz=tz)
    if starts[-1] < end_ts:
        starts = starts.append(
            pd.DatetimeIndex([starts[-1] + pd.tseries.frequencies.to_offset(freq)])
        )
    starts = starts[-(periods + 1) :]
    out = units.copy()
    hot = np.zeros((len(out), periods), dtype=bool)
    labels = []
    for k in range(periods):  # one Gi* per period; a handful of periods
        a, b = starts[k], starts[k + 1]
        hs = hotspots(reports, units, start=a, end=b, **kwargs)
        hot[:, k] = (hs["gi_z"].to_numpy() > 0) & (hs["gi_p"].to_numpy() <= level)
        labels.append(a.strftime("%Y-%m-%d"))
    lab = np.array(labels, dtype=object)
    out["hot_periods"] = hot.sum(axis=1)
    out["hot_in"] = [";".join(lab[row]) for row in hot]
    out["recurring"] = out["hot_periods"] >= min_hot
    return out


def hex_density(
    points: gpd.GeoDataFrame,
    *,
    size_m: float = 500.0,
    crs: object = None,
    category: str | list[str] | None = None,
) -> gpd.GeoDataFrame:
    """Hexagonal bins of point density (a map layer independent of the units).

    Parameters
    ----------
    points
        Report points.
    size_m
        Hexagon circumradius (centre to corner) in metres.
    crs
        Declared datum of the points.
    category
        Only these categories.

    Returns
    -------
    geopandas.GeoDataFrame
        One pointy-top hexagon per occupied bin, in the CRS of the points (WGS84 for
        a declared ``gcj02``/``bd09``): ``hex_q``, ``hex_r`` (axial coordinates, in the
        UTM zone of the points), ``count`` and ``per_km2``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy([113.1, 113.1001, 113.2], [27.8] * 3),
    ...                        crs=4326)
    >>> sorted(hex_density(pts, size_m=200)["count"].tolist())
    [1, 2]
    >>> hex_density(pts.to_crs(32649), size_m=200).crs.to_epsg()
    32649
    """
    out_crs = result_crs(points, crs)
    pts = to_wgs84(points, crs=crs, source="points")
    if category is not None:
        cats = [category] if isinstance(category, str) else list(category)
        pts = pts[pts["category"].isin(cats)]
    g = np.asarray(pts.geometry.array)
    pts = pts[~(shapely.is_missing(g) | shapely.is_empty(g))]
    metric = local_metric_crs(pts)
    xy = shapely.get_coordinates(np.asarray(pts.to_crs(metric).geometry.array))
    s = float(size_m)
    # Axial coordinates of pointy-top hexagons, then cube rounding (vectorised).
    qf = (np.sqrt(3) / 3 * xy[:, 0] - xy[:, 1] / 3) / s
    rf = (2 / 3 * xy[:, 1]) / s
    xf, zf = qf, rf
    yf = -xf - zf
    rx, ry, rz = np.round(xf), np.round(yf), np.round(zf)
    dx, dy, dz = np.abs(rx - xf), np.abs(ry - yf), np.abs(rz - zf)
    fix_x = (dx > dy) & (dx > dz)
    fix_y = ~fix_x & (dy > dz)
    rx = np.where(fix_x, -ry - rz, rx)
    ry = np.where(fix_y, -rx - rz, ry)
    rz = np.where(~fix_x & ~fix_y, -rx - ry, rz)
    q, r = rx.astype(np.int64), rz.astype(np.int64)
    bins = pd.DataFrame({"hex_q": q, "hex_r": r}).value_counts().rename("count").reset_index()
    cx = s * np.sqrt(3) * (bins["hex_q"].to_numpy() + bins["hex_r"].to_numpy() / 2)
    cy = s * 1.5 * bins["hex_r"].to_numpy()
    ang = np.radians(30 + 60 * np.arange(6))
    ring_x = cx[:, None] + s * np.cos(ang)[None, :]
    ring_y = cy[:, None] + s * np.sin(ang)[None, :]
    coords = np.stack([ring_x, ring_y], axis=-1)
    hexes = shapely.polygons(np.concatenate([coords, coords[:, :1]], axis=1))
    area_km2 = 1.5 * np.sqrt(3) * s * s / 1e6
    out = gpd.GeoDataFrame(bins, geometry=hexes, crs=metric)
    out["per_km2"] = out["count"] / area_km2
    return like_input(out, out_crs)
