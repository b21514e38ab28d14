"""Community grids (网格化管理): building clusters ("atoms") tiling each community and
a household-balanced partition of them into grid units.

Modules: ``atoms`` (cells around building clusters), ``partition`` (METIS, repair,
refinement) and ``split`` (``split_communities``, ``estimate_households``).
"""

from gridkit.communities.split import (
    CommunitySplitReport,
    estimate_households,
    part_atoms,
    split_communities,
)

__all__ = ["CommunitySplitReport", "estimate_households", "part_atoms", "split_communities"]
