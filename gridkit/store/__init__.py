"""Persistence: the store interface, its GeoPackage backend (the embedded default), and
the API-key service over a store.

- :mod:`gridkit.store.base`: :class:`Store`, the interface (layers, reads, writes,
  service tables);
- :mod:`gridkit.store.gpkg`: :class:`GeoPackageStore`, the workspace file;
- :mod:`gridkit.store.postgis`: :class:`PostGISStore`, a database server (the
  ``postgis`` extra), its schema revisions (:func:`upgrade`);
- :mod:`gridkit.store.pgviews`: :class:`ViewQueries`, the map pages' viewport,
  areas and search in SQL over a PostGIS store;
- :func:`open_store`: a store by path or URL;
- :mod:`gridkit.store.keys`: API keys and roles (issue, find, revoke, list).

Publishing a grid version over a store is :func:`gridkit.versions.publish`.
"""

import os
from pathlib import Path

from gridkit.errors import GridkitError
from gridkit.store import gpkg
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
    create_store,
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
from gridkit.store.pgviews import UnitValues, ViewQueries
from gridkit.store.postgis import (
    DatabaseRefusedError,
    DatabaseUnavailableError,
    PostGISStore,
    database_url,
    shown,
    upgrade,
)

__all__ = [
    "KEYS",
    "ROLES",
    "ApiKey",
    "Column",
    "ConcurrentWriteError",
    "DatabaseRefusedError",
    "DatabaseUnavailableError",
    "GeoPackageStore",
    "KeyRequest",
    "PostGISStore",
    "RecordTable",
    "RowUpdate",
    "Store",
    "UnitValues",
    "ViewQueries",
    "WriteBatch",
    "backup_workspace",
    "check_key_requests",
    "check_workspace",
    "create_store",
    "database_url",
    "find_key",
    "hash_key",
    "issue_key",
    "issue_keys",
    "list_keys",
    "open_store",
    "revoke_key",
    "shown",
    "upgrade",
]

#: the environment variable naming the database a store opens without a workspace
DATABASE_URL_ENV = "GRIDKIT_DATABASE_URL"


def open_store(workspace: str | Path | None = None) -> Store:
    """Open the store of a workspace: a GeoPackage path, or a PostgreSQL URL
    (``postgresql://user@host/db``); without one, the URL in ``GRIDKIT_DATABASE_URL``.

    Examples
    --------
    >>> import tempfile
    >>> from gridkit.io import write_layers
    >>> from gridkit.synth.ops import grid_units
    >>> tmp = tempfile.TemporaryDirectory()
    >>> ws = f"{tmp.name}/ws.gpkg"
    >>> _ = write_layers({"units": grid_units(2, 1)}, ws)
    >>> type(open_store(ws)).__name__
    'GeoPackageStore'
    >>> open_store("postgresql://grid@db.example/zz")  # doctest: +SKIP
    PostGISStore('postgresql://grid@db.example/zz')
    >>> tmp.cleanup()
    """
    if workspace is None or str(workspace) == "":
        workspace = os.environ.get(DATABASE_URL_ENV) or None
        if workspace is None:
            raise GridkitError(
                "no workspace given and GRIDKIT_DATABASE_URL is not set.",
                hint="Pass a workspace .gpkg or a postgresql:// URL.",
            )
    url = database_url(workspace)
    if url is not None:
        return PostGISStore(url)
    return gpkg.open_store(workspace)


def check_workspace(path: str | Path) -> Path | str:
    """``path`` if it is an existing GeoPackage (see :func:`gridkit.store.gpkg.check_workspace`),
    or a PostgreSQL URL as given (checked when its store is opened).

    Examples
    --------
    >>> check_workspace("postgresql://grid@db.example/zz")
    'postgresql://grid@db.example/zz'
    """
    url = database_url(path)
    return url if url is not None else gpkg.check_workspace(path)
