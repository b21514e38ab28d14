"""Synthetic data generation: vectorised building footprints and river networks vs
per-row shapely loops.

The footprint peer builds the same rotated rectangles one at a time with
``shapely.affinity.rotate(shapely.box(...))``, the straightforward way. The river peer
builds the same river coordinates (computed in setup) into LineStrings one by one:
``river_network`` times gridkit generating the whole network (coordinates, ids, names)
against that loop only, ``river_linestrings`` the one ``shapely.linestrings`` call.
The checks compare the resulting geometries.
"""

from __future__ import annotations

import numpy as np
import shapely
import shapely.affinity

from benchmarks._runner import Case
from gridkit.synth import building_footprints, synthetic_layers, synthetic_rivers
from gridkit.synth._shared import _default_bbox
from gridkit.synth.rivers import _river_rng, _scale_rivers


def _params(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20261122)
    return {
        "x": rng.uniform(0, 20_000, n),
        "y": rng.uniform(0, 20_000, n),
        "width_m": rng.uniform(8, 45, n),
        "depth_m": rng.uniform(7, 18, n),
        "angle_rad": rng.uniform(0, np.pi, n),
    }


def _ours(p: dict[str, np.ndarray]) -> np.ndarray:
    return building_footprints(
        p["x"], p["y"], width_m=p["width_m"], depth_m=p["depth_m"], angle_rad=p["angle_rad"]
    )


def _peer(p: dict[str, np.ndarray]) -> np.ndarray:
    out = []
    for x, y, w, d, a in zip(
        p["x"], p["y"], p["width_m"], p["depth_m"], p["angle_rad"], strict=True
    ):
        box = shapely.box(x - w / 2, y - d / 2, x + w / 2, y + d / 2)
        out.append(shapely.affinity.rotate(box, a, origin=(x, y), use_radians=True))
    return np.array(out, dtype=object)


def _check(ours: np.ndarray, peer: np.ndarray) -> str | None:
    if len(ours) != len(peer):
        return f"count differs: {len(ours)} vs {len(peer)}"
    same = shapely.equals_exact(shapely.normalize(ours), shapely.normalize(peer), tolerance=1e-6)
    return None if same.all() else f"{int((~same).sum())} footprints differ"


_RIVER_SEED = 20261122


def _river_coords(km: float) -> dict:
    # the exact coordinates synthetic_rivers builds (same bbox, seed and stream)
    bbox = _default_bbox(max(30.0, (km * 6.0) ** 0.5))  # synthetic_rivers' default
    coords, index, *_ = _scale_rivers(bbox, km, _river_rng(_RIVER_SEED))
    return {"km": km, "bbox": bbox, "coords": coords, "index": index}


def _rivers_ours(p: dict) -> np.ndarray:
    rivers = synthetic_rivers(river_km=p["km"], bbox=p["bbox"], seed=_RIVER_SEED)
    return np.asarray(rivers.geometry.array)


def _rivers_peer(p: dict) -> np.ndarray:
    bounds = np.flatnonzero(np.diff(p["index"])) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(p["index"])]])
    return np.array(
        [shapely.LineString(p["coords"][s:e]) for s, e in zip(starts, ends, strict=True)],
        dtype=object,
    )


def _rivers_check(ours: np.ndarray, peer: np.ndarray) -> str | None:
    if len(ours) != len(peer):
        return f"count differs: {len(ours)} vs {len(peer)}"
    same = shapely.equals_exact(ours, peer, tolerance=0.0)
    return None if same.all() else f"{int((~same).sum())} rivers differ"


def _rivers_figures(p: dict, geoms: np.ndarray) -> dict:
    lines = shapely.transform(geoms, lambda c: c * [np.cos(np.radians(27.5)) * 111.32, 110.57])
    return {
        "rivers": len(geoms),
        "vertices": int(shapely.get_num_coordinates(geoms).sum()),
        "length_km_approx": round(float(shapely.length(lines).sum())),
    }


def cases(quick: bool) -> list[Case]:
    n = 10_000 if quick else 100_000
    n_layers = 10_000 if quick else 100_000
    km = 1_000 if quick else 100_000
    return [
        Case(
            name=f"river_network_{km}_km",
            setup=lambda: _river_coords(km),
            ours=_rivers_ours,
            peer=_rivers_peer,
            peer_name="shapely LineString per river (coords given)",
            size={"river_km": km},
            check=_rivers_check,
            extra=_rivers_figures,
        ),
        Case(
            name=f"river_linestrings_{km}_km",
            setup=lambda: _river_coords(km),
            ours=lambda p: shapely.linestrings(p["coords"], indices=p["index"]),
            peer=_rivers_peer,
            peer_name="shapely LineString per river",
            size={"river_km": km},
            check=_rivers_check,
        ),
        Case(
            name=f"footprints_{n}",
            setup=lambda: _params(n),
            ours=_ours,
            peer=_peer,
            peer_name="shapely per-row box+rotate",
            size={"buildings": n},
            check=_check,
        ),
        Case(
            name=f"synthetic_layers_{n_layers}_buildings",
            setup=lambda: None,
            ours=lambda _: synthetic_layers(
                seed=1, n_buildings=n_layers, river_km=300, n_areas=100
            ),
            size={"buildings": n_layers, "river_km": 300, "villages": 100},
            extra=lambda _, layers: {k: len(v) for k, v in layers.items()},
        ),
    ]
