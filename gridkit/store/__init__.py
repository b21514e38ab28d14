"""Persistence: the store interface and its GeoPackage backend (the embedded default)."""

from gridkit.store.gpkg import (
    ROLES,
    ApiKey,
    ConcurrentWriteError,
    GeoPackageStore,
    KeyRequest,
    Store,
    check_key_requests,
    hash_key,
    open_store,
)

__all__ = [
    "ROLES",
    "ApiKey",
    "ConcurrentWriteError",
    "GeoPackageStore",
    "KeyRequest",
    "Store",
    "check_key_requests",
    "hash_key",
    "open_store",
]
