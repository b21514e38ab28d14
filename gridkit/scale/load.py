"""Loading partitioned GeoParquet (a national build, the units of a partitioned split)
into the PostGIS store, one task per partition file, in parallel.

Each layer's table is made first, once, with every column of every part (the union of
the parts' columns, typed from their frames and the contract); then the tasks COPY
their part into it side by side (:meth:`gridkit.store.PostGISStore.bulk_append`, a
transaction each that does not wait for the others), reprojected to WGS84 as the store
holds it. The directory's layers of the data contract are loaded (``river_units`` of
``gridkit national split-rivers`` into ``units``); other directories are left.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from gridkit.errors import InputFileError
from gridkit.layers import LAYERS
from gridkit.scale.engine import Engine
from gridkit.store.postgis import PostGISStore, upgrade
from gridkit.store.transfer import refuse_replacing

__all__ = ["TABLE_OF", "load_partitioned", "partition_files"]

#: directories whose rows go into a contract table of another name
TABLE_OF = {"river_units": "units"}

_STORES: dict[str, Any] = {}  # one store (a pool) per process and database


def partition_files(directory: str | Path) -> dict[str, list[Path]]:
    """The parquet files of each contract table under ``directory`` (a layer directory
    each, hive partitions below it), largest first.

    Examples
    --------
    >>> import tempfile
    >>> import shapely
    >>> from gridkit.national import write_partitioned
    >>> tmp = tempfile.TemporaryDirectory()
    >>> df = gpd.GeoDataFrame({"unit_id": ["1101-1", "1201-1"], "admin_code": ["110101",
    ...     "120101"]}, geometry=[shapely.Point(0, 0)] * 2, crs=4326)
    >>> _ = write_partitioned(df, tmp.name, "units")
    >>> {k: len(v) for k, v in partition_files(tmp.name).items()}
    {'units': 2}
    >>> tmp.cleanup()
    """
    root = Path(directory)
    if not root.is_dir():
        raise InputFileError(f"{root}: no such directory.", hint="Name a national build or -o.")
    out: dict[str, list[Path]] = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        table = TABLE_OF.get(d.name, d.name)
        files = sorted(d.rglob("*.parquet"), key=lambda p: (-p.stat().st_size, str(p)))
        if table in LAYERS and files:
            out.setdefault(table, []).extend(files)
    if not out:
        raise InputFileError(
            f"{root}: no layer of the data contract as partitioned GeoParquet "
            f"(directories such as buildings/, units/).",
            hint="Load the directory gridkit national build or split-communities wrote.",
        )
    return out


def _read(path: str | Path) -> pd.DataFrame:
    try:
        return gpd.read_parquet(path)
    except ValueError:  # no geometry column: an attribute table
        return pd.read_parquet(path)


def _store(url: str) -> Any:
    store = _STORES.get(url)
    if store is None:
        store = _STORES[url] = PostGISStore(url)
    return store


def _copy_part(task: tuple[str, str, str]) -> int:
    """Task: one part's rows appended to its table (in the worker's own pool)."""
    url, table, path = task
    return int(_store(url).bulk_append(table, _read(path)))


def _empty_of(files: list[Path]) -> pd.DataFrame:
    """A frame with no rows and every column of the parts (the first part of each
    distinct set of columns read)."""
    import pyarrow.parquet as pq

    seen: set[tuple[str, ...]] = set()
    empties = []
    for f in files:
        names = tuple(pq.read_schema(f).names)
        if names not in seen:
            seen.add(names)
            empties.append(_read(f).iloc[:0])
    frame = pd.concat(empties, ignore_index=True) if len(empties) > 1 else empties[0]
    if isinstance(empties[0], gpd.GeoDataFrame):
        frame = gpd.GeoDataFrame(frame, geometry=empties[0].geometry.name, crs=empties[0].crs)
    return frame


def load_partitioned(
    directory: str | Path, url: str, *, engine: Any = None, replace: bool = False
) -> dict[str, int]:
    """Load the partitioned GeoParquet layers under ``directory`` into the PostGIS
    database at ``url``: the tables made (every column of every part), then one task
    per part on ``engine`` (:class:`gridkit.scale.Engine`; default in this process).

    Tables of the database that hold rows are refused, named, unless ``replace``
    (they are made again). Returns the rows loaded per table.

    Examples
    --------
    >>> load_partitioned("national/", "postgresql://grid@db/zz")  # doctest: +SKIP
    {'admin_areas': 135, 'buildings': 10516, ...}
    """
    files = partition_files(directory)
    if not replace:
        refuse_replacing(url, list(files))
    upgrade(url)
    store = _store(url)
    for table, parts in files.items():
        store.save_layer(table, _empty_of(parts))
    tasks = [(url, table, str(p)) for table, parts in files.items() for p in parts]
    tasks.sort(key=lambda t: -Path(t[2]).stat().st_size)  # largest first: even ends
    rows = (engine or Engine.serial()).map(_copy_part, tasks, label="load")
    counts = dict.fromkeys(files, 0)
    for (_, table, _), n in zip(tasks, rows, strict=True):
        counts[table] += n
    store.analyze(list(files))  # the planner's statistics: indexed lookups from the start
    return counts
