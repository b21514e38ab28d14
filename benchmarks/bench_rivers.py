"""River splitting: gridkit vs a straightforward per-row geopandas implementation.

The peer is what an analyst writes first: ``geopandas.overlay`` of rivers and admin
areas, ``explode``, then ``shapely.ops.substring`` in a Python loop for the equal
division. The network is synthetic and seeded: random-walk rivers over a Voronoi
tiling in UTM 49N (Zhuzhou's zone).
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely
from shapely.ops import substring

from benchmarks._runner import Case

CRS = 32649
X0, Y0 = 500_000.0, 3_000_000.0


def synthetic_network(
    *,
    seed: int,
    total_km: float,
    n_areas: int,
    side_km: float,
    river_km: float = 100.0,
    step_m: float = 200.0,
):
    """Seeded rivers (about ``total_km`` in all) over a Voronoi tiling of a square."""
    rng = np.random.default_rng(seed)
    side = side_km * 1000.0
    pts = rng.uniform(0, side, (n_areas, 2)) + np.array([X0, Y0])
    frame = shapely.box(X0, Y0, X0 + side, Y0 + side)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=frame, ordered=True)
    )
    cells = shapely.intersection(cells, frame)
    codes = [f"430{i:06d}" for i in range(n_areas)]
    admin = gpd.GeoDataFrame(
        {"admin_code": codes, "name": codes, "level": "township", "parent_code": "430200"},
        geometry=cells,
        crs=CRS,
    )
    n_rivers = max(1, round(total_km / river_km))
    n_v = int(river_km * 1000 / step_m)
    lines = []
    for _ in range(n_rivers):  # building the input, not timed
        start = rng.uniform(0.2 * side, 0.8 * side, 2) + np.array([X0, Y0])
        ang = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.15, n_v))
        xy = start + np.cumsum(step_m * np.c_[np.cos(ang), np.sin(ang)], axis=0)
        # reflect at the frame so rivers stay inside
        xy = np.abs((xy - (X0, Y0) + side) % (2 * side) - side) + np.array([X0, Y0])
        lines.append(shapely.LineString(xy))
    ids = [f"R{i:04d}" for i in range(n_rivers)]
    rivers = gpd.GeoDataFrame({"river_id": ids, "name": ids}, geometry=lines, crs=CRS)
    return rivers, admin


def ours_reaches(data):
    from gridkit.rivers import split_rivers

    rivers, admin, max_len = data
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return split_rivers(
            rivers,
            admin,
            max_length_m=max_len,
            corridor_m=None,
            boundary_tolerance_m=0,
            split_at_confluences=False,
        ).reaches


def ours_full(data):
    from gridkit.rivers import split_rivers

    rivers, admin, max_len = data
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return split_rivers(
            rivers, admin, max_length_m=max_len, min_length_m=max_len / 10, corridor_m=50
        )


def peer_reaches(data):
    rivers, admin, max_len = data
    pieces = gpd.overlay(
        rivers, admin[["admin_code", "geometry"]], how="intersection", keep_geom_type=True
    ).explode(index_parts=False)
    rows = []
    for rid, code, geom in zip(
        pieces["river_id"], pieces["admin_code"], pieces.geometry, strict=True
    ):
        length = geom.length
        n = max(1, math.ceil(length / max_len - 1e-9))
        for i in range(n):
            rows.append((rid, code, substring(geom, i * length / n, (i + 1) * length / n)))
    return gpd.GeoDataFrame(
        rows, columns=["river_id", "admin_code", "geometry"], geometry="geometry", crs=rivers.crs
    )


def check_reaches(ours, peer):
    a, b = ours["length_m"].sum(), peer.length.sum()
    if abs(a - b) > 1e-6 * b:
        return {"ours_m": a, "peer_m": b}
    if abs(len(ours) - len(peer)) > 0.01 * len(peer):
        return {"ours_n": len(ours), "peer_n": len(peer)}
    if ours["length_m"].max() > peer.length.max() * (1 + 1e-9) + 1e-9:
        return {"ours_max": ours["length_m"].max(), "peer_max": peer.length.max()}
    return None


def _split_setup(n_lines: int, reaches_per_line: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    lines = [
        shapely.LineString(np.cumsum(rng.normal(0, 100, (int(v), 2)), axis=0))
        for v in rng.integers(10, 60, n_lines)
    ]
    lines = np.array(lines, dtype=object)
    max_len = float(np.median(shapely.length(lines))) / reaches_per_line
    return lines, max_len


def ours_split_only(data):
    from gridkit.rivers.linesplit import LineTable, equal_breaks

    lines, max_len = data
    table = LineTable.from_lines(lines)
    piece, a, b = equal_breaks(table.lengths, max_len)
    return table.substrings(piece, a, b)


def peer_split_only(data):
    lines, max_len = data
    out = []
    for g in lines:
        length = g.length
        n = max(1, math.ceil(length / max_len - 1e-9))
        out += [substring(g, i * length / n, (i + 1) * length / n) for i in range(n)]
    return np.array(out, dtype=object)


def check_split(ours, peer):
    if len(ours) != len(peer):
        return {"ours_n": len(ours), "peer_n": len(peer)}
    d = np.abs(shapely.length(ours) - shapely.length(peer)).max()
    return None if d < 1e-6 else {"max_length_diff": float(d)}


def cases(quick: bool) -> list[Case]:
    if quick:
        net = {"seed": 1, "total_km": 1000, "n_areas": 200, "side_km": 120}
        split_n = (2000, 5)
        full = {"seed": 2, "total_km": 300, "n_areas": 100, "side_km": 60}
    else:
        net = {"seed": 1, "total_km": 20_000, "n_areas": 3000, "side_km": 600}
        split_n = (2_000, 10)
        full = {"seed": 2, "total_km": 20_000, "n_areas": 3000, "side_km": 600}
    max_len = 1000.0

    def net_setup(kw=net):
        import gridkit.rivers  # noqa: F401 - imports are not part of the timing

        rivers, admin = synthetic_network(**kw)
        return rivers, admin, max_len

    def split_setup():
        return _split_setup(*split_n)

    def throughput(data, result):
        return {"reaches": len(result)}

    def full_figures(data, result):
        return {
            "reaches": len(result.reaches),
            "units": len(result.units),
            "boundary_reaches": int(result.reaches["boundary"].sum()),
            "km": round(float(result.reaches["length_m"].sum()) / 1000, 1),
        }

    return [
        Case(
            name=f"reaches {net['total_km']:,} km / {net['n_areas']:,} areas",
            setup=net_setup,
            ours=ours_reaches,
            peer=peer_reaches,
            peer_name="geopandas overlay + substring loop",
            size={**net, "max_length_m": max_len},
            check=check_reaches,
            repeat=3,
            extra=throughput,
        ),
        Case(
            name=f"length split only, {split_n[0] * split_n[1]:,} reaches",
            setup=split_setup,
            ours=ours_split_only,
            peer=peer_split_only,
            peer_name="shapely.ops.substring loop",
            size={"lines": split_n[0], "reaches_per_line": split_n[1]},
            check=check_split,
            repeat=3,
            extra=throughput,
        ),
        Case(
            name=f"full split with boundary rivers and corridor units, {full['total_km']:,} km",
            setup=lambda: net_setup(full),
            ours=ours_full,
            size={**full, "max_length_m": max_len, "corridor_m": 50},
            repeat=1,
            extra=full_figures,
        ),
    ]
