"""A local tile package (MBTiles) read for an intranet's own basemap.

MBTiles is one SQLite file of tiles (e.g. a provincial 天地图 extract); gridkit reads it
with the standard library and the API serves it at ``/maps/tiles/{z}/{x}/{y}``, so a
map page can have a basemap with no tile server and no internet. Rows are stored in
TMS order (y counted from the south); :meth:`MBTiles.tile` takes the XYZ row that
Leaflet asks for.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from gridkit.errors import GridkitError

__all__ = ["MBTiles"]

_MEDIA = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp",
          "pbf": "application/x-protobuf"}  # fmt: skip


class MBTiles:
    """Read tiles from an MBTiles file (read-only, safe across threads).

    Examples
    --------
    >>> import sqlite3, tempfile
    >>> path = Path(tempfile.mkdtemp()) / "t.mbtiles"
    >>> db = sqlite3.connect(path)
    >>> _ = db.execute("create table metadata (name text, value text)")
    >>> _ = db.execute("insert into metadata values ('format', 'png')")
    >>> _ = db.execute("create table tiles (zoom_level int, tile_column int, tile_row int, "
    ...                "tile_data blob)")
    >>> _ = db.execute("insert into tiles values (1, 0, 1, x'89504e47')")
    >>> db.commit(); db.close()
    >>> t = MBTiles(path)
    >>> t.tile(1, 0, 0), t.tile(1, 0, 1), t.media_type
    (b'\\x89PNG', None, 'image/png')
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise GridkitError(
                f"tile package {str(self.path)!r} not found.", hint="Give the .mbtiles file path."
            )
        self._local = threading.local()
        try:
            meta = dict(self._db().execute("select name, value from metadata").fetchall())
        except sqlite3.DatabaseError as exc:
            raise GridkitError(
                f"{self.path.name} is not an MBTiles file ({exc}).",
                hint="MBTiles is SQLite with metadata and tiles tables (mbutil, gdal, tippecanoe).",
            ) from None
        self.format = str(meta.get("format", "png")).lower()
        self.media_type = _MEDIA.get(self.format, "application/octet-stream")
        self.metadata = meta

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                 check_same_thread=False)  # fmt: skip
            self._local.db = db
        return db

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The tile at XYZ ``z/x/y`` (``None`` when the package has none there)."""
        if not (0 <= z <= 24 and 0 <= x < 2**z and 0 <= y < 2**z):
            return None
        row = (
            self._db()
            .execute(
                "select tile_data from tiles where zoom_level=? and tile_column=? and tile_row=?",
                (z, x, (2**z - 1) - y),
            )
            .fetchone()
        )
        return None if row is None else bytes(row[0])
