"""gridkit: geospatial grid management for rivers, reservoirs and communities.

Split rivers and communities into management grid units, assign grid workers,
check patrol coverage, find hotspots of reported problems, and serve maps.
GeoDataFrames in, GeoDataFrames and folium maps out.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from gridkit.communities import CommunitySplitReport, estimate_households, split_communities
from gridkit.crs import local_metric_crs, to_metric, to_wgs84
from gridkit.errors import (
    CRSError,
    GridkitError,
    GridkitWarning,
    InputFileError,
    InvalidLayerError,
    LayerNotFoundError,
    MissingExtraError,
    UnsupportedFormatError,
    require_extra,
)
from gridkit.io import read_layer, read_layers, write_layer, write_layers
from gridkit.layers import LAYERS, check_layer
from gridkit.ops import (
    Assessment,
    Simulation,
    assess,
    hotspots,
    locate,
    patrol_compliance,
    simulate,
)
from gridkit.rivers import ChiefCoverage, RiverSplit, chief_coverage, split_rivers
from gridkit.staffing import AssignmentResult, Workload, assign_workers, reassign
from gridkit.validate import ValidationReport, validate_units
from gridkit.versions import carry_over, diff_units, publish, remap_unit_ids

_MAPS = ("compliance_map", "coverage_map", "diff_map", "hotspot_map")


def __getattr__(name: str) -> object:
    # maps need the optional ``maps`` extra (folium): loaded on first use, so that
    # ``import gridkit`` works with the core dependencies alone
    if name in _MAPS:
        require_extra("maps", "maps")
        from gridkit import maps

        return getattr(maps, name)
    raise AttributeError(f"module 'gridkit' has no attribute {name!r}")


try:
    __version__ = version("gridkit")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = [
    "LAYERS",
    "Assessment",
    "AssignmentResult",
    "CRSError",
    "ChiefCoverage",
    "CommunitySplitReport",
    "GridkitError",
    "GridkitWarning",
    "InputFileError",
    "InvalidLayerError",
    "LayerNotFoundError",
    "MissingExtraError",
    "RiverSplit",
    "Simulation",
    "UnsupportedFormatError",
    "ValidationReport",
    "Workload",
    "__version__",
    "assess",
    "assign_workers",
    "carry_over",
    "check_layer",
    "chief_coverage",
    "compliance_map",
    "coverage_map",
    "diff_map",
    "diff_units",
    "estimate_households",
    "hotspot_map",
    "hotspots",
    "local_metric_crs",
    "locate",
    "patrol_compliance",
    "publish",
    "read_layer",
    "read_layers",
    "reassign",
    "remap_unit_ids",
    "simulate",
    "split_communities",
    "split_rivers",
    "to_metric",
    "to_wgs84",
    "validate_units",
    "write_layer",
    "write_layers",
]
