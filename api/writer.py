"""The report writer: reports arriving together are taken in and committed together.

``POST /reports`` hands a :class:`Submission` to :meth:`ReportWriter.submit`; the
writer thread (:mod:`api._group`) runs every submission queued meanwhile as one
batch: replays of idempotency keys, placing (gridkit.ops.intake), intake and
duplicate links (gridkit.ops.reports), the caller's right to file each report, hand
over, and one transaction for the reports and their events. Each submission still
gets its own answer (an :class:`Outcome`, or the error of that report alone).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import orjson
import pandas as pd
import shapely
from starlette.types import ASGIApp, Receive, Scope, Send

from api._group import GroupCommit
from api._held import HeldReports
from api.auth import Principal
from api.errors import ApiError, status_of
from api.geojson import Piece, column_pieces, pieces
from api.service import Service
from gridkit.errors import GridkitError
from gridkit.ops.cases import auto_dispatch
from gridkit.ops.intake import ReportIds, place_points, report_frame
from gridkit.ops.reports import (
    LEGACY_STATUS,
    IntakeClock,
    RowsTaken,
    intake,
    intake_clock,
    intake_rows,
    normalise_reports,
    report_rules,
)
from gridkit.store import ConcurrentWriteError

if TYPE_CHECKING:
    from gridkit.store.postgis import IntakeRows, ReportIntake

log = logging.getLogger("gridkit.api")


@dataclass(frozen=True)
class Submission:
    """One report as received: checked for form, not yet placed or stored."""

    props: dict[str, Any]
    coords: tuple[float, float] | None
    crs: str | None
    caller: Principal
    key: str | None  # the caller's Idempotency-Key, scoped to them (see scoped_key)
    fingerprint: str | None = None  # of the request, to tell a retry from a key reused


class Outcome(NamedTuple):
    """A submission's answer: the batch's stored rows (or the replayed ones: a frame,
    or the :class:`RowsBatch` of a batch taken in as values), its position in them,
    whether it is a replay, and its row serialised."""

    rows: pd.DataFrame | RowsBatch
    pos: int
    replay: bool
    piece: Piece  # row ``pos`` serialised (in the writer, once for the whole batch)


Result = Outcome | BaseException
_NO_ROWS = pd.DataFrame(index=pd.Index([], dtype=object))


def scoped_key(caller: Principal, key: str | None) -> str | None:
    """An ``Idempotency-Key`` as stored: the caller's own, so that two phones choosing
    the same key never see each other's reports."""
    return None if not key else f"{caller.owner}/{key}"


def fingerprint(props: dict[str, Any], point: tuple[float, float] | None, crs: str | None) -> str:
    """What was asked, in short: a retry repeats it, a reused key does not."""
    canonical = orjson.dumps(
        {"props": props, "point": point, "crs": crs},
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    return hashlib.sha256(canonical).hexdigest()[:32]


def _reused(key: str, fingerprint: str | None, seen: str | None) -> ApiError | None:
    """The 422 for a key sent again with a different report (None for a true retry)."""
    if seen is None or fingerprint is None or seen == fingerprint:
        return None
    return ApiError(
        422,
        f"Idempotency-Key {key.split('/', 1)[1]!r} was used before for a different "
        "report; use a new key for a new report.",
    )


def actor(caller: Principal) -> str:
    """Who an event names: the worker, else the key's holder."""
    return caller.worker_id or caller.name


class ReportWriter:
    """Takes in batches of reports for one :class:`~api.service.Service`.

    Over a GeoPackage (one writer process) it holds the reports layer as the batches
    read it (:class:`api._held.HeldReports`) and the next report ids, kept in step
    batch by batch and read again only when someone else wrote the layer. Over
    PostGIS it holds nothing: each batch asks the database, in the transaction that
    writes it (:meth:`gridkit.store.PostGISStore.report_intake`), so server
    processes never redo each other's batches.
    """

    def __init__(self, service: Service) -> None:
        self.service = service
        self.group: GroupCommit[Submission, Outcome] = GroupCommit(self.process)
        self.held: HeldReports | None = None
        self.ids: ReportIds | None = None

    def submit(self, sub: Submission) -> Future[Outcome]:
        """Queue ``sub``; the future is answered once its batch is on disk."""
        return self.group.submit(sub)

    def submit_async(self, sub: Submission) -> asyncio.Future[Outcome]:
        """:meth:`submit` from the event loop (:meth:`api._group.GroupCommit.submit_async`)."""
        return self.group.submit_async(sub)

    def process(self, subs: Sequence[Submission]) -> list[Result]:
        """Take in a batch. Done again from the layer as it is when another process
        wrote reports meanwhile (ids, duplicates, replays all depend on it); after
        three tries the batch fails with a 503.

        Over PostGIS a batch is two round trips: the intakes' lock with its questions
        (:class:`Questions`), then its rows with the commit. The intakes of all
        processes take the lock in turn; a batch waiting for it holds nothing else
        (the lock is the transaction's first statement). Its questions are asked
        once the lock is held, so what it decides (ids, duplicates) stands."""
        intake_txn = getattr(self.service.store, "report_intake", None)
        placed = place_points(  # depends on no report: before any lock
            [s.coords for s in subs], [s.crs for s in subs], area=self.service.service_area()
        )
        # the times and deadlines of a batch taken in as values depend on no report
        # either: worked out before the intakes' lock is waited for
        clock = None
        if intake_txn is not None:
            at = _now_ms()
            try:
                clock = (at, intake_clock([s.props for s in subs], at=at))
            except GridkitError:  # a report's own: said to it alone by the intake
                clock = None
        with self.service.write_lock:
            for attempt in range(3):
                try:
                    if intake_txn is None:
                        return self._once(subs, placed, _HeldLedger(self))
                    asked = Questions.of(subs, placed)
                    with intake_txn() as txn:  # committed before the answers go
                        answers = asked.ask(txn)
                        ledger = _SqlLedger(self, txn, answers, clock)
                        results = self._once(subs, placed, ledger)
                    return _serialised(results)  # after the commit: not in the lock
                except ConcurrentWriteError:
                    if attempt == 2:
                        raise  # fails the batch (503)
        raise AssertionError("unreachable")

    def _once(self, subs: Sequence[Submission], placed: list, ledger: _Ledger) -> list[Result]:
        """One pass of :meth:`process` (under its lock), the submissions' points
        ``placed`` (:func:`gridkit.ops.intake.place_points`)."""
        out: list[Result | None] = [None] * len(subs)
        first, fresh = self._replays(ledger, subs, out)
        todo = []
        for i in fresh:
            point = placed[i]
            if isinstance(point, GridkitError):
                out[i] = ApiError(status_of(point), point.message)
            else:
                todo.append((i, point))
        if todo:
            for i, result in self._take_in(ledger, subs, todo).items():
                out[i] = result
        ledger.done()
        for i, s in enumerate(subs):
            if out[i] is None:  # a key repeated in the batch: the outcome of its first use
                j = first[s.key]  # type: ignore[index]
                done = out[j]
                out[i] = _reused(s.key, s.fingerprint, subs[j].fingerprint) or (  # type: ignore[arg-type]
                    done if isinstance(done, BaseException) else done._replace(replay=True)  # type: ignore[union-attr]
                )
        return out  # type: ignore[return-value]

    def _replays(
        self, ledger: _Ledger, subs: Sequence[Submission], out: list
    ) -> tuple[dict[str, int], list[int]]:
        """Answer the keys already stored (their row again, or a 422 for a key reused);
        return the first use of each key in the batch and the submissions to take in."""
        keys = [s.key for s in subs if s.key]
        stored = ledger.replays(keys) if keys else _NO_ROWS
        # by key, in plain Python (most batches find none: no pandas call per report)
        at = {str(k): pos for pos, k in enumerate(stored.index)} if len(stored) else {}
        stored_pieces = pieces(stored, id_col="report_id") if at else []
        hashes = stored.get("idempotency_hash") if at else None
        first: dict[str, int] = {}
        fresh: list[int] = []
        for i, s in enumerate(subs):
            pos = at.get(s.key) if s.key else None
            if pos is not None:
                seen = None if hashes is None else hashes.iloc[pos]
                seen = None if seen is None or pd.isna(seen) else str(seen)
                out[i] = _reused(s.key, s.fingerprint, seen) or Outcome(
                    stored, pos, True, stored_pieces[pos]
                )
            elif s.key and s.key in first:
                continue  # answered once its first use is
            else:
                if s.key:
                    first[s.key] = i
                fresh.append(i)
        return first, fresh

    def _held_reports(self) -> HeldReports | None:
        """The reports layer as the writer holds it, read and typed again only when
        someone else wrote the layer."""
        store = self.service.store
        gen = store.generation("reports")
        if self.held is None or self.held.generation != gen:  # first use, or written by another
            df = self.service.layer("reports")
            self.held = None if df is None else HeldReports(gen, normalise_reports(df))
            self.ids = None  # ids continue from the layer as it is now
        return self.held

    def _next_ids(self, n: int) -> list[str]:
        """Sequential ids (R0000001...) continuing from the workspace, kept in memory."""
        if self.ids is None:
            self.ids = ReportIds([] if self.held is None else self.held.report_ids())
        return self.ids.take(n)

    def _take_in(
        self, ledger: _Ledger, subs: Sequence[Submission], todo: list
    ) -> dict[int, Result]:
        """Intake, authorise and hand over ``todo`` (submission index, point) together;
        rejected reports are left out and the rest taken in again, so nothing rejected
        is stored or linked as an original."""
        taken = self._take_in_rows(ledger, subs, todo)
        if taken is not None:
            return taken
        results: dict[int, Result] = {}
        radius = report_rules().duplicate_radius_m
        while todo:
            ids = ledger.ids(len(todo))
            new = report_frame(
                [subs[i].props for i, _ in todo], [g for _, g in todo], report_ids=ids
            )
            try:
                near = ledger.near(new, radius)
                change = intake(
                    new,
                    units=ledger.units(new),
                    existing=near,
                    keep_existing=False,
                    at=_now_ms(),
                )
            except GridkitError as exc:
                ledger.give_back(ids)
                if len(todo) == 1:
                    results[todo[0][0]] = ApiError(400, exc.message)
                    return results
                for item in todo:  # find whose report it is: one at a time
                    results.update(self._take_in(ledger, subs, [item]))
                return results
            new_rows = change.reports  # the new rows alone (keep_existing=False)
            at = pd.Index(new_rows["report_id"]).get_indexer(ids)  # in time order: by id
            created = new_rows if (at == np.arange(len(at))).all() else new_rows.iloc[at]
            where = created["admin_code"].to_numpy(dtype=object, na_value=None)
            rejected = self._refusals(where, [subs[i].caller for i, _ in todo])
            if rejected:
                ledger.give_back(ids)  # the others take them again: no gap in the ids
                results.update({todo[k][0]: err for k, err in rejected.items()})
                todo = [item for k, item in enumerate(todo) if k not in rejected]
                continue
            rows = self._commit(ledger, created.reset_index(drop=True), change.events, subs, todo)
            done = pieces(rows, id_col="report_id")
            for pos, (i, _) in enumerate(todo):
                results[i] = Outcome(rows, pos, False, done[pos])
            return results
        return results

    def _take_in_rows(
        self, ledger: _Ledger, subs: Sequence[Submission], todo: list
    ) -> dict[int, Result] | None:
        """:meth:`_take_in` over PostGIS with the batch's values as read and written,
        no frame made (:func:`gridkit.ops.reports.intake_rows`): the same rows, events
        and answers. None (nothing taken) where it does not apply: a point in no
        unit found at it, a hand-over to make (auto-opened categories, with
        departments), tables lacking a column, anything :func:`intake_rows` leaves to
        :func:`intake`."""
        if not isinstance(ledger, _SqlLedger):
            return None
        answers, txn = ledger.answers, ledger.txn
        units = answers.units  # a point in none of them: intake_rows leaves it to intake
        if units is None or "admin_code" not in units.columns:
            return None
        rules = report_rules()
        if self.service.layer("departments") is not None and any(
            rules.auto_open(subs[i].props.get("category")) for i, _ in todo
        ):
            return None  # handed over on frames (gridkit.ops.cases.auto_dispatch)
        near = answers.near
        candidates = (
            ((), (), ())
            if near is None
            else (near.geometry(), near.column("category"), near.column("report_id"))
        )
        keyed = any(subs[i].key for i, _ in todo)
        unit_rows = (units.column("unit_id"), units.column("admin_code"), units.geometry())
        results: dict[int, Result] = {}
        while todo:
            ids = ledger.ids(len(todo))
            at, clock = ledger.clock if ledger.clock is not None else (_now_ms(), None)
            at_pos = np.array([i for i, _ in todo], dtype=np.int64)
            got = intake_rows(
                [subs[i].props for i, _ in todo],
                [g for _, g in todo],
                ids,
                units=unit_rows,
                candidates=candidates,
                actors=[actor(subs[i].caller) for i, _ in todo],
                at=at,
                clock=None if clock is None else IntakeClock(*(a[at_pos] for a in clock)),
            )
            if got is None or not (
                txn.fits("reports", [*got.reports, *_KEY_COLUMNS[: keyed * 2]], True)
                and txn.fits("report_events", got.events)
            ):
                ledger.give_back(ids)
                return None if not results else self._take_in(ledger, subs, todo) | results
            where = got.reports["admin_code"]
            rejected = self._refusals(where, [subs[i].caller for i, _ in todo])
            if rejected:
                ledger.give_back(ids)
                results.update({todo[k][0]: err for k, err in rejected.items()})
                todo = [item for k, item in enumerate(todo) if k not in rejected]
                continue
            if keyed:
                got.reports["idempotency_key"] = [subs[i].key for i, _ in todo]
                got.reports["idempotency_hash"] = [subs[i].fingerprint for i, _ in todo]
            batch = RowsBatch(got)
            ledger.store_rows(batch)
            for pos, (i, _) in enumerate(todo):  # serialised once committed
                results[i] = Outcome(batch, pos, False, _LATER)
            return results
        return results

    def _refusals(self, where: Sequence[object], callers: list[Principal]) -> dict[int, ApiError]:
        """Why each caller may not file the report made of their submission (by
        position; ``where``: each report's admin code), for the reports refused."""
        out = {}
        for k, caller in enumerate(callers):
            # anyone may report anywhere in their scope (a worker sees a problem one unit
            # over): the case is then routed by its place like any other
            if not caller.in_scope(where[k]):
                out[k] = ApiError(
                    403, f"The report lies in {where[k]}, outside your scope {caller.scope}."
                )
        return out

    def _commit(
        self,
        ledger: _Ledger,
        rows: pd.DataFrame,
        events: pd.DataFrame,
        subs: Sequence[Submission],
        todo: list,
    ) -> pd.DataFrame:
        """Hand the new reports over, then write them and their events in one
        transaction; the rows as stored."""
        svc = self.service
        actors = {
            rid: actor(subs[i].caller) for (i, _), rid in zip(todo, rows["report_id"], strict=True)
        }
        departments = svc.layer("departments")
        handed_over = False
        originals = rows.loc[rows["duplicate_of"].isna(), "report_id"].tolist()
        if departments is not None and originals:
            # the categories the rules open at once are opened and dispatched now; the
            # others wait in 'collected' for the centre to open them (立案)
            handed = auto_dispatch(
                rows,
                departments=departments,
                assignments=self._assignments_of(rows["unit_id"]),
                report_ids=originals,
                warn_unrouted=False,  # logged below, once per batch
            )
            rows = handed.reports
            events = pd.concat([events, handed.events], ignore_index=True)
            handed_over = True
        # the reporter collected it; what the rules did at once, the system did (intake's
        # own events are all collections)
        collected = (
            (events["action"] == "collect").to_numpy(dtype=bool, na_value=False)
            if handed_over
            else np.ones(len(events), dtype=bool)
        )
        events["actor_id"] = pd.array(
            [
                actors[r] if c else "system"
                for r, c in zip(events["report_id"], collected, strict=True)
            ],
            dtype="string",
        )
        keys = [subs[i].key for i, _ in todo]
        if any(keys):
            rows["idempotency_key"] = pd.array(keys, dtype="string")
            rows["idempotency_hash"] = pd.array(
                [subs[i].fingerprint for i, _ in todo], dtype="string"
            )
        ledger.store(rows, events)
        if handed_over:
            _log_unrouted(rows)
        return rows

    def _assignments_of(self, unit_ids: pd.Series) -> pd.DataFrame | None:
        """The assignments of these units only: hand-over looks up nothing else, and the
        whole layer (a row per unit and worker) is not filtered by time for every batch."""
        a = self.service.layer("assignments")
        if a is None:
            return None
        return a[a["unit_id"].isin(unit_ids.dropna().unique()).to_numpy()]


class _BatchIds(ABC):
    """A batch's report ids: those of reports not stored after all (refused, or a
    batch split to find a bad report) are given back and given again first, so the
    ids stored have no gap, whichever backend."""

    def __init__(self) -> None:
        self.back: list[str] = []

    @abstractmethod
    def _fresh(self, n: int) -> list[str]:
        """``n`` new ids from the backend."""

    def ids(self, n: int) -> list[str]:
        again, self.back = self.back[:n], self.back[n:]
        return again + (self._fresh(n - len(again)) if n > len(again) else [])

    def give_back(self, ids: Sequence[str]) -> None:
        self.back = sorted([*self.back, *ids], key=lambda r: (len(r), r))


class _HeldLedger(_BatchIds):
    """What a batch reads and writes over a GeoPackage (one process writes it): the
    reports layer as the writer holds it, the units layer of the service."""

    def __init__(self, writer: ReportWriter) -> None:
        super().__init__()
        self.writer = writer
        self.existing = writer._held_reports()

    def replays(self, keys: list[str]) -> pd.DataFrame:
        return self.existing.replays(keys) if self.existing is not None else _NO_ROWS

    def _fresh(self, n: int) -> list[str]:
        return self.writer._next_ids(n)

    def near(self, new: pd.DataFrame, radius_m: float) -> pd.DataFrame | None:
        return None if self.existing is None else self.existing.near(new, radius_m)

    def units(self, new: pd.DataFrame) -> pd.DataFrame | None:
        return self.writer.service.layer("units")

    def store(self, rows: pd.DataFrame, events: pd.DataFrame) -> None:
        w = self.writer
        store = w.service.store
        # the ids and links above hold for the layer as we hold it: if someone else
        # wrote it meanwhile, nothing is written (and process() starts again)
        store.append_many({"reports": rows, "report_events": events}, if_unchanged=True)
        if w.held is None:
            w.held = HeldReports(store.generation("reports"), rows)
        else:
            w.held.append(store.generation("reports"), rows)

    def done(self) -> None:
        if self.back:  # ids taken but not stored: the next batch continues from the layer
            self.writer.ids = None


class Questions(NamedTuple):
    """What a batch asks of the stored reports over PostGIS, asked in one round trip
    (:meth:`gridkit.store.postgis.ReportIntake.ask`): the units at its points and
    hand-chosen units, the reports stored under its keys, the highest report id, and
    the open reports near its points that a new one may duplicate. Asked for the
    whole batch (a superset of what each report's intake reads: the exact searches
    then measure), once the intakes' lock is held."""

    points: list
    categories: list
    keys: list
    unit_ids: list

    @classmethod
    def of(cls, subs: Sequence[Submission], placed: list) -> Questions:
        """The questions of ``subs`` (their points ``placed``)."""
        located = [(p, s) for p, s in zip(placed, subs, strict=True)
                   if isinstance(p, shapely.Point)]  # fmt: skip
        return cls(
            [p for p, _ in located],
            [s.props.get("category") for _, s in located],
            [s.key for s in subs if s.key],
            [s.props.get("unit_id") for s in subs],
        )

    def ask(self, txn: ReportIntake) -> IntakeRows:
        open_ = report_rules().open_statuses
        # statuses as stored: the first wave's names too, read as the stage they meant
        stored = [*open_, *(old for old, now in LEGACY_STATUS.items() if now in open_)]
        return txn.ask_rows(self.points, self.categories, self.keys, self.unit_ids,
                       radius_m=report_rules().duplicate_radius_m, statuses=stored,
                       columns=_LINKED_BY)  # fmt: skip


class _SqlLedger(_BatchIds):
    """What a batch reads and writes over PostGIS: the answers to its
    :class:`Questions` and the write, in one transaction of
    :meth:`gridkit.store.PostGISStore.report_intake` (intakes of all processes one at
    a time). The same answers as :class:`_HeldLedger` gives."""

    def __init__(
        self,
        writer: ReportWriter,
        txn: ReportIntake,
        answers: IntakeRows,
        clock: tuple[pd.Timestamp, IntakeClock] | None = None,
    ) -> None:
        super().__init__()
        self.writer = writer
        self.txn = txn
        self.answers = answers
        self.clock = clock  # the batch's intake time and IntakeClock, worked out before
        self._ids: ReportIds | None = None
        self._near: pd.DataFrame | None = None

    def replays(self, keys: list[str]) -> pd.DataFrame:
        if self.answers.replays is None or not len(self.answers.replays):
            return _NO_ROWS  # no key stored: no frame made
        return normalise_reports(self.answers.replay_frame())

    def _fresh(self, n: int) -> list[str]:
        if self._ids is None:  # continuing after the highest id stored, as ReportIds does
            last = self.answers.last
            self._ids = ReportIds([last] if last else [])
        return self._ids.take(n)

    def near(self, new: pd.DataFrame, radius_m: float) -> pd.DataFrame | None:
        rows = self.answers.near
        if rows is None or not len(rows):
            return None
        if self._near is None:  # asked again for part of the batch when one is refused
            self._near = normalise_reports(rows.frame())
        return self._near

    def units(self, new: pd.DataFrame) -> pd.DataFrame | None:
        units, every = self.answers.units, self.answers.every
        if units is None or not every or not len(units):  # the nearest unit: the layer's
            return self.writer.service.layer("units")
        return units.frame()

    def store(self, rows: pd.DataFrame, events: pd.DataFrame) -> None:
        self.txn.append({"reports": rows, "report_events": events})

    def store_rows(self, batch: RowsBatch) -> None:
        self.txn.append_rows(batch.tables())

    def done(self) -> None:
        pass


_Ledger = _HeldLedger | _SqlLedger

#: the bookkeeping columns a keyed batch adds to its reports
_KEY_COLUMNS = ("idempotency_key", "idempotency_hash")


#: the piece of an :class:`Outcome` serialised after its batch's commit (:func:`_serialised`)
_LATER = Piece("", b"null", {})


def _serialised(results: list[Result]) -> list[Result]:
    """The results with the rows of batches taken in as values serialised (once per
    batch, after the commit: the intakes' lock is not held for it)."""
    done: dict[int, list[Piece]] = {}
    out: list[Result] = []
    for r in results:
        if isinstance(r, Outcome) and r.piece is _LATER:
            if id(r.rows) not in done:
                done[id(r.rows)] = r.rows.pieces()  # type: ignore[union-attr]
            r = r._replace(piece=done[id(r.rows)][r.pos])
        out.append(r)
    return out


class RowsBatch:
    """A batch's new reports and events taken in as values
    (:func:`gridkit.ops.reports.intake_rows`): written as they are
    (:meth:`gridkit.store.postgis.ReportIntake.append_rows`), served as pieces."""

    def __init__(self, taken: RowsTaken) -> None:
        self.taken = taken

    def tables(self) -> dict[str, tuple[dict[str, list], object]]:
        """What :meth:`~gridkit.store.postgis.ReportIntake.append_rows` writes."""
        t = self.taken
        return {"reports": (t.reports, t.geometry), "report_events": (t.events, None)}

    def pieces(self) -> list[Piece]:
        """The rows serialised, as :func:`api.geojson.pieces` serialises a frame."""
        return column_pieces(self.taken.reports, self.taken.geometry, id_col="report_id")


#: what intake reads of the reports a new one may duplicate (their other columns
#: are not handed on: intake's answer keeps the new rows only)
_LINKED_BY = ["report_id", "category", "status", "duplicate_of", "reported_at"]


def _log_unrouted(rows: pd.DataFrame) -> None:
    """Log the new reports the rules open at once but no department handles (they wait,
    opened, for a dispatcher): a gap in the departments layer the operator should hear
    of."""
    stuck = (rows["status"] == "opened").to_numpy(dtype=bool, na_value=False) & rows[
        "duplicate_of"
    ].isna().to_numpy()
    if stuck.any():
        log.warning(
            "no department handles reports %s (category and place); they wait for a dispatcher",
            ", ".join(rows["report_id"].to_numpy(dtype=object)[stuck]),
        )


class ReportArrivals:
    """ASGI middleware: a ``POST /reports`` announces itself to the report writer as
    soon as it arrives, before its body is read, so that a batch being gathered waits
    for it (see :mod:`api._group`)."""

    def __init__(self, app: ASGIApp, writer: ReportWriter) -> None:
        self.app = app
        self.group = writer.group

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/reports":
            with self.group.expecting():
                await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _now_ms() -> pd.Timestamp:
    """Now, to the millisecond: what a GeoPackage keeps of a time, and what both
    backends read back, so the 201's times are the ones a later GET shows."""
    return pd.Timestamp(time.time_ns() // 1_000_000 * 1_000_000, tz="UTC").as_unit("us")
