"""The persistence interface: what the API and the services above it need from storage.

A :class:`Store` holds layers (GeoDataFrames or attribute tables) and small service
tables (:class:`RecordTable`, e.g. API keys). It knows nothing of what the rows mean:
publishing a grid version (:func:`gridkit.versions.publish`) and issuing API keys
(:mod:`gridkit.store.keys`) are services written over these primitives.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gridkit.errors import GridkitError

__all__ = [
    "Column",
    "ConcurrentWriteError",
    "DatabaseUnavailableError",
    "RecordTable",
    "RowUpdate",
    "Store",
    "WriteBatch",
    "conditional_update",
]


class ConcurrentWriteError(GridkitError):
    """Another process changed a layer since this store last saw it; nothing was written.

    ``layers`` names them; the store has forgotten what it held of them, so the next
    read sees the other process's rows.

    Examples
    --------
    >>> err = ConcurrentWriteError(["reports"])
    >>> err.layers, "reports changed in another process" in str(err)
    (['reports'], True)
    """

    def __init__(self, layers: Sequence[str]) -> None:
        self.layers = list(layers)
        super().__init__(
            f"{', '.join(self.layers)} changed in another process during this write; "
            "nothing was written.",
            hint="Try again: the store reads the layer again first.",
        )


class DatabaseUnavailableError(GridkitError):
    """The database cannot be reached or refused the work for a while (a PostgreSQL
    server down, restarting or full; a workspace file whose disk is full or failing);
    nothing was written. The API answers 503 with Retry-After.

    Examples
    --------
    >>> err = DatabaseUnavailableError("connection refused")
    >>> err.message
    'the database is unavailable (connection refused); nothing was written.'
    >>> DatabaseUnavailableError("ws.gpkg: disk I/O error", hint="Check the disk.").hint
    'Check the disk.'
    """

    def __init__(
        self,
        reason: str,
        hint: str = "Try again shortly; check that the PostgreSQL server is running and has space.",
    ) -> None:
        super().__init__(f"the database is unavailable ({reason}); nothing was written.", hint=hint)


@dataclass(frozen=True)
class RowUpdate:
    """New ``values`` for the row of ``layer`` where ``id_col == id_value``.

    Examples
    --------
    >>> RowUpdate("reports", "report_id", "R1", {"status": "closed"}).columns
    ['status', 'report_id']
    >>> RowUpdate("reports", "report id", "R1", {})
    Traceback (most recent call last):
    ...
    gridkit.errors.GridkitError: invalid column name 'report id'
    """

    layer: str
    id_col: str
    id_value: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # the names go into SQL: letters, digits and underscores only
        for c in self.columns:
            if not c.replace("_", "").isalnum():
                raise GridkitError(f"invalid column name {c!r}")

    @property
    def columns(self) -> list[str]:
        """The columns the update names: those set, then the id column."""
        return [*self.values, self.id_col]


@dataclass(frozen=True)
class WriteBatch:
    """What one transaction writes: ``rows`` appended to their layers (created when
    missing), the row update ``change`` (if any), and ``if_unchanged``: write nothing
    and raise :class:`ConcurrentWriteError` when another process changed one of the
    layers since the store last saw it (rows that depend on the layer as the caller
    read it, e.g. the next ids).

    Examples
    --------
    >>> import pandas as pd
    >>> batch = WriteBatch({"reports": pd.DataFrame({"report_id": ["R2"]})},
    ...                    RowUpdate("reports", "report_id", "R1", {"status": "merged"}))
    >>> batch.layers
    ['reports']
    """

    rows: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    change: RowUpdate | None = None
    if_unchanged: bool = False

    @property
    def layers(self) -> list[str]:
        """The layers written: those with rows, then the updated one."""
        todo = [name for name, df in self.rows.items() if len(df)]
        extra = self.change.layer if self.change is not None else None
        return [*todo, *([extra] if extra is not None and extra not in todo else [])]


@dataclass(frozen=True)
class Column:
    """A column of a :class:`RecordTable`: its name, Python type (``str``, ``int``),
    whether it is required (never missing), unique, and its default.

    Examples
    --------
    >>> Column("revoked", int, required=True, default=0)
    Column(name='revoked', type=<class 'int'>, required=True, unique=False, default=0)
    """

    name: str
    type: type = str
    required: bool = False
    unique: bool = False
    default: Any = None


@dataclass(frozen=True)
class RecordTable:
    """A small service table kept beside the layers (not a layer: no geometry, not
    listed by :meth:`Store.layers`, never cached): its name, columns and key column.

    Examples
    --------
    >>> t = RecordTable("gridkit_notes", (Column("note_id", required=True), Column("text")),
    ...                 key="note_id")
    >>> t.names
    ['note_id', 'text']
    """

    name: str
    columns: tuple[Column, ...]
    key: str

    @property
    def names(self) -> list[str]:
        """The column names, in order."""
        return [c.name for c in self.columns]


class Store(ABC):
    """Persistence behind one interface: layers, their versions, writes, service tables.

    Backends implement the abstract methods; :func:`gridkit.store.open_store` picks
    one for a workspace. Every write is committed when it returns.

    Examples
    --------
    Any backend answers the same calls; here the GeoPackage one:

    >>> import tempfile
    >>> from gridkit.store import create_store
    >>> from gridkit.synth.ops import grid_units
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = create_store(f"{tmp.name}/ws.gpkg", {"units": grid_units(2, 1)})
    >>> isinstance(store, Store), store.layers()
    (True, ['units'])
    >>> tmp.cleanup()
    """

    @abstractmethod
    def layers(self) -> list[str]:
        """The names of the layers held (service tables left out)."""

    def ping(self) -> None:
        """Reach the data now, bypassing every cache: returns when the store can be read
        and written, raises :class:`DatabaseUnavailableError` when it cannot (a
        service's readiness). Backends override it with their cheapest round trip."""
        self.layers()

    @abstractmethod
    def read(self, layer: str) -> pd.DataFrame:
        """The whole of ``layer``: a GeoDataFrame, or a DataFrame for an attribute table.
        Callers must not change the frame returned (it may be the store's own copy)."""

    @abstractmethod
    def generation(self, layer: str) -> int:
        """A counter that changes whenever ``layer`` changes (for response caches)."""

    @abstractmethod
    def write(self, batch: WriteBatch) -> None:
        """One transaction, committed on return: the batch's update and rows (see
        :class:`WriteBatch`)."""

    @abstractmethod
    def exclusive(self) -> AbstractContextManager[Any]:
        """Hold the store's one writer for a read-then-write sequence (publishing reads
        the version in force and writes the next): other writes of this store wait;
        reads and writes of this store may be called inside."""

    @abstractmethod
    def save_layer(self, layer: str, frame: pd.DataFrame, *, append: bool = False) -> None:
        """Write ``frame`` as the whole of ``layer`` (replacing it), or append it as a
        batch with the layer's schema (``append``), through the backend's layer writer.
        One layer per call: hold :meth:`exclusive` around a sequence."""

    @abstractmethod
    def records(
        self, table: RecordTable, *, where: Mapping[str, Any] | None = None
    ) -> pd.DataFrame:
        """Rows of a service table whose columns equal ``where`` (all rows without it),
        read from storage at each call (another process's change is seen at once);
        empty, with the table's columns, while the table does not exist."""

    @abstractmethod
    def add_records(self, table: RecordTable, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert ``rows`` into a service table (created first if missing) in one
        transaction: all or none."""

    @abstractmethod
    def set_records(
        self, table: RecordTable, values: Mapping[str, Any], *, where: Mapping[str, Any]
    ) -> int:
        """Set ``values`` on the rows of a service table whose columns equal ``where``;
        the number of rows changed."""

    # -- conveniences over write() ------------------------------------------------------
    def append(self, layer: str, rows: pd.DataFrame) -> None:
        """Append rows to one layer (one transaction).

        Examples
        --------
        A note appended to a table of notes:

        >>> import tempfile, pandas as pd
        >>> from gridkit.store import create_store
        >>> tmp = tempfile.TemporaryDirectory()
        >>> store = create_store(f"{tmp.name}/ws.gpkg", {"notes": pd.DataFrame({"note": ["a"]})})
        >>> store.append("notes", pd.DataFrame({"note": ["b"]}))
        >>> store.read("notes")["note"].tolist()
        ['a', 'b']
        >>> tmp.cleanup()
        """
        self.write(WriteBatch({layer: rows}))

    def append_many(self, rows: Mapping[str, pd.DataFrame], *, if_unchanged: bool = False) -> None:
        """Append rows to several layers in one transaction, committed on return (see
        :meth:`write` for ``if_unchanged``).

        Examples
        --------
        A report and its first event, together or not at all:

        >>> import tempfile, pandas as pd
        >>> from gridkit.store import create_store
        >>> tmp = tempfile.TemporaryDirectory()
        >>> reports = pd.DataFrame({"report_id": ["R1"]})
        >>> store = create_store(f"{tmp.name}/ws.gpkg", {"reports": reports})
        >>> store.append_many({"reports": pd.DataFrame({"report_id": ["R2"]}),
        ...                    "report_events": pd.DataFrame({"report_id": ["R2"]})})
        >>> len(store.read("reports")), len(store.read("report_events"))
        (2, 1)
        >>> tmp.cleanup()
        """
        self.write(WriteBatch(rows, if_unchanged=if_unchanged))

    def update(
        self,
        layer: str,
        id_col: str,
        id_value: str,
        values: Mapping[str, Any],
        *,
        append: Mapping[str, pd.DataFrame] | None = None,
    ) -> None:
        """Set ``values`` on the row where ``id_col == id_value``, and append ``append``
        (e.g. the change's events) in the same transaction, committed on return.

        Examples
        --------
        A report closed:

        >>> import tempfile, pandas as pd
        >>> from gridkit.store import create_store
        >>> tmp = tempfile.TemporaryDirectory()
        >>> reports = pd.DataFrame({"report_id": ["R1"], "status": ["new"]})
        >>> store = create_store(f"{tmp.name}/ws.gpkg", {"reports": reports})
        >>> store.update("reports", "report_id", "R1", {"status": "closed"})
        >>> store.read("reports")["status"].tolist()
        ['closed']
        >>> tmp.cleanup()
        """
        change = RowUpdate(layer, id_col, id_value, dict(values))
        self.write(WriteBatch(append or {}, change if values else None))

    def update_rows(
        self,
        layer: str,
        id_col: str,
        before: pd.DataFrame,
        after: pd.DataFrame,
        events: pd.DataFrame | None = None,
        *,
        events_layer: str = "report_events",
        lock: AbstractContextManager[Any] | None = None,
    ) -> int:
        """Write the rows of ``after`` that differ from ``before`` (same ids), each with
        its ``events`` (rows with the same ``id_col``) in one transaction: a batch of
        row changes, such as an escalation run (pass only the rows it changed). How many
        rows were written. ``lock`` is held for each row's write only (a service's write
        lock: other writers wait for one row, not for the batch).

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from gridkit.store import create_store
        >>> tmp = tempfile.TemporaryDirectory()
        >>> before = pd.DataFrame({"report_id": ["R1", "R2"], "level": [0, 0]})
        >>> store = create_store(f"{tmp.name}/ws.gpkg", {"reports": before})
        >>> after = before.assign(level=[0, 1])
        >>> ev = pd.DataFrame({"report_id": ["R2"], "note": ["escalated"]})
        >>> store.update_rows("reports", "report_id", before, after, ev)
        1
        >>> store.read("reports")["level"].tolist(), len(store.read("report_events"))
        ([0, 1], 1)
        >>> tmp.cleanup()
        """
        old = before.set_index(before[id_col].astype(str).to_numpy())
        cols = [c for c in after.columns if c != getattr(after, "_geometry_column_name", None)]
        written = 0
        for rid, row in zip(
            after[id_col].astype(str), after[cols].itertuples(index=False), strict=True
        ):
            prev = old.loc[rid] if rid in old.index else None
            values = {
                c: v
                for c, v in zip(cols, row, strict=True)
                if prev is None or c not in prev.index or _differs(v, prev[c])
            }
            mine = None
            if events is not None and len(events):
                mine = events[(events[id_col].astype(str) == rid).to_numpy()]
            if values or (mine is not None and len(mine)):
                with lock if lock is not None else nullcontext():
                    self.update(
                        layer,
                        id_col,
                        rid,
                        values,
                        append={events_layer: mine} if mine is not None else None,
                    )
                written += 1
        return written


def _differs(new: object, old: object) -> bool:
    new_na, old_na = new is None or bool(pd.isna(new)), old is None or bool(pd.isna(old))
    if new_na or old_na:
        return new_na != old_na
    return bool(new != old)


def conditional_update(
    store: Store, layer: str, id_col: str, events_layer: str
) -> Callable[[str, dict, pd.DataFrame], bool]:
    """A writer of one row's new values in ``layer`` (found by ``id_col``) and its rows
    of ``events_layer``, in one transaction, written only when the layers are as
    ``store`` last read them: it answers False, nothing written, when another process
    changed them meanwhile (the caller reads again and decides again).

    Examples
    --------
    >>> import tempfile
    >>> from gridkit.store import create_store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> reports = pd.DataFrame({"report_id": ["R1"], "escalation_level": [0]})
    >>> store = create_store(f"{tmp.name}/ws.gpkg", {"reports": reports})
    >>> write = conditional_update(store, "reports", "report_id", "report_events")
    >>> write("R1", {"escalation_level": 1}, pd.DataFrame({"report_id": ["R1"]}))
    True
    >>> int(store.read("reports")["escalation_level"].iloc[0])
    1
    >>> tmp.cleanup()
    """

    def write(row_id: str, values: dict, events: pd.DataFrame) -> bool:
        change = RowUpdate(layer, id_col, row_id, values)
        try:
            store.write(WriteBatch({events_layer: events}, change, if_unchanged=True))
        except ConcurrentWriteError:
            return False
        return True

    return write
