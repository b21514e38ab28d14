"""API keys and roles: a service over a :class:`~gridkit.store.base.Store`.

Keys are random tokens shown once; the store keeps only their SHA-256 hash, in the
service table ``gridkit_api_keys``, with the role, the admin-code scope and, for
worker keys, the worker. The persistence interface knows nothing of keys: these
functions use its service-table primitives (``records``, ``add_records``,
``set_records``).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import pandas as pd

from gridkit.errors import GridkitError
from gridkit.store.base import Column, RecordTable, Store

__all__ = [
    "KEYS",
    "ROLES",
    "ApiKey",
    "KeyRequest",
    "check_key_requests",
    "find_key",
    "hash_key",
    "issue_key",
    "issue_keys",
    "list_keys",
    "revoke_key",
]

#: viewer reads; worker: a person's key (what they may do follows from their
#: appointments, :mod:`gridkit.ops.access`); dispatcher and supervisor: posts at the
#: centre for their scope; department: staff of one department; planner publishes grids
ROLES = ("viewer", "worker", "dispatcher", "supervisor", "department", "planner", "admin")

#: the service table of issued keys (the secret itself is never stored)
KEYS = RecordTable(
    "gridkit_api_keys",
    (
        Column("key_id"),
        Column("name", required=True),
        Column("role", required=True),
        Column("scope", required=True, default=""),
        Column("worker_id"),
        Column("department_id"),
        Column("hash", required=True, unique=True),
        Column("created_at", required=True),
        Column("revoked", int, required=True, default=0),
    ),
    key="key_id",
)
#: what ``gridkit keys list`` shows: everything but the hash
LISTED = [
    "key_id",
    "name",
    "role",
    "scope",
    "worker_id",
    "department_id",
    "created_at",
    "revoked",
]


def hash_key(key: str) -> str:
    """SHA-256 of an API key: keys are random tokens, so a fast hash is the right one.

    Examples
    --------
    >>> hash_key("gk_secret")[:16], len(hash_key("gk_secret"))
    ('d38efb589afe2585', 64)
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """An issued API key (the secret itself is never stored).

    Examples
    --------
    >>> k = ApiKey("a1b2c3", "张三", "worker", scope="430202", worker_id="W1")
    >>> k.role, k.revoked
    ('worker', False)
    """

    key_id: str
    name: str
    role: str
    scope: str  # admin code prefix; "" = everywhere
    worker_id: str | None
    revoked: bool = False
    department_id: str | None = None


class KeyRequest(NamedTuple):
    """A key to issue: who it is for, the role, the admin-code scope, the worker.

    Examples
    --------
    >>> KeyRequest("王主任", "supervisor", scope="430203")
    KeyRequest(name='王主任', role='supervisor', scope='430203', worker_id=None, department_id=None)
    """

    name: str
    role: str
    scope: str = ""
    worker_id: str | None = None
    department_id: str | None = None


def _problem(r: KeyRequest, name: str, role: str, scope: str, worker: str | None) -> str | None:
    """What is wrong with one request, or None."""
    if not name:
        return "no name"
    if role not in ROLES:
        return f"unknown role {r.role!r}"
    if role == "worker" and not worker:
        return "a worker key needs a worker_id"
    if role == "department" and not (r.department_id or "").strip():
        return "a department key needs a department_id"
    if scope and not scope.isdigit():
        return f"scope {scope!r} is not an admin code (digits)"
    return None


def check_key_requests(
    requests: Sequence[KeyRequest], *, source: str = "", rows: Sequence[int] | None = None
) -> list[KeyRequest]:
    """The requests cleaned (blanks stripped, scope ``""`` for none), or one error naming
    every bad one; ``source`` and ``rows`` (a CSV file and its line numbers) say where
    they came from.

    Examples
    --------
    >>> check_key_requests([KeyRequest(" 张三 ", "Worker", "", "W1")])
    [KeyRequest(name='张三', role='worker', scope='', worker_id='W1', department_id=None)]
    >>> try:
    ...     check_key_requests([KeyRequest("x", "boss"), KeyRequest("y", "worker")],
    ...                        source="keys.csv", rows=[2, 3])
    ... except GridkitError as exc:
    ...     print(exc.message)
    keys.csv: row 2: unknown role 'boss'; row 3: a worker key needs a worker_id.
    """
    rows = list(rows) if rows is not None else list(range(1, len(requests) + 1))
    where = f"{source}: " if source else ""
    if not requests:
        raise GridkitError(f"{where}no keys to issue.", hint="Give at least one name and role.")
    clean, bad = [], []
    for row, r in zip(rows, requests, strict=True):
        name = (r.name or "").strip()
        role = (r.role or "").strip().lower()
        scope = (r.scope or "").strip()
        worker = (r.worker_id or "").strip() or None
        problem = _problem(r, name, role, scope, worker)
        if problem:
            bad.append(problem if len(requests) == 1 and not source else f"row {row}: {problem}")
        dept = (r.department_id or "").strip() or None
        clean.append(KeyRequest(name, role, scope, worker, dept))
    if bad:
        raise GridkitError(
            where + "; ".join(bad) + ".",
            hint=f"Roles: {', '.join(ROLES)}; worker keys need a worker id (workers write "
            "only on their own units); a scope is an admin code prefix. Nothing was issued.",
        )
    return clean


def issue_keys(store: Store, requests: Sequence[KeyRequest]) -> list[tuple[str, ApiKey]]:
    """Issue several keys in one transaction, all or none (checked by
    :func:`check_key_requests`): each secret (shown once, stored only as its hash) with
    its key.

    Examples
    --------
    A worker's key and a district supervisor's, at once:

    >>> import tempfile
    >>> from gridkit.store import create_store
    >>> from gridkit.synth.ops import grid_units
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = create_store(f"{tmp.name}/ws.gpkg", {"units": grid_units(2, 1)})
    >>> issued = issue_keys(store, [KeyRequest("张三", "worker", worker_id="W1"),
    ...                             KeyRequest("王主任", "supervisor", scope="430203")])
    >>> [(k.name, k.role) for _, k in issued], issued[0][0].startswith("gk_")
    ([('张三', 'worker'), ('王主任', 'supervisor')], True)
    >>> tmp.cleanup()
    """
    checked = check_key_requests(requests)
    issued = [
        (
            "gk_" + secrets.token_urlsafe(32),
            ApiKey(
                secrets.token_hex(6), r.name, r.role, r.scope, r.worker_id, False, r.department_id
            ),
        )
        for r in checked
    ]
    now = pd.Timestamp.now(tz="UTC").isoformat()
    store.add_records(
        KEYS,
        [
            {
                "key_id": k.key_id,
                "name": k.name,
                "role": k.role,
                "scope": k.scope,
                "worker_id": k.worker_id,
                "department_id": k.department_id,
                "hash": hash_key(secret),
                "created_at": now,
            }
            for secret, k in issued
        ],
    )
    return issued


def issue_key(
    store: Store,
    name: str,
    *,
    role: str,
    scope: str = "",
    worker_id: str | None = None,
    department_id: str | None = None,
) -> tuple[str, ApiKey]:
    """Issue one key: the secret (shown once, stored only as its hash) and the key.

    Examples
    --------
    A viewer's key, found again by its secret:

    >>> import tempfile
    >>> from gridkit.store import create_store
    >>> from gridkit.synth.ops import grid_units
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = create_store(f"{tmp.name}/ws.gpkg", {"units": grid_units(2, 1)})
    >>> secret, key = issue_key(store, "看", role="viewer")
    >>> find_key(store, secret) == key
    True
    >>> tmp.cleanup()
    """
    return issue_keys(store, [KeyRequest(name, role, scope, worker_id, department_id)])[0]


def find_key(store: Store, key: str) -> ApiKey | None:
    """The key whose secret is ``key``; None when unknown or revoked.

    Examples
    --------
    The secret finds its key; an unknown one finds nothing:

    >>> import tempfile
    >>> from gridkit.store import create_store
    >>> from gridkit.synth.ops import grid_units
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = create_store(f"{tmp.name}/ws.gpkg", {"units": grid_units(2, 1)})
    >>> secret, _ = issue_key(store, "p", role="planner", scope="430202")
    >>> found = find_key(store, secret)
    >>> found.role, found.scope, find_key(store, "gk_unknown")
    ('planner', '430202', None)
    >>> tmp.cleanup()
    """
    rows = store.records(KEYS, where={"hash": hash_key(key)})
    if rows.empty or rows["revoked"].iloc[0]:
        return None
    r = rows.iloc[0]
    worker = None if pd.isna(r["worker_id"]) else r["worker_id"]
    dept = None if pd.isna(r["department_id"]) else r["department_id"]
    return ApiKey(r["key_id"], r["name"], r["role"], r["scope"], worker, bool(r["revoked"]), dept)


def revoke_key(store: Store, key_id: str) -> None:
    """Revoke a key by its id (a running server refuses it within seconds).

    Examples
    --------
    A revoked key is found no more:

    >>> import tempfile
    >>> from gridkit.store import create_store
    >>> from gridkit.synth.ops import grid_units
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = create_store(f"{tmp.name}/ws.gpkg", {"units": grid_units(2, 1)})
    >>> [(secret, key)] = issue_keys(store, [KeyRequest("temp", "viewer")])
    >>> revoke_key(store, key.key_id)
    >>> find_key(store, secret) is None
    True
    >>> revoke_key(store, "nope")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gridkit.errors.GridkitError: no API key with id 'nope'...
    >>> tmp.cleanup()
    """
    if store.set_records(KEYS, {"revoked": 1}, where={"key_id": key_id}) == 0:
        raise GridkitError(f"no API key with id {key_id!r}.")


def list_keys(store: Store) -> pd.DataFrame:
    """The issued keys, oldest first, without their hashes.

    Examples
    --------
    No keys at first, then the one issued (never its secret):

    >>> import tempfile
    >>> from gridkit.store import create_store
    >>> from gridkit.synth.ops import grid_units
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = create_store(f"{tmp.name}/ws.gpkg", {"units": grid_units(2, 1)})
    >>> list_keys(store).empty
    True
    >>> _ = issue_key(store, "看", role="viewer")
    >>> list_keys(store)[["name", "role", "revoked"]].values.tolist()
    [['看', 'viewer', 0]]
    >>> tmp.cleanup()
    """
    table = store.records(KEYS)[LISTED]
    return table.sort_values("created_at", kind="stable").reset_index(drop=True)
