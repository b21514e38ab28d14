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
import shapely

from gridkit.crs import WGS84, degrees_around

#: chunks kept before they are joined into one (a join costs O(layer) pandas work)
JOIN_AT = 32


class HeldReports:
    """Typed report rows (``gridkit.reports`` lifecycle types) of one store generation.

    Parameters
    ----------
    generation
        The store generation of the ``reports`` layer these rows are.
    reports
        The layer, typed (``gridkit.ops.reports._normalise``), in WGS84.
    """

    def __init__(self, generation: int, reports: gpd.GeoDataFrame) -> None:
        self.generation = generation
        self._chunks: list[gpd.GeoDataFrame] = []
        self._starts = np.zeros(0, dtype=np.int64)
        self._n = 0
        self._bounds = np.empty((0, 4))
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
        from gridkit.ops.reports import _rules

        rows = rows.reset_index(drop=True)
        n = len(rows)
        self._chunks.append(rows)
        self._starts = np.append(self._starts, self._n)
        bounds = shapely.bounds(np.asarray(rows.geometry.array))
        self._bounds = np.concatenate([self._bounds, bounds])
        self._cat = np.concatenate([self._cat, self._code(rows["category"])])
        is_open = rows["status"].isin(_rules(None).open_statuses).to_numpy(dtype=bool)
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
        margin) of one of the new points: the only reports they can duplicate."""
        pts = np.asarray(new.geometry.array)
        has = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
        if not has.any() or self._n == 0 or radius_m <= 0:
            return self.take(np.empty(0, dtype=np.int64))
        wanted = [self._codes[c] for c in set(new["category"][has]) if c in self._codes]
        cand = np.flatnonzero(self._open & np.isin(self._cat, wanted))
        b = self._bounds[cand]
        xy = shapely.get_coordinates(pts[has])
        dxs, dys = degrees_around(xy[:, 1], np.full(len(xy), radius_m))
        near = np.zeros(len(cand), dtype=bool)
        for (x, y), dx, dy in zip(xy, dxs, dys, strict=True):  # a few hundred at most
            across = (b[:, 0] <= x + dx) & (b[:, 2] >= x - dx)
            near |= across & (b[:, 1] <= y + dy) & (b[:, 3] >= y - dy)
        return self.take(cand[near])

    def replays(self, keys: list[str]) -> gpd.GeoDataFrame:
        """The rows first stored under any of ``keys``, indexed by key."""
        hits = sorted({self._keys[k] for k in keys if k in self._keys})
        rows = self.take(np.array(hits, dtype=np.int64))
        return rows.set_index(rows["idempotency_key"].astype(str).to_numpy()) if hits else rows

    def report_ids(self) -> pd.Series:
        """Every ``report_id`` of the layer."""
        return pd.concat([c["report_id"] for c in self._chunks], ignore_index=True)
