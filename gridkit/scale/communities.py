"""Community partition, one admin partition per task.

A partition owns the communities whose ``admin_code`` starts with its key. Its task
reads them, every building touching them (from any
partition: a community cut by a city line has buildings on both sides) and, as a
halo, every other community touching them or touched by one of those buildings, so that
:func:`gridkit.split_communities` sees every community each building could belong
to and every neighbour the edge snapping looks at. It splits them all and keeps the
owned communities' units. Unit ids are ``{community_id}-{n:03d}``, local to a
community, so the union of the partitions is the single-process result.
"""

from __future__ import annotations

import warnings
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.communities import split_communities
from gridkit.scale.engine import Engine
from gridkit.scale.partition import owned
from gridkit.validate.tiling import WIDTH_M

__all__ = ["GROUP_REACH_M", "split_communities_partitioned"]

#: Communities this close (metres, 10x the noise width) are read into one task's group.
GROUP_REACH_M = 10 * WIDTH_M


def _inputs(source: Any, key: str) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, int]:
    own = owned(source.read("communities", cities=[key]), "admin_code", key)
    if not len(own):
        return own, own, 0
    box = tuple(own.total_bounds)
    comm = source.read("communities", bbox=box)
    bld = source.read("buildings", bbox=box)
    bld = bld.drop(columns=[c for c in ("bbox",) if c in bld.columns])
    # every building touching an owned community: which community holds it is
    # decided inside split_communities (its representative point, in the UTM zone)
    bg = np.asarray(bld.geometry.array)
    og = np.asarray(own.geometry.array)
    b_hit = np.unique(shapely.STRtree(og).query(bg, predicate="intersects")[0])
    bld = bld.iloc[b_hit]
    cg = np.asarray(comm.geometry.array)
    tree = shapely.STRtree(cg)
    near = np.union1d(
        tree.query(og, predicate="intersects")[1], tree.query(bg[b_hit], predicate="intersects")[1]
    )
    comm = _whole_groups(source, comm.iloc[np.sort(near)])
    comm = comm.drop(columns=[c for c in ("bbox",) if c in comm.columns])
    return comm, bld, len(own)


def _whole_groups(source: Any, comm: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``comm`` and every community connected to it within :data:`GROUP_REACH_M`
    (transitively), read box by box: edge snapping is decided per connected group
    (:func:`gridkit.validate.tiling.settle`), so the task sees its groups whole."""
    have = set(comm["community_id"])
    frontier = comm
    # a loop over growth rounds: one per ring of touching communities beyond the halo
    while len(frontier):
        box = tuple(frontier.total_bounds + np.r_[-1, -1, 1, 1] * GROUP_REACH_M)
        cand = source.read("communities", bbox=box)
        cand = cand[~cand["community_id"].isin(have).to_numpy()]
        tree = shapely.STRtree(np.asarray(cand.geometry.array))
        hit = tree.query(
            np.asarray(frontier.geometry.array), predicate="dwithin", distance=GROUP_REACH_M
        )[1]
        frontier = cand.iloc[np.unique(hit)]
        have |= set(frontier["community_id"])
        comm = pd.concat([comm, frontier])
    return comm


def _task(args: tuple[Any, str, dict]) -> dict[str, Any]:
    source, key, options = args
    comm, bld, n_own = _inputs(source, key)
    if not n_own:
        return {"key": key, "units": None, "communities": 0, "halo": 0, "buildings": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        units = split_communities(comm, bld, **options)
    keep = units["admin_code"].astype(str).str.startswith(key).to_numpy()
    units = units[keep & units["parent_id"].isin(comm["community_id"]).to_numpy()]
    units.attrs = {}
    return {
        "key": key,
        "units": units,
        "communities": n_own,
        "halo": len(comm) - n_own,
        "buildings": len(bld),
    }


def split_communities_partitioned(
    source: Any,
    *,
    engine: Engine | None = None,
    by: str = "city",
    **options: Any,
) -> gpd.GeoDataFrame:
    """:func:`gridkit.split_communities` per admin partition; same units, same ids.

    Parameters
    ----------
    source
        A :class:`gridkit.national.NationalDataset` or :class:`gridkit.scale.Frames`
        with ``communities`` and ``buildings``.
    engine
        Where the tasks run (default: this process).
    by
        ``"city"`` or ``"province"``.
    **options
        Passed to :func:`gridkit.split_communities` (``max_households`` ...).

    Returns
    -------
    geopandas.GeoDataFrame
        The units of every partition, sorted by ``unit_id`` (index 0..n-1);
        ``attrs["partitions"]`` holds a row per partition (communities, halo,
        buildings read).

    Examples
    --------
    >>> from gridkit.scale import Frames
    >>> from gridkit.synth import sample_layers
    >>> s = sample_layers(seed=1)
    >>> src = Frames({"communities": s["communities"], "buildings": s["buildings"]})
    >>> units = split_communities_partitioned(src, max_households=300)
    >>> bool(units["unit_id"].is_monotonic_increasing), len(units.attrs["partitions"])
    (True, 1)
    """
    engine = engine or Engine.serial()
    keys = source.partitions(by)
    done = engine.map(_task, [(source, k, options) for k in keys], label="communities")
    frames = [d["units"] for d in done if d["units"] is not None and len(d["units"])]
    units = pd.concat(frames, ignore_index=True) if frames else gpd.GeoDataFrame()
    units = units.sort_values("unit_id", kind="stable").reset_index(drop=True)
    units = gpd.GeoDataFrame(units, geometry="geometry", crs=frames[0].crs if frames else None)
    units.attrs["partitions"] = pd.DataFrame(
        [{k: v for k, v in d.items() if k != "units"} for d in done]
    )
    return units
