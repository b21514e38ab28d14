"""What the routes work with: settings, the store, caches and the report writer.

:func:`api.create_app` makes one :class:`Service` and hands it to every route through
a FastAPI dependency (``service: Svc``), the way tipg and titiler inject their
catalogues and readers: no route reaches into ``app.state`` for its parts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
from fastapi import Depends, Request

from api.settings import Settings
from gridkit.ops.intake import service_area
from gridkit.store import Store

if TYPE_CHECKING:  # typing only: the writer module needs this one (no import loop)
    import shapely

    from api.writer import ReportWriter

#: one writer at a time: the read-modify-write of a layer is atomic
WRITE_LOCK = threading.Lock()


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
        Serialised features per layer version and view; API keys looked up lately;
        map pages; figures.
    lookups
        Small lookups derived from layers (service area, known places, worker
        areas...), each kept until the layers behind it change (:meth:`cached`).
    write_lock
        Held while a layer is read, changed and written back.
    """

    settings: Settings
    store: Store
    geojson_cache: dict = field(default_factory=dict)
    keys_cache: dict = field(default_factory=dict)
    page_cache: dict = field(default_factory=dict)
    stats_cache: dict = field(default_factory=dict)
    lookups: dict = field(default_factory=dict)
    write_lock: threading.Lock = field(default=WRITE_LOCK)
    reports: ReportWriter | None = None  # set by create_app (it needs the service)

    def layer(self, name: str) -> pd.DataFrame | None:
        """The layer ``name`` as stored, or None when the workspace has none."""
        return self.store.read(name) if name in self.store.layers() else None

    def cached(self, name: str, layers: tuple[str, ...], build: Callable[[], Any]) -> Any:
        """``build()`` kept until one of the ``layers`` it reads changes."""
        key = (name, *(self.store.generation(n) for n in layers))
        if key not in self.lookups:
            for stale in [k for k in self.lookups if k[0] == name]:
                del self.lookups[stale]
            self.lookups[key] = build()
        return self.lookups[key]

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
