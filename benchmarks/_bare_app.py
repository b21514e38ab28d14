"""The ceiling for the API benchmark: a bare FastAPI app doing no work."""

from fastapi import FastAPI, Request
from starlette.responses import Response

app = FastAPI()
_BODY = b'{"type":"FeatureCollection","features":[]}'
_store: list[bytes] = []


@app.post("/reports", status_code=201)
async def post(request: Request) -> Response:
    _store.append(await request.body())
    return Response(b'{"ok":true}', status_code=201, media_type="application/json")


@app.get("/collections/{name}/items")
def items(name: str) -> Response:
    return Response(_BODY, media_type="application/geo+json")
