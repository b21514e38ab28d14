"""Who read private fields, when, and which records (personal data: issue 19, item 15).

Every request through which a supervisor or an admin receives private fields (a
worker's phone, a reporter's contact, patrol tracks, evidence photos) leaves one line
in the ``gridkit.audit`` log and one row in the workspace's ``gridkit_audit`` table.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

import pandas as pd

from api.auth import Principal
from api.service import Service
from gridkit.layers import LAYERS
from gridkit.store import Column, RecordTable

log = logging.getLogger("gridkit.audit")

AUDIT = RecordTable(
    "gridkit_audit",
    (
        Column("audit_id", required=True, unique=True),
        Column("at", required=True),
        Column("who"),
        Column("key_id"),
        Column("role"),
        Column("layer"),
        Column("records"),
        Column("request"),
    ),
    key="audit_id",
)
#: records named in a log line; the audit row holds them all
LOGGED_IDS = 20


def has_private(layer: str) -> bool:
    """Whether ``layer`` holds fields only some roles may see."""
    spec = LAYERS.get(layer)
    return bool(spec and (spec.private or spec.private_geometry))


def private_read(
    service: Service, caller: Principal, layer: str, ids: Sequence[str], request: str
) -> None:
    """Record that ``caller`` received the private fields of ``ids`` of ``layer``
    (nothing for callers who see none, or reads of no record)."""
    if not caller.sees_private or not len(ids):
        return
    at = pd.Timestamp.now(tz="UTC").isoformat()
    shown = ",".join(map(str, ids[:LOGGED_IDS])) + (" ..." if len(ids) > LOGGED_IDS else "")
    log.info(
        "private read: %s (%s, key %s) got %d %s record(s) [%s] via %s",
        caller.name,
        caller.role,
        caller.key_id,
        len(ids),
        layer,
        shown,
        request,
    )
    row = {
        "audit_id": uuid.uuid4().hex,
        "at": at,
        "who": caller.worker_id or caller.name,
        "key_id": caller.key_id,
        "role": caller.role,
        "layer": layer,
        "records": ",".join(map(str, ids)),
        "request": request[:500],
    }
    try:
        service.store.add_records(AUDIT, [row])
    except Exception:  # the read was served: losing its audit row must be loud, not fatal
        log.exception("could not write the audit row of %s", row["audit_id"])


def audit_rows(service: Service) -> pd.DataFrame:
    """The audit table, oldest first."""
    return service.store.records(AUDIT).sort_values("at", kind="stable")
