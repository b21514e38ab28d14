"""The shape of the synthetic country at a scale factor: how many provinces, cities,
villages and buildings, and where each city lies.

Scale 1.0 is the whole country (about 50 million buildings and 1.5 million community
grid units); every city keeps the same size whatever the scale, so the work of one
partition stays the same as the country grows and only the number of partitions
changes. Provinces are rows of a grid of city rectangles in a national Albers
projection; the codes are shaped like real ones (``430000`` province, ``430200``
city, ``430202`` county, 9 digits township, 12 digits village).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pyproj

__all__ = ["ALBERS", "PROVINCE_CODES", "CityPlan", "NationalPlan", "national_plan"]

#: The national working CRS: Albers equal-area conic for China (WGS84 datum, metres).
#: The dataset is written in it, so every run (one process or many) measures in it.
ALBERS = pyproj.CRS.from_proj4(
    "+proj=aea +lat_0=0 +lon_0=105 +lat_1=25 +lat_2=47 +x_0=0 +y_0=0 +datum=WGS84 +units=m"
)

#: The 31 province-level codes of mainland China (first two digits).
PROVINCE_CODES = (
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65"
).split()

_FULL_BUILDINGS = 50_000_000
_FULL_CITIES = 330
_BUILDINGS_PER_VILLAGE = 97  # 50 M buildings over ~515 000 villages and communities
_RIVER_KM_PER_BUILDING = 0.006  # 300 000 km of river at scale 1
# cities per province as a grid (columns, rows): up to 16 for the full country's ~12;
# the larger ones serve small cities (``city_buildings``) or scales past 1.6, so a city
# keeps its size as the country grows
# (at most 90: a city's code within its province has two digits)
_GRID_SHAPES = tuple((c, r) for c in range(1, 11) for r in (c - 1, c) if 1 <= r and c * r <= 90)
_X0, _Y0 = -1_400_000.0, 2_600_000.0  # south-west corner of the synthetic country


@dataclass(frozen=True)
class CityPlan:
    """One city of the plan: its codes, its box (Albers metres) and its seed.

    Examples
    --------
    >>> c = national_plan(0.001).cities[0]
    >>> c.code, c.province_code, c.code4
    ('110100', '110000', '1101')
    """

    index: int
    province: int
    code4: str
    box: tuple[float, float, float, float]
    seed: int

    @property
    def code(self) -> str:
        """City code, six digits (``430200``)."""
        return f"{self.code4}00"

    @property
    def province_code(self) -> str:
        """Province code, six digits (``430000``)."""
        return f"{self.code4[:2]}0000"


@dataclass(frozen=True)
class NationalPlan:
    """The synthetic country at one scale: counts, layout and seeds.

    Attributes
    ----------
    scale
        Fraction of the full country (1.0: ~50 M buildings, ~1.5 M units).
    seed
        Master seed; each city draws from ``(seed, city index)``.
    n_provinces, cities_per_province
        Provinces, and cities in each (a grid of ``city_grid`` cities).
    buildings_per_city, villages_per_city, counties_per_city
        The same for every city.
    city_side_m
        Side of a city's square, metres.
    river_km
        Length of the national river network.

    Examples
    --------
    >>> p = national_plan(0.001)
    >>> p.n_provinces, len(p.cities), p.buildings_per_city
    (2, 2, 25000)
    >>> p.bounds()
    (-1400000.0, 2600000.0, -1336000.0, 2632000.0)
    """

    scale: float
    seed: int
    n_provinces: int
    city_grid: tuple[int, int]
    buildings_per_city: int
    villages_per_city: int
    counties_per_city: int
    city_side_m: float
    river_km: float
    province_cols: int

    @property
    def cities_per_province(self) -> int:
        """Cities in each province."""
        return self.city_grid[0] * self.city_grid[1]

    @property
    def cities(self) -> list[CityPlan]:
        """Every city, province by province.

        Examples
        --------
        >>> [c.code for c in national_plan(0.01).cities][:3]
        ['110100', '120100', '130100']
        """
        return list(_cities(self))

    def bounds(self) -> tuple[float, float, float, float]:
        """The country's box (Albers metres).

        Examples
        --------
        >>> national_plan(0.01).bounds()[2] > national_plan(0.001).bounds()[2]
        True
        """
        boxes = np.array([c.box for c in self.cities])
        return (
            float(boxes[:, 0].min()),
            float(boxes[:, 1].min()),
            float(boxes[:, 2].max()),
            float(boxes[:, 3].max()),
        )

    @property
    def n_buildings(self) -> int:
        """Buildings in all (before the ~1 % building parts).

        Examples
        --------
        >>> national_plan(0.001).n_buildings
        50000
        """
        return self.buildings_per_city * len(self.cities)


@functools.lru_cache(maxsize=8)
def _cities(plan: NationalPlan) -> tuple[CityPlan, ...]:
    # computed once per plan and process: tasks ask for the cities many times, and a
    # country of 1 000 cities takes ~15 ms (a seed per city)
    gx, gy = plan.city_grid
    side = plan.city_side_m
    out = []
    for p in range(plan.n_provinces):
        px, py = p % plan.province_cols, p // plan.province_cols
        for k in range(gx * gy):
            x0 = _X0 + (px * gx + k % gx) * side
            y0 = _Y0 + (py * gy + k // gx) * side
            index = p * gx * gy + k
            seed = int(np.random.SeedSequence([plan.seed, index]).generate_state(1)[0])
            code4 = f"{PROVINCE_CODES[p]}{k + 1:02d}"
            out.append(CityPlan(index, p, code4, (x0, y0, x0 + side, y0 + side), seed))
    return tuple(out)


def national_plan(
    scale: float, *, seed: int = 0, city_buildings: int | None = None
) -> NationalPlan:
    """The plan of the synthetic country at ``scale`` (1.0 = the whole country).

    Cities keep their size (``50e6 / 330`` buildings at full scale, at least two cities
    and two provinces); the number of cities grows with the scale. ``0.001`` is two
    small cities (50 000 buildings) in two provinces.

    Parameters
    ----------
    scale
        Fraction of the full country, in ``(0, 4]``.
    seed
        Master seed.
    city_buildings
        Buildings per city (default: the full-scale ~150 000, fewer below scale 0.01);
        smaller cities make more partitions of the same total, e.g. to measure scaling
        on a small machine.

    Returns
    -------
    NationalPlan

    Raises
    ------
    ValueError
        For a scale outside ``(0, 4]``.

    Examples
    --------
    >>> p = national_plan(1.0)
    >>> p.n_provinces, len(p.cities), p.n_buildings
    (31, 372, 50000148)
    >>> q = national_plan(0.0032, city_buildings=10_000)
    >>> q.n_provinces, len(q.cities), q.buildings_per_city
    (2, 18, 8889)
    """
    if not 0 < scale <= 4:
        raise ValueError(f"scale must be in (0, 4] (1.0 is the whole country), got {scale}.")
    total = _FULL_BUILDINGS * scale
    n_prov = min(len(PROVINCE_CODES), max(2, round(len(PROVINCE_CODES) * math.sqrt(scale))))
    n_cities = max(2, round(_FULL_CITIES * scale))
    if city_buildings is not None:
        n_cities = max(2, round(total / city_buildings))
    want = n_cities / n_prov
    grid = min(_GRID_SHAPES, key=lambda g: (abs(g[0] * g[1] - want), g[0] * g[1]))
    per_city = max(1_000, round(total / (n_prov * grid[0] * grid[1])))
    if scale < 0.01 or city_buildings is not None:  # split the buildings among the cities
        per_city = round(total / (n_prov * grid[0] * grid[1]))
    villages = max(12, round(per_city / _BUILDINGS_PER_VILLAGE))
    return NationalPlan(
        scale=float(scale),
        seed=int(seed),
        n_provinces=n_prov,
        city_grid=grid,
        buildings_per_city=int(per_city),
        villages_per_city=int(villages),
        counties_per_city=int(min(30, max(2, round(villages / 195)))),
        city_side_m=1000.0 * round(max(20.0, math.sqrt(4.0 * villages))),
        river_km=float(max(50.0, _RIVER_KM_PER_BUILDING * total)),
        province_cols=math.ceil(math.sqrt(n_prov)),
    )
