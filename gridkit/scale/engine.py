"""Where partition tasks run: in this process, or on a Dask cluster.

:class:`Engine` wraps a ``distributed.Client``: a ``LocalCluster`` of ``n_workers``
single-threaded processes by default, or any scheduler address for a real cluster.
``engine.map(func, items)`` runs one task per item and gives the results back in the
order of ``items`` (Dask's progress bar on the terminal; the dashboard link when
Bokeh is installed). ``Engine.serial()`` runs the same tasks one after the other in
this process, for comparison and for machines without the ``scale`` extra.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gridkit.errors import GridkitError, MissingExtraError

__all__ = ["Engine", "SchedulerError", "require_dask"]


class SchedulerError(GridkitError, ConnectionError):
    """The Dask scheduler given cannot be reached, or its address is malformed."""


def _address_problem(address: str) -> str | None:
    """What is wrong with a scheduler address, or None: Dask's own parsing (which
    names the problem), then a port in range and a host that resolves.

    Examples
    --------
    >>> _address_problem("bogus"), _address_problem("tcp://127.0.0.1:8786")
    ('missing port number', None)
    >>> _address_problem("tcp://127.0.0.1:http")
    "port 'http' is not a number"
    """
    import socket

    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    try:
        scheme, loc = parse_address(address)
        if scheme not in ("tcp", "tls", "ws", "wss"):
            return None  # inproc://, ucx://: Dask checks these itself
        port_text = loc.rpartition(":")[2]
        if not port_text.isdigit():
            return f"port {port_text!r} is not a number" if ":" in loc else "missing port number"
        host, port = parse_host_port(loc)
    except ValueError as exc:
        return str(exc).replace(f" in address {address!r}", "").strip() or "not HOST:PORT"
    if not 0 < port < 65536:
        return f"port {port} is out of range"
    try:
        socket.getaddrinfo(host, port)
    except OSError:
        return f"host {host!r} not found"
    return None


_MODULES = ("dask", "distributed", "dask_geopandas")
#: glibc's mmap threshold for the workers of Engine.local (bytes): see Engine.local
MMAP_THRESHOLD = "33554432"


def require_dask(feature: str = "partitioned runs") -> None:
    """Import dask, distributed and dask-geopandas, or say to install the extra.

    Raises
    ------
    MissingExtraError
        Naming the missing module and ``pip install "gridkit[scale]"``.

    Examples
    --------
    >>> require_dask() is None
    True
    """
    import importlib

    for name in _MODULES:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise MissingExtraError(
                f"{feature} needs the optional 'scale' extra ({name} is not installed).",
                hint='pip install "gridkit[scale]"',
            ) from e


@dataclass
class Engine:
    """Runs partition tasks (``map``) on Dask or in this process.

    Attributes
    ----------
    client
        A ``distributed.Client``, or ``None`` to run in this process.
    progress
        Show Dask's progress bar.
    timings
        Seconds of each ``map`` call, by the label given.

    Examples
    --------
    >>> with Engine.serial() as e:
    ...     e.map(len, [[1], [1, 2]])
    [1, 2]
    """

    client: Any = None
    progress: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    _cluster: Any = None

    @classmethod
    def serial(cls) -> Engine:
        """An engine running every task in this process, one after the other.

        Examples
        --------
        >>> Engine.serial().workers
        1
        """
        return cls()

    @classmethod
    def local(
        cls,
        n_workers: int = 2,
        *,
        memory_limit: str | None = None,
        progress: bool = False,
        dashboard: bool = False,
        profile: bool = False,
    ) -> Engine:
        """A ``distributed.LocalCluster`` of ``n_workers`` processes, one thread each;
        Dask's statistical profiler off unless ``profile`` (it keeps an hour of call
        trees in every worker, ~1 MB a task measured by ``benchmarks/scaling.py``).

        The workers start with glibc's ``MALLOC_MMAP_THRESHOLD_`` at 32 MiB (unless
        Dask's config sets one): Dask's own ``MALLOC_TRIM_THRESHOLD_`` alone fixes the
        mmap threshold at 128 KiB, so every large NumPy temporary is a fresh mapping
        and its page faults cost ~40 % more CPU than the same work in a plain process
        (measured on the staffing solvers: ``benchmarks/staffing_province.py``).

        Examples
        --------
        >>> with Engine.local(1) as e:  # doctest: +SKIP
        ...     e.map(abs, [-1])
        [1]
        """
        require_dask()
        import dask
        from distributed import Client, LocalCluster

        spawn = "distributed.nanny.pre-spawn-environ"
        environ = {"MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD, **dask.config.get(spawn, {})}
        with dask.config.set({"distributed.worker.profile.enabled": profile, spawn: environ}):
            cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                memory_limit=memory_limit or "auto",
                dashboard_address=":0" if dashboard else None,
            )
        return cls(client=Client(cluster), progress=progress, _cluster=cluster)

    @classmethod
    def connect(cls, address: str, *, progress: bool = False, timeout_s: float = 10.0) -> Engine:
        """An engine on an existing Dask scheduler (``tcp://host:8786``).

        Raises
        ------
        SchedulerError
            When ``address`` is no scheduler address (``host:port``, with an optional
            ``tcp://``/``tls://``/``ucx://``/``inproc://`` scheme), or no scheduler
            answers there within ``timeout_s`` seconds.

        Examples
        --------
        >>> try:
        ...     Engine.connect("bogus")
        ... except SchedulerError as e:
        ...     print(e.message)
        --scheduler 'bogus' is no Dask scheduler address (missing port number).
        """
        require_dask()
        from distributed import Client

        problem = _address_problem(address)
        if problem:
            raise SchedulerError(
                f"--scheduler {address!r} is no Dask scheduler address ({problem}).",
                hint="Give it as tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786 (a scheduler "
                "started with `dask scheduler` listens on port 8786).",
            )
        try:
            client = Client(address, timeout=f"{timeout_s}s")
        except (OSError, TimeoutError) as exc:
            raise SchedulerError(
                f"no Dask scheduler answered at {address} within {timeout_s:g} s "
                f"({type(exc).__name__}).",
                hint="Is the scheduler running? Start one with `dask scheduler` (and workers "
                "with `dask worker tcp://HOST:8786`), check the host and port, or drop "
                "--scheduler to use a local cluster.",
            ) from None
        return cls(client=client, progress=progress)

    @property
    def workers(self) -> int:
        """Number of Dask workers (1 in this process).

        Examples
        --------
        >>> Engine().workers
        1
        """
        if self.client is None:
            return 1
        return len(self.client.scheduler_info()["workers"])

    @property
    def dashboard(self) -> str | None:
        """The dashboard's address, when there is one.

        Examples
        --------
        >>> Engine().dashboard is None
        True
        """
        return None if self.client is None else self.client.dashboard_link

    def map(
        self, func: Callable[[Any], Any], items: Sequence[Any], *, label: str = "map"
    ) -> list[Any]:
        """``[func(x) for x in items]``, one task per item, results in order.

        Examples
        --------
        >>> Engine().map(str, [1, 2], label="str")
        ['1', '2']
        """
        t0 = time.perf_counter()
        if self.client is None:
            out = [func(x) for x in items]
        else:
            out = self._gathered(self.client.map(func, list(items), pure=False), label)
        self.timings[label] = self.timings.get(label, 0.0) + time.perf_counter() - t0
        return out

    def _gathered(self, futures: list[Any], label: str) -> list[Any]:
        """The futures' results in order, each fetched as its task ends and then
        released, so a worker holds no finished task's result while the others run (a
        worker's memory is its task's, not the sum of its tasks'). With ``progress``,
        Dask's own progress bar (``distributed``'s ``TextProgressBar``, fed by the
        scheduler) redraws a line on standard output while they run; the dashboard shows
        the rest."""
        from distributed import as_completed

        at = {f.key: i for i, f in enumerate(futures)}
        out: list[Any] = [None] * len(futures)
        bar = _dask_bar(futures) if self.progress else None
        try:
            for future, result in as_completed(futures, with_results=True):
                out[at[future.key]] = result
                future.release()
        finally:
            if bar is not None:
                bar.join(timeout=5)
        return out

    def close(self) -> None:
        """Close the client (and the local cluster this engine started).

        Examples
        --------
        >>> Engine().close()
        """
        if self.client is not None:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _dask_bar(futures: list[Any]) -> Any:
    """Dask's ``TextProgressBar`` over ``futures``, drawn by a thread of its own (it
    waits on the scheduler's feed; the caller meanwhile takes the results), returned
    once the scheduler has set it up: a released result is then one the bar has
    counted (it stops with an error only for a task forgotten before it ends)."""
    import threading

    from distributed.diagnostics.progressbar import TextProgressBar

    bar = TextProgressBar(futures, start=False, interval="200ms")
    thread = threading.Thread(
        target=bar._loop_runner.run_sync, args=(bar.listen,), name="dask-progress", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not hasattr(bar, "_last_response") and thread.is_alive():
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return thread
