"""Persistence: the store interface, its GeoPackage backend (the embedded default), and
the API-key service over a store.

- :mod:`gridkit.store.base`: :class:`Store`, the interface (layers, reads, writes,
  service tables);
- :mod:`gridkit.store.gpkg`: :class:`GeoPackageStore` and :func:`open_store`;
- :mod:`gridkit.store.keys`: API keys and roles (issue, find, revoke, list).

Publishing a grid version over a store is :func:`gridkit.versions.publish`.
"""

from gridkit.store.base import (
    Column,
    ConcurrentWriteError,
    RecordTable,
    RowUpdate,
    Store,
    WriteBatch,
)
from gridkit.store.gpkg import (
    GeoPackageStore,
    backup_workspace,
    check_workspace,
    create_store,
    open_store,
)
from gridkit.store.keys import (
    KEYS,
    ROLES,
    ApiKey,
    KeyRequest,
    check_key_requests,
    find_key,
    hash_key,
    issue_key,
    issue_keys,
    list_keys,
    revoke_key,
)

__all__ = [
    "KEYS",
    "ROLES",
    "ApiKey",
    "Column",
    "ConcurrentWriteError",
    "GeoPackageStore",
    "KeyRequest",
    "RecordTable",
    "RowUpdate",
    "Store",
    "WriteBatch",
    "backup_workspace",
    "check_key_requests",
    "check_workspace",
    "create_store",
    "find_key",
    "hash_key",
    "issue_key",
    "issue_keys",
    "list_keys",
    "open_store",
    "revoke_key",
]
