"""River grids (河长制): network checks, admin cleaning, splitting rivers into reaches
and corridor units, and the chiefs' four-level coverage.

Modules: ``network`` (flow direction, confluences), ``admin`` (cleaning the admin
tiling), ``linesplit`` (vectorised cuts of lines), ``corridors`` (corridor and water
units), ``split`` (``split_rivers``) and ``chiefs`` (``chief_coverage``).
"""

from gridkit.rivers.chiefs import ChiefCoverage, chief_coverage
from gridkit.rivers.split import RiverSplit, split_rivers

__all__ = ["ChiefCoverage", "RiverSplit", "chief_coverage", "split_rivers"]
