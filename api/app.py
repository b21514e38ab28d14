"""The app factory: settings in, FastAPI app out; routes call gridkit and the store."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from api import errors, features, pages, stats, writes
from api.settings import Settings
from gridkit import __version__
from gridkit.store import open_store


def create_app(settings: Settings | None = None, **overrides: object) -> FastAPI:
    """Build the gridkit service for a workspace.

    Examples
    --------
    >>> from api import create_app  # doctest: +SKIP
    >>> app = create_app(workspace="demo-workspace/zhuzhou.gpkg")  # doctest: +SKIP
    """
    settings = settings or Settings(**overrides)
    app = FastAPI(
        title=f"{settings.title} API",
        version=__version__,
        description="Grid units, reaches, reports, patrols and workers "
        "(OGC API - Features), problem reports and maps.",
    )
    app.state.settings = settings
    app.state.store = open_store(settings.workspace)
    app.state.geojson_cache = {}
    app.state.keys_cache = {}
    app.state.page_cache = {}
    app.state.stats_cache = {}
    errors.install(app)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > settings.max_body_bytes:
            return errors.problem(
                413,
                f"Request body of {size} bytes exceeds the limit of "
                f"{settings.max_body_bytes} bytes.",
            )
        return await call_next(request)

    @app.get("/healthz", tags=["service"], summary="Liveness")
    def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    app.include_router(features.router)
    app.include_router(pages.router)
    app.include_router(writes.router)
    app.include_router(stats.router)
    return app
