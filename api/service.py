"""What the routes work with: settings, the store, caches and the report writer.

:func:`api.create_app` makes one :class:`Service` and hands it to every route through
a FastAPI dependency (``service: Svc``), the way tipg and titiler inject their
catalogues and readers: no route reaches into ``app.state`` for its parts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
from fastapi import Depends, Request

from api.settings import Settings
from gridkit.ops.intake import service_area
from gridkit.store import Store, database_url

if TYPE_CHECKING:  # typing only: the writer module needs this one (no import loop)
    import shapely

    from api.writer import ReportWriter

_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def write_lock_of(workspace: object) -> threading.Lock:
    """The writer's lock of ``workspace`` in this process: one writer at a time per
    workspace (the read-modify-write of a layer is atomic), however many services are
    open on it; services over other workspaces never wait on it.

    Examples
    --------
    >>> write_lock_of("a.gpkg") is write_lock_of("./a.gpkg")
    True
    >>> write_lock_of("a.gpkg") is write_lock_of("b.gpkg")
    False
    """
    url = database_url(workspace)
    key = url if url is not None else str(Path(str(workspace)).resolve())
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, threading.Lock())


class LRU:
    """A mapping keeping its ``size`` most recently used entries, safe across threads
    (the routes run in a thread pool): what a caller can make the service remember is
    bounded, whatever they send.

    Examples
    --------
    >>> cache = LRU(2)
    >>> cache.put("a", 1); cache.put("b", 2); cache.get("a"); cache.put("c", 3)
    1
    >>> sorted(cache.keys()), len(cache)
    (['a', 'c'], 2)
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The value of ``key`` (now the most recently used), or ``default``."""
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` under ``key``, forgetting the least recently used beyond size."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def pop(self, key: Hashable, default: Any = None) -> Any:
        """Forget ``key``; its value or ``default``."""
        with self._lock:
            return self._items.pop(key, default)

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items


@dataclass(eq=False)
class Service:
    """The parts of one running service.

    Parameters
    ----------
    settings
        The service settings.
    store
        The workspace store.
    geojson_cache, keys_cache, page_cache, stats_cache
        Serialised features per layer version and view; API keys looked up lately
        (found ones only); map pages; figures. The last three are :class:`LRU` bounded
        by the settings, pages and figures each in their current version only.
    lookups
        Small lookups derived from layers (service area, known places, worker
        areas...), each kept until the layers behind it change (:meth:`cached`).
    persons
        The appointments of the people calling lately (:func:`api.auth.person_of`), each
        kept until the layers of appointments change.
    write_lock
        Held while a layer is read, changed and written back.
    """

    settings: Settings
    store: Store
    geojson_cache: dict = field(default_factory=dict)
    keys_cache: LRU = field(init=False)
    page_cache: LRU = field(init=False)
    stats_cache: LRU = field(init=False)
    lookups: LRU = field(init=False)
    persons: LRU = field(init=False)
    write_lock: threading.Lock | None = None  # the workspace's (write_lock_of)
    reports: ReportWriter | None = None  # set by create_app (it needs the service)

    def __post_init__(self) -> None:
        self.keys_cache = LRU(self.settings.key_cache_size)
        self.page_cache = LRU(self.settings.figure_cache_size)
        self.stats_cache = LRU(self.settings.figure_cache_size)
        self.lookups = LRU(self.settings.figure_cache_size)
        self.persons = LRU(self.settings.key_cache_size)
        if self.write_lock is None:
            self.write_lock = write_lock_of(self.settings.workspace)

    def current(self, cache: LRU, key: Hashable, layers: tuple[str, ...], build: Callable) -> Any:
        """``build()`` kept in ``cache`` under ``key`` with the versions of the ``layers``
        it reads: built again when one changes, replacing the old version (a write
        never leaves a stale page or figure behind)."""
        gens = tuple(self.store.generation(n) for n in layers)
        hit = cache.get(key)
        if hit is None or hit[0] != gens:
            hit = (gens, build())
            cache.put(key, hit)
        return hit[1]

    def layer(self, name: str) -> pd.DataFrame | None:
        """The layer ``name`` as stored, or None when the workspace has none."""
        return self.store.read(name) if name in self.store.layers() else None

    def cached(self, name: str, layers: tuple[str, ...], build: Callable[[], Any]) -> Any:
        """``build()`` kept until one of the ``layers`` it reads changes (see
        :meth:`current`)."""
        return self.current(self.lookups, name, layers, build)

    def service_area(self) -> shapely.Geometry | None:
        """The area served (:func:`gridkit.ops.intake.service_area`), kept per version
        of the admin areas and units."""
        return self.cached(
            "service_area",
            ("admin_areas", "units"),
            lambda: service_area(self.layer("admin_areas"), self.layer("units")),
        )


async def service(request: Request) -> Service:
    """The dependency giving a route its app's :class:`Service` (async: a plain
    ``def`` dependency would cost every request a hop to the thread pool)."""
    return request.app.state.service


Svc = Annotated[Service, Depends(service)]
