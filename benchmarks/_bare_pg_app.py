"""The peer for durable writes over PostGIS: a bare FastAPI app inserting each report
with psycopg (an async pooled connection, one committed INSERT per request, the event
loop free while the database commits), no checks."""

import os
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI, Request
from psycopg_pool import AsyncConnectionPool
from starlette.responses import Response

pool = AsyncConnectionPool(os.environ["BARE_DATABASE_URL"], min_size=4, max_size=16, open=False)


@asynccontextmanager
async def lifespan(_app: FastAPI):
    await pool.open()
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/reports", status_code=201)
async def post(request: Request) -> Response:
    body = orjson.loads(await request.body())
    x, y = body["geometry"]["coordinates"]
    async with pool.connection() as con:  # committed when the block ends
        cur = await con.execute(
            "INSERT INTO bare_reports (props, geometry) VALUES "
            "(%s, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) RETURNING id",
            (orjson.dumps(body["properties"]).decode(), x, y),
        )
        rid = (await cur.fetchone())[0]
    return Response(orjson.dumps({"id": rid}), status_code=201, media_type="application/json")
