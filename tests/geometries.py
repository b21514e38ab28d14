"""Shared catalogue of edge-case geometries, reused by every test module.

Coordinates are lon/lat around Zhuzhou (113.1 E, 27.8 N) unless named otherwise.
"""

from __future__ import annotations

import shapely
from shapely import LineString, MultiLineString, MultiPolygon, Point, Polygon

X0, Y0 = 113.10, 27.80
D = 0.01  # about 1 km

square = Polygon([(X0, Y0), (X0 + D, Y0), (X0 + D, Y0 + D), (X0, Y0 + D)])
square_with_hole = Polygon(
    square.exterior.coords,
    [
        [
            (X0 + D / 4, Y0 + D / 4),
            (X0 + D / 4, Y0 + 3 * D / 4),
            (X0 + 3 * D / 4, Y0 + 3 * D / 4),
            (X0 + 3 * D / 4, Y0 + D / 4),
        ]
    ],
)
two_squares = MultiPolygon([square, shapely.affinity.translate(square, 2 * D, 0)])
bowtie = Polygon([(X0, Y0), (X0 + D, Y0 + D), (X0 + D, Y0), (X0, Y0 + D)])  # invalid
line = LineString([(X0, Y0), (X0 + D, Y0 + D / 2), (X0 + 2 * D, Y0)])
multiline = MultiLineString([line, shapely.affinity.translate(line, 0, D)])
line_z = LineString([(X0, Y0, 30.0), (X0 + D, Y0 + D, 31.0)])
zero_length_line = LineString([(X0, Y0), (X0, Y0)])
point = Point(X0, Y0)
empty_polygon = Polygon()
empty_line = LineString()

VALID_POLYGONS = {"square": square, "hole": square_with_hole, "multipart": two_squares}
VALID_LINES = {"line": line, "multiline": multiline, "z": line_z}
INVALID = {"bowtie": bowtie}
EMPTY = {"empty_polygon": empty_polygon, "empty_line": empty_line}

# --------------------------------------------------------------------------- tilings
# Real-shaped neighbours: two communities sharing a 2.6 km edge of a few hundred
# vertices, each side digitised on its own (one copy of the edge off by 0.1-1 mm,
# as after a reprojection or a GIS export). Metric, UTM 35N (Helsinki).

HKI_CRS = 32635
HX0, HY0 = 385_000.0, 6_670_000.0


def noisy_neighbours(
    *, n: int = 520, length_m: float = 2600.0, noise_m: tuple[float, float] = (1e-4, 1e-3)
) -> tuple[Polygon, Polygon]:
    """West and east polygons whose shared, wavy edge differs by ``noise_m`` on one side."""
    import numpy as np

    rng = np.random.default_rng(18)
    ys = np.linspace(HY0, HY0 + length_m, n)
    xs = HX0 + 1000 + 40 * np.sin(ys / 70) + rng.normal(0, 3, n)
    edge = np.c_[xs, ys]
    off = rng.uniform(*noise_m, n) * rng.choice([-1, 1], n)
    moved = edge + np.c_[off, np.zeros(n)]
    west = Polygon(np.r_[[[HX0, HY0]], edge, [[HX0, HY0 + length_m]]])
    east = Polygon(np.r_[[[HX0 + 2000, HY0 + length_m]], moved[::-1], [[HX0 + 2000, HY0]]])
    return west, east


def four_part_building(x: float = 0.0, y: float = 0.0, *, far_m: float = 35.0) -> MultiPolygon:
    """A footprint in four parts (what ``make_valid`` makes of a real self-touching
    OSM way): a 20 m x 20 m main part, two small ones beside it and a 2.2 m² one
    ``far_m`` east of the main part's west side. ``(x, y)`` is the main part's
    south-west corner (metric)."""
    return MultiPolygon(
        [
            shapely.box(x, y, x + 20, y + 20),
            shapely.box(x + 21, y, x + 23, y + 2),
            shapely.box(x + 21, y + 18, x + 23, y + 20),
            shapely.box(x + far_m, y + 9, x + far_m + 1.1, y + 11),
        ]
    )
