"""The national dataset: partitioned runs (gridkit.scale, tasks in this process) against
the same library function run once on the whole country, on the same files.

The peer is the single-process run; the check is that the answers are identical (ids,
values and geometry), so the ratio shows what partitioning costs or saves before any
parallelism (the Dask scaling run is ``python -m benchmarks.scaling``).
"""

from __future__ import annotations

import tempfile
import warnings

import numpy as np
import shapely

from benchmarks._runner import Case

_DIRS: list[tempfile.TemporaryDirectory] = []  # removed when the process ends


def _dataset(scale: float, seed: int):
    from gridkit.national import build_national

    _DIRS.append(tempfile.TemporaryDirectory(prefix="gridkit-bench-"))
    return build_national(scale, _DIRS[-1].name, seed=seed)


def _same(a, b) -> dict | None:
    if list(a.iloc[:, 0]) != list(b.iloc[:, 0]):
        return {"ids": "differ", "ours_n": len(a), "peer_n": len(b)}
    ga, gb = np.asarray(a.geometry.array), np.asarray(b.geometry.array)
    if not shapely.equals_exact(ga, gb, tolerance=0).all():
        return {"geometry": "differs"}
    return None


def ours_communities(ds):
    from gridkit.scale import split_communities_partitioned

    return split_communities_partitioned(ds, max_households=1000)


def peer_communities(ds):
    from gridkit import split_communities

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        units = split_communities(ds.read("communities"), ds.read("buildings"), max_households=1000)
    return units.sort_values("unit_id").reset_index(drop=True)


def ours_rivers(ds):
    from gridkit.scale.rivers import split_rivers_partitioned

    return split_rivers_partitioned(ds, max_length_m=2000.0, corridor_m=50.0)[1]


def peer_rivers(ds):
    from gridkit import split_rivers

    admin = ds.read("admin_areas")
    villages = admin[admin["level"] == "village"].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, units = split_rivers(ds.read("rivers"), villages, max_length_m=2000.0, corridor_m=50.0)
    return units.sort_values("unit_id").reset_index(drop=True)


def cases(quick: bool) -> list[Case]:
    # seed 3 at 2e-4 and seed 0 at 1e-3: data on which split_communities' edge snapping
    # is decided alike in every city (see tests/test_scale.py)
    scale, seed = (0.0002, 3) if quick else (0.001, 0)
    size = {"scale": scale, "seed": seed, "buildings": round(50e6 * scale)}

    def setup():
        return _dataset(scale, seed)

    def build(_ds):
        return _dataset(scale, seed)

    def rows(_data, ds):
        import json

        meta = json.loads((ds.path / "national.json").read_text(encoding="utf-8"))
        return {k: meta["rows"][k] for k in ("buildings", "workers", "patrols", "reports")}

    return [
        Case(
            name=f"build the national dataset at scale {scale}",
            setup=lambda: None,
            ours=build,
            size=size,
            repeat=1,
            extra=rows,
        ),
        Case(
            name="split communities by city vs one process",
            setup=setup,
            ours=ours_communities,
            peer=peer_communities,
            peer_name="split_communities, whole country",
            size=size,
            check=_same,
            repeat=1,
            trace_peer=False,
            extra=lambda _d, u: {"units": len(u)},
        ),
        Case(
            name="split rivers by province vs one process",
            setup=setup,
            ours=ours_rivers,
            peer=peer_rivers,
            peer_name="split_rivers, whole country",
            size=size,
            check=_same,
            repeat=1,
            extra=lambda _d, u: {"units": len(u)},
        ),
    ]
