"""The national synthetic dataset: a whole country at a scale factor.

Provinces -> cities -> counties -> townships -> villages with real-shaped codes,
national rivers whose basins cross province lines, communities and buildings,
workers and river chiefs at every level, a year of patrols and reports; written as
GeoParquet partitioned by province and city (:func:`build_national`). Modules:
``plan`` (counts and layout at a scale), ``build`` (one city, the rivers),
``activity`` (river staff, patrols, reports), ``dataset`` (writing and reading the
partitioned GeoParquet).
"""

from gridkit.national.activity import YEAR
from gridkit.national.build import border_discs, city_layers, national_rivers
from gridkit.national.dataset import (
    NationalDataset,
    build_national,
    check_build_output,
    open_national,
    write_partitioned,
)
from gridkit.national.plan import ALBERS, PROVINCE_CODES, CityPlan, NationalPlan, national_plan

__all__ = [
    "ALBERS",
    "PROVINCE_CODES",
    "YEAR",
    "CityPlan",
    "NationalDataset",
    "NationalPlan",
    "border_discs",
    "build_national",
    "check_build_output",
    "city_layers",
    "national_plan",
    "national_rivers",
    "open_national",
    "write_partitioned",
]
