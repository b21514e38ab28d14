"""The reports layer as the report writer holds it between batches.

A batch of reports needs little of the layer: the open originals near the new points
(the only reports they can duplicate), the rows stored under a retried
``Idempotency-Key``, and, once, every id taken. :class:`HeldReports` keeps the layer's
typed rows in chunks (one per batch, joined now and then) beside the few arrays
those questions read (bounds, category codes, open originals, keys), so the work of a
batch does not grow with the layer: no frame of the whole layer is built, copied or
scanned with pandas per batch.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit.crs import WGS84
from gridkit.ops.reports import duplicate_pairs, report_rules

#: chunks kept before they are joined into one (a join costs O(layer) pandas work)
JOIN_AT = 32


class HeldReports:
    """Typed report rows (``gridkit.reports`` lifecycle types) of one store generation.

    Parameters
    ----------
    generation
        The store generation of the ``reports`` layer these rows are.
    reports
        The layer, typed (:func:`gridkit.ops.reports.normalise_reports`), in WGS84.
    """

    def __init__(self, generation: int, reports: gpd.GeoDataFrame) -> None:
        self.generation = generation
        self._chunks: list[gpd.GeoDataFrame] = []
        self._starts = np.zeros(0, dtype=np.int64)
        self._n = 0
        self._geoms = np.empty(0, dtype=object)
        self._cat = np.empty(0, dtype=np.int64)
        self._open = np.empty(0, dtype=bool)
        self._codes: dict[str, int] = {}
        self._keys: dict[str, int] = {}
        self._add(reports)

    def __len__(self) -> int:
        return self._n

    def append(self, generation: int, rows: gpd.GeoDataFrame) -> None:
        """``rows`` (typed) were appended to the store, which is now at ``generation``."""
        self._add(rows)
        self.generation = generation

    def _add(self, rows: gpd.GeoDataFrame) -> None:
        rows = rows.reset_index(drop=True)
        n = len(rows)
        self._chunks.append(rows)
        self._starts = np.append(self._starts, self._n)
        self._geoms = np.concatenate([self._geoms, np.asarray(rows.geometry.array)])
        self._cat = np.concatenate([self._cat, self._code(rows["category"])])
        is_open = rows["status"].isin(report_rules().open_statuses).to_numpy(dtype=bool)
        if "duplicate_of" in rows.columns:
            is_open = is_open & rows["duplicate_of"].isna().to_numpy()
        self._open = np.concatenate([self._open, is_open])
        if "idempotency_key" in rows.columns:
            keys = rows["idempotency_key"].to_numpy(dtype=object, na_value=None)
            for pos in np.flatnonzero(pd.notna(keys)):  # keyed rows only (few)
                self._keys.setdefault(str(keys[pos]), self._n + int(pos))
        self._n += n
        if len(self._chunks) > JOIN_AT:
            joined = pd.concat(self._chunks, ignore_index=True)
            self._chunks = [gpd.GeoDataFrame(joined, geometry="geometry", crs=WGS84)]
            self._starts = np.zeros(1, dtype=np.int64)

    def _code(self, values: pd.Series) -> np.ndarray:
        """Integer codes of categories, the same across chunks."""
        uniq, inverse = np.unique(values.to_numpy(dtype=object, na_value=""), return_inverse=True)
        codes = np.array([self._codes.setdefault(str(u), len(self._codes)) for u in uniq])
        return codes[inverse].astype(np.int64) if len(values) else np.empty(0, dtype=np.int64)

    def take(self, rows: np.ndarray) -> gpd.GeoDataFrame:
        """The rows at positions ``rows`` of the layer, in layer order."""
        rows = np.sort(np.asarray(rows, dtype=np.int64))
        which = np.searchsorted(self._starts, rows, side="right") - 1
        parts = [self._chunks[c].iloc[rows[which == c] - self._starts[c]] for c in np.unique(which)]
        if not parts:
            return self._chunks[0].iloc[:0]
        out = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
        if isinstance(out, gpd.GeoDataFrame) and out.crs is not None:
            return out  # chunks are WGS84 GeoDataFrames, and so are their pieces
        return gpd.GeoDataFrame(out, geometry="geometry", crs=WGS84)

    def near(self, new: gpd.GeoDataFrame, radius_m: float) -> gpd.GeoDataFrame:
        """Open originals of the new reports' categories within ``radius_m`` (with a
        margin) of one of the new points: the only reports they can duplicate (the
        coarse stage of :func:`gridkit.ops.reports.duplicate_pairs`, which
        :func:`~gridkit.ops.reports.intake` then runs exactly on these)."""
        cats = new["category"].to_numpy(dtype=object, na_value="")
        wanted = [self._codes[c] for c in set(cats) if c in self._codes]
        cand = np.flatnonzero(self._open & np.isin(self._cat, wanted))
        codes = np.array([self._codes.get(c, -1) for c in cats], dtype=np.int64)
        pairs = duplicate_pairs(
            np.asarray(new.geometry.array),
            codes,
            self._geoms[cand],
            self._cat[cand],
            radius_m=radius_m,
            exact=False,
        )
        return self.take(cand[np.unique(pairs.candidate)])

    def replays(self, keys: list[str]) -> gpd.GeoDataFrame:
        """The rows first stored under any of ``keys``, indexed by key."""
        hits = sorted({self._keys[k] for k in keys if k in self._keys})
        rows = self.take(np.array(hits, dtype=np.int64))
        return rows.set_index(rows["idempotency_key"].astype(str).to_numpy()) if hits else rows

    def report_ids(self) -> pd.Series:
        """Every ``report_id`` of the layer."""
        return pd.concat([c["report_id"] for c in self._chunks], ignore_index=True)
