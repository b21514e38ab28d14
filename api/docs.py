"""The interactive API docs (Swagger UI), served with no internet access.

FastAPI's ``/docs`` loads Swagger UI from a CDN, which intranets cannot reach; here the
page loads it from the ``swagger-ui-bundle`` package, through the app.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import FileResponse, HTMLResponse

from api.errors import ApiError

router = APIRouter(include_in_schema=False)

FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}


def _folder() -> Path:
    try:
        from swagger_ui_bundle import swagger_ui_path  # optional: the api extra has it
    except ImportError:  # pragma: no cover - the api extra installs it
        raise ApiError(
            404, "The API docs need the swagger-ui-bundle package (pip install 'gridkit[api]')."
        ) from None
    return Path(swagger_ui_path)


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    title = f"{request.app.title} – docs"
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=title,
        swagger_js_url="/docs/swagger-ui-bundle.js",
        swagger_css_url="/docs/swagger-ui.css",
        swagger_favicon_url="data:,",  # none: no request leaves the intranet
    )


@router.get("/docs/{name}")
def docs_asset(name: str) -> FileResponse:
    if name not in FILES:
        raise ApiError(404, f"No docs asset {name!r}.")
    return FileResponse(
        _folder() / name, media_type=FILES[name], headers={"Cache-Control": "public, max-age=86400"}
    )
