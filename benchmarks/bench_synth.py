"""Synthetic data generation: vectorised building footprints vs a per-row shapely loop.

The peer builds the same rotated rectangles one at a time with
``shapely.affinity.rotate(shapely.box(...))``, the straightforward way; the check
compares the resulting geometries.
"""

from __future__ import annotations

import numpy as np
import shapely
import shapely.affinity

from benchmarks._runner import Case
from gridkit.synth import building_footprints, synthetic_layers


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


def cases(quick: bool) -> list[Case]:
    n = 10_000 if quick else 100_000
    n_layers = 10_000 if quick else 100_000
    return [
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
