"""Where a partition task reads its layers: a national dataset on disk, or frames.

Both answer ``read(layer, cities=None, bbox=None)`` (rows of the cities or provinces
given by code prefix, and/or rows whose box meets ``bbox``, in the layer's order) and
``partitions(by)``. A :class:`gridkit.national.NationalDataset` reads its GeoParquet
files in the worker (only the neighbours a box reaches); :class:`Frames` holds
in-memory layers (tests, notebooks), shipped with each task.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.scale.partition import width_of

__all__ = ["Frames", "layer_keys"]

# the column (and slice) holding a layer's admin-code prefix
_KEY = {
    "communities": ("admin_code", 0),
    "buildings": ("community_id", 0),
    "admin_areas": ("admin_code", 0),
    "workers": ("worker_id", None),
    "river_chiefs": ("admin_code", 0),
    "units": ("admin_code", 0),
    "reaches": ("admin_code", 0),
    "water_bodies": ("water_body_id", 2),
    "patrols": ("patrol_id", 1),
    "reports": ("report_id", 1),
    "assignments": ("admin_code", 0),
    "departments": ("admin_code", 0),
}


def layer_keys(layer: str, df: pd.DataFrame) -> pd.Series:
    """The admin-code part of each row that partitions ``layer`` (a prefix is tested
    with ``startswith``).

    Examples
    --------
    >>> layer_keys("reports", pd.DataFrame({"report_id": ["R1101-000001"]})).tolist()
    ['1101-000001']
    >>> layer_keys("workers", pd.DataFrame({"worker_id": ["W-RC-110100"]})).tolist()
    ['110100']
    """
    col, start = _KEY[layer]
    s = df[col].astype(str)
    if start is None:  # worker ids: W-RC-{code}, W-RP-{code}-nn or {community}-G001
        return s.str.replace(r"^W-R[CP]-", "", regex=True)
    return s.str[start:]


@dataclass
class Frames:
    """In-memory layers partitioned by admin-code prefix, read like a dataset.

    Examples
    --------
    >>> import shapely
    >>> f = Frames({"communities": gpd.GeoDataFrame(
    ...     {"admin_code": ["110101001001", "120101001001"]},
    ...     geometry=[shapely.box(0, 0, 1, 1), shapely.box(5, 5, 6, 6)])})
    >>> len(f.read("communities", cities=["12"])), len(f.read("communities", bbox=(0, 0, 2, 2)))
    (1, 1)
    >>> f.partitions("province")
    ['11', '12']
    """

    layers: dict[str, pd.DataFrame] = field(default_factory=dict)

    def partitions(self, by: str = "city") -> list[str]:
        """Keys of the partitions holding communities or admin areas.

        Examples
        --------
        >>> Frames({"units": pd.DataFrame({"admin_code": ["4302"]})}).partitions()
        ['4302']
        """
        width = width_of(by)
        for layer in ("admin_areas", "communities", "units"):
            if layer in self.layers:
                codes = layer_keys(layer, self.layers[layer]).str[:width]
                return sorted(set(codes.tolist()))
        return []

    def read(
        self,
        layer: str,
        *,
        cities: list[str] | None = None,
        bbox: tuple[float, float, float, float] | None = None,
    ) -> pd.DataFrame:
        """Rows of ``layer`` in these partitions and/or meeting ``bbox``.

        Examples
        --------
        >>> Frames({"units": pd.DataFrame({"admin_code": ["4302"]})}).read("units").shape
        (1, 1)
        """
        df = self.layers[layer]
        mask = np.ones(len(df), dtype=bool)
        if cities is not None and layer in _KEY:
            mask &= layer_keys(layer, df).str.startswith(tuple(cities)).to_numpy()
        if bbox is not None and isinstance(df, gpd.GeoDataFrame):
            hit = np.zeros(len(df), dtype=bool)
            hit[df.sindex.query(shapely.box(*bbox), predicate="intersects")] = True
            mask &= hit
        return df[mask]
