"""gridkit: geospatial grid management for rivers, reservoirs and communities.

Split rivers and communities into management grid units, assign grid workers,
check patrol coverage, find hotspots of reported problems, and serve maps.
GeoDataFrames in, GeoDataFrames and folium maps out.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from gridkit.assess import Assessment, assess
from gridkit.assign import AssignmentResult, Workload, assign_workers, reassign
from gridkit.communities import CommunitySplitReport, estimate_households, split_communities
from gridkit.crs import local_metric_crs, to_metric, to_wgs84
from gridkit.errors import (
    CRSError,
    GridkitError,
    GridkitWarning,
    InputFileError,
    InvalidLayerError,
    LayerNotFoundError,
    UnsupportedFormatError,
)
from gridkit.hotspots import hotspots
from gridkit.io import read_layer, read_layers, write_layer, write_layers
from gridkit.layers import LAYERS, check_layer
from gridkit.locate import locate
from gridkit.maps import compliance_map, coverage_map, diff_map, hotspot_map
from gridkit.patrols import patrol_compliance
from gridkit.rivers import ChiefCoverage, RiverSplit, chief_coverage, split_rivers
from gridkit.simulate import Simulation, simulate
from gridkit.validate import ValidationReport, validate_units
from gridkit.versions import carry_over, diff_units, publish, remap_unit_ids

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
