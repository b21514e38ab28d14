"""The engine options shared by the commands that scale: ``--engine``, ``--scheduler``,
``--dask-workers``.

``--engine dask`` runs one task per partition on Dask: a ``LocalCluster`` of
``--dask-workers`` processes, or the scheduler at ``--scheduler``; ``--engine serial``
runs the same tasks one after the other in this process. ``--workers`` stays the
workers layer (``gridkit assign``).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from gridkit.cli.util import console

__all__ = [
    "DaskWorkersOption",
    "EngineOption",
    "PartitionByOption",
    "SchedulerOption",
    "check_partitions",
    "open_engine",
    "partitions_line",
]

EngineOption = Annotated[
    str,
    typer.Option("--engine", help="serial (this process) or dask (one task per partition)."),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option("--scheduler", help="Address of a Dask scheduler (tcp://host:8786)."),
]
DaskWorkersOption = Annotated[
    int,
    typer.Option("--dask-workers", help="Processes of the local Dask cluster.", min=1),
]

PartitionByOption = Annotated[
    str,
    typer.Option(
        "--partition-by",
        help="county, city or province: the admin-code prefix of a task (with --engine dask).",
    ),
]


def check_partitions(df, by: str, *, what: str) -> int:
    """The number of partitions of level ``by`` in ``df`` (its ``admin_code``), or the
    one-line error naming ``what`` when it has no admin code to partition on.

    Examples
    --------
    >>> import pandas as pd
    >>> check_partitions(pd.DataFrame({"admin_code": ["430202001001", "430203001001"]}),
    ...                  "county", what="units.gpkg")
    2
    """
    from gridkit.scale.partition import area_keys

    return int(area_keys(df, by, what=what).nunique())


def partitions_line(result, engine, label: str) -> str:
    """What a partitioned run did: partitions, seconds of its tasks, Dask workers.

    Examples
    --------
    >>> import pandas as pd
    >>> from gridkit.scale import Engine
    >>> r = pd.DataFrame()
    >>> r.attrs["partitions"] = pd.DataFrame({"key": ["430202", "430203"]})
    >>> partitions_line(r, Engine.serial(), "locate")
    '2 partitions, 0.0 s in this process'
    """
    parts = result.attrs.get("partitions")
    n = 0 if parts is None else len(parts)
    where = "in this process" if engine.client is None else f"on {engine.workers} Dask worker(s)"
    return f"{n} partition{'s' if n != 1 else ''}, {engine.timings.get(label, 0.0):.1f} s {where}"


def open_engine(engine: str, scheduler: str | None, dask_workers: int):
    """The :class:`gridkit.scale.Engine` the options ask for (a context manager).

    Examples
    --------
    >>> with open_engine("serial", None, 2) as e:
    ...     e.workers
    1
    """
    from gridkit.scale import Engine

    if engine not in ("dask", "serial"):
        raise typer.BadParameter(f"--engine is serial or dask, not {engine!r}")
    if engine == "serial" and scheduler is None:
        return Engine.serial()
    bar = sys.stdout.isatty()  # Dask's progress bar redraws a line: terminals only
    if scheduler:
        return Engine.connect(scheduler, progress=bar)
    eng = Engine.local(dask_workers, progress=bar, dashboard=True)
    if eng.dashboard:
        console.print(f"Dask dashboard: {eng.dashboard}", highlight=False)
    return eng
