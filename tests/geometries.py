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
