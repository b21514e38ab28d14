"""API keys (``X-API-Key``), roles and admin-code scopes."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Annotated

import pandas as pd
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from api.service import Service, Svc
from gridkit import codes
from gridkit.ops.access import Person, appointments
from gridkit.ops.heads import head_scopes
from gridkit.store import ApiKey, find_key

PRIVATE_ROLES = {"supervisor", "dispatcher", "admin"}
#: the layers a person's appointments come from (:func:`gridkit.ops.access.appointments`)
APPOINTMENT_LAYERS = (
    "assignments",
    "river_chiefs",
    "staff",
    "building_heads",
    "units",
    "reaches",
)
KEY_CACHE_S = 5.0
COOKIE = "gridkit_key"


@dataclass(frozen=True)
class Principal:
    """Who is calling: role, scope (admin code prefix) and worker id."""

    role: str
    scope: str = ""
    worker_id: str | None = None
    name: str = "anonymous"
    key_id: str | None = None
    department_id: str | None = None
    person: Person = field(default_factory=Person)

    @property
    def owner(self) -> str:
        """Whose submissions these are (idempotency keys are theirs alone): the worker,
        whatever key they use now, else the API key."""
        return f"worker:{self.worker_id}" if self.worker_id else f"key:{self.key_id}"

    @property
    def sees_private(self) -> bool:
        return self.role in PRIVATE_ROLES

    def in_scope(self, admin_code: str | None) -> bool:
        """Whether ``admin_code`` lies in the caller's scope (:func:`gridkit.codes.in_scope`:
        a scope ``430200`` is the whole city); everything when the key has no scope."""
        code = None if admin_code is None else str(admin_code)
        return not self.scope or _code_in_scope(code, self.scope)

    @property
    def cache_key(self) -> tuple[bool, str]:
        # responses differ by private-field visibility and by scope, not by person
        return (self.sees_private, self.scope)


@functools.lru_cache(maxsize=1 << 16)
def _code_in_scope(code: str | None, scope: str) -> bool:
    # a service asks about the same few codes (units', workers') for every request:
    # remembered, each answer costs ~0.2 µs instead of gridkit.codes' ~3 µs
    return codes.in_scope(code, scope)


ANONYMOUS = Principal(role="anonymous")


#: declared as the OpenAPI security scheme (the docs' "Authorize" button); checked here
API_KEY = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    description="API key issued by `gridkit keys add` or `gridkit keys import`.",
    auto_error=False,
)


async def principal(
    request: Request,
    x_api_key: Annotated[str | None, Security(API_KEY)] = None,
) -> Principal:
    """Resolve the caller from ``X-API-Key``; anonymous only when the settings allow."""
    # the app's service as the Svc dependency gives it, without solving one more
    # dependency for every request
    service: Service = request.app.state.service
    store = service.store
    # map pages open in browsers, which cannot send headers: they carry the key in a
    # cookie set by /maps/...?key= (see api.pages), taken on map pages only
    on_map = request.scope["path"].startswith("/maps/")  # not request.url: built per call
    if not x_api_key and on_map:
        # a key in the URL wins: it is what the user just asked with, the cookie older
        x_api_key = request.query_params.get("key") or request.cookies.get(COOKIE)
    if not x_api_key:
        if on_map and service.settings.anonymous_read:
            return ANONYMOUS  # maps, as the public sees them: no private fields
        raise ApiError(401, "An API key is required in the X-API-Key header.")
    if len(x_api_key) > service.settings.max_key_length:  # never hashed nor remembered
        raise ApiError(401, "Unknown or revoked API key.")
    cache = service.keys_cache  # found keys only, the least recently used forgotten
    now = time.monotonic()
    hit: tuple[float, ApiKey, Principal | None] | None = cache.get(x_api_key)
    if hit is None or now - hit[0] > KEY_CACHE_S:  # short TTL so revocations take effect
        key = await run_in_threadpool(find_key, store, x_api_key)
        if key is None:  # a failed lookup is not remembered: bogus keys cost no memory
            cache.pop(x_api_key)
            raise ApiError(401, "Unknown or revoked API key.")
        # any key but a person's is the same caller until the entry expires: made once
        hit = (now, key, None if key.worker_id else _principal(key, person_of(service, key)))
        cache.put(x_api_key, hit)
    key, known = hit[1], hit[2]
    if known is not None:
        return known
    # a person's key reads their appointments (the store: off the event loop), which
    # begin and end in time
    person = await run_in_threadpool(person_of, service, key)
    scope = key.scope
    if not scope and _heads_only(person):
        # a building head collects in his buildings' area (小事不出门): the narrowest area
        # holding their communities, from his appointments
        scope = await run_in_threadpool(_head_scope, service, str(key.worker_id))
    return _principal(key, person, scope)


def _principal(key: ApiKey, person: Person, scope: str | None = None) -> Principal:
    """The caller holding ``key``, with ``person``'s posts (``scope``: the key's own
    unless given)."""
    return Principal(
        role=key.role,
        scope=key.scope if scope is None else scope,
        worker_id=key.worker_id,
        name=key.name,
        key_id=key.key_id,
        department_id=key.department_id,
        person=person,
    )


def _heads_only(person: Person) -> bool:
    """Whether a person's only appointments are buildings (a building head)."""
    others = (
        person.units or person.sections or person.departments or person.dispatch,
        person.supervise or person.admin,
    )
    return bool(person.buildings) and not any(others)


def _head_scope(service: Svc, worker_id: str) -> str:
    """The admin code a building head reports in (:func:`gridkit.ops.heads.head_scopes`),
    kept per version of the layers it comes from; "" when it cannot be told."""
    names = ("building_heads", "buildings", "communities")

    def build() -> dict[str, str]:
        layers = [service.layer(n) for n in names]
        if any(df is None for df in layers):
            return {}
        found = head_scopes(*layers)
        return {str(k): str(v) for k, v in found.dropna().items()}

    return service.cached("head_scopes", names, build).get(worker_id, "")


def person_of(service: Svc, key: ApiKey) -> Person:
    """What the key's holder may do: their appointments (for a person's key), kept per
    version of the layers they come from, plus the posts of the key itself."""
    base = Person(key.worker_id)
    if key.worker_id:
        # appointments begin and end in time: a person's are looked at again each hour,
        # and whenever a layer they come from changes
        hour = pd.Timestamp.now(tz="UTC").floor("h")
        base = service.current(
            service.persons,
            (key.worker_id, hour),
            APPOINTMENT_LAYERS,
            lambda: appointments(
                str(key.worker_id), **{n: service.layer(n) for n in APPOINTMENT_LAYERS}, at=hour
            ),
        )
    return base.with_posts(
        dispatch=(key.scope,) if key.role == "dispatcher" else (),
        supervise=(key.scope,) if key.role == "supervisor" else (),
        departments=frozenset([key.department_id])
        if key.role == "department" and key.department_id
        else frozenset(),
        admin=key.role == "admin",
    )


Caller = Annotated[Principal, Depends(principal)]


def require(caller: Principal, *roles: str) -> None:
    """403 unless ``caller`` has one of ``roles``."""
    if caller.role not in roles:
        raise ApiError(
            403, f"Role {caller.role!r} may not do this; needs one of {', '.join(roles)}."
        )
