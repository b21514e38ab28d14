"""The peer for durable writes over PostGIS: a bare FastAPI app inserting each report
with psycopg (a pooled connection, one committed INSERT per request), no checks."""

import os

import orjson
from fastapi import FastAPI, Request
from psycopg_pool import ConnectionPool
from starlette.responses import Response

pool = ConnectionPool(os.environ["BARE_DATABASE_URL"], min_size=4, max_size=16, open=True)
app = FastAPI()


@app.post("/reports", status_code=201)
async def post(request: Request) -> Response:
    body = orjson.loads(await request.body())
    x, y = body["geometry"]["coordinates"]
    with pool.connection() as con:  # committed when the block ends
        rid = con.execute(
            "INSERT INTO bare_reports (props, geometry) VALUES "
            "(%s, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) RETURNING id",
            (orjson.dumps(body["properties"]).decode(), x, y),
        ).fetchone()[0]
    return Response(orjson.dumps({"id": rid}), status_code=201, media_type="application/json")
