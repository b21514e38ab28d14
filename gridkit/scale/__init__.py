"""Partitioned execution on Dask: the capabilities per admin partition, same answers.

``Engine`` (``engine``) runs partition tasks on a ``distributed.LocalCluster``, any
Dask scheduler, or in this process; ``Frames`` (``source``) holds in-memory layers
read like a :class:`gridkit.national.NationalDataset`. Per capability:
``communities`` (community partition), ``rivers`` (river splitting with a halo of
neighbouring areas), ``ops`` (locate, compliance, hotspots), ``chiefs`` (river chiefs'
compliance), ``staffing``; the ``*_layers_partitioned``/``*_points_partitioned``
functions take a user's own layers (lon/lat), partitioned by admin-code prefix.
What crosses a partition line is handled explicitly in each (see its module), and
every result equals the single-process run on the same data, ids included.
"""

from gridkit.scale.communities import split_communities_partitioned
from gridkit.scale.engine import Engine, require_dask
from gridkit.scale.source import Frames

__all__ = ["Engine", "Frames", "require_dask", "split_communities_partitioned"]
