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

__all__ = ["DaskWorkersOption", "EngineOption", "SchedulerOption", "open_engine"]

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
