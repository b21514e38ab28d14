"""Group commit: one writer thread runs the jobs queued meanwhile as one batch.

A request hands its job to :meth:`GroupCommit.submit` and awaits the returned
future. The writer thread takes the first job and every job queued behind it, runs
them together (the caller's ``process`` does the work for the whole batch and
commits once), and only then answers each future: an answered request is on disk,
and concurrent requests share one pass of the work and one commit.

Requests announce themselves as they arrive (:meth:`GroupCommit.expecting`, entered
before the body is read and parsed): while announced requests have not submitted
their job yet, the writer waits for them (up to a short window) instead of starting
a batch without them. Without the announcement, the last request of a burst tends to
miss the batch and pay a whole pass of the work on its own.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Generic, TypeVar

J = TypeVar("J")
R = TypeVar("R")


class _Ticket:
    """One announced request; closed when it submits its job or ends without one."""

    __slots__ = ("group", "open")

    def __init__(self, group: GroupCommit) -> None:
        self.group = group
        self.open = True

    def close(self) -> None:
        if self.open:
            self.open = False
            self.group._arrived(-1)


_TICKET: ContextVar[_Ticket | None] = ContextVar("gridkit_group_ticket", default=None)


class GroupCommit(Generic[J, R]):
    """Run submitted jobs in batches on one thread.

    Parameters
    ----------
    process
        Takes a batch of jobs and returns one outcome per job, in order: a result,
        or an exception instance for that job alone. An exception raised by
        ``process`` itself fails the whole batch.
    max_batch
        Most jobs in one batch.
    window_s
        Longest wait for more jobs once a batch has begun (for announced requests,
        see :meth:`expecting`, and for the company of the last batches): the most
        latency batching adds to a request.
    """

    def __init__(
        self,
        process: Callable[[Sequence[J]], Sequence[R | BaseException]],
        *,
        max_batch: int = 256,
        window_s: float = 0.05,
        name: str = "gridkit-writer",
    ) -> None:
        self._process = process
        self._max = max_batch
        self._queue: queue.SimpleQueue[tuple[J, Future[R] | asyncio.Future[R]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False
        self._recent: deque[int] = deque([1], maxlen=8)  # sizes of the last batches
        self._window = window_s
        self._tick = 0.001
        self._start_lock = threading.Lock()
        self._coming = 0  # announced requests that have not submitted their job
        self._coming_lock = threading.Lock()

    def _arrived(self, delta: int) -> None:
        with self._coming_lock:
            self._coming += delta

    @contextmanager
    def expecting(self) -> Iterator[None]:
        """Announce a request that will :meth:`submit` a job in this context (or not:
        leaving the block without submitting withdraws the announcement)."""
        ticket = _Ticket(self)
        self._arrived(1)
        token = _TICKET.set(ticket)
        try:
            yield
        finally:
            _TICKET.reset(token)
            ticket.close()

    def submit(self, job: J) -> Future[R]:
        """Queue ``job``; the future is answered once its batch is done."""
        fut: Future[R] = Future()
        self._put(job, fut)
        return fut

    def submit_async(self, job: J) -> asyncio.Future[R]:
        """:meth:`submit` from the running event loop: an asyncio future, answered
        with the others of its batch on that loop in one hand-over (where a
        :class:`concurrent.futures.Future` per job, awaited through
        :func:`asyncio.wrap_future`, wakes the loop once per job)."""
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._put(job, fut)
        return fut

    def _put(self, job: J, fut: Future[R] | asyncio.Future[R]) -> None:
        if not self._started:
            with self._start_lock:
                if not self._started:
                    self._thread.start()
                    self._started = True
        self._queue.put((job, fut))
        ticket = _TICKET.get()
        if ticket is not None and ticket.group is self:
            ticket.close()  # after the put: the writer always sees the job or the ticket

    def close(self) -> None:
        """Stop the thread after the jobs already queued."""
        if self._started:
            self._queue.put(None)
            self._thread.join()

    def _gather(self, batch: list) -> bool:
        """Add the jobs queued behind the first; True when told to stop.

        Wait (at most the window) while announced requests have yet to submit, or
        while the batch is smaller than the largest of the last few (the clients of
        the last batches, answered a moment ago, are on their way back). Without
        this the request that comes back first after an answer starts a batch of its
        own and pays a whole pass of the work alone; a lone client, with no company in
        the last batches, does not wait. Once the batch has that company it goes at
        once: under more load, the jobs queued while it is taken in make the next
        batch larger (waiting for quiet as well cost a batch of 16 reports 4 ms and
        the service a quarter of its rate, measured by ``benchmarks/bench_postgis.py``).
        """
        waited = 0.0
        expect = max(self._recent)
        while len(batch) < self._max:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                if waited >= self._window or (self._coming <= 0 and len(batch) >= expect):
                    break
                time.sleep(self._tick)
                waited += self._tick
                continue
            if item is None:
                return True
            batch.append(item)
        self._recent.append(len(batch))
        return False

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = self._gather(batch)
            try:
                outcomes = list(self._process([job for job, _ in batch]))
                if len(outcomes) != len(batch):
                    raise RuntimeError("group commit: one outcome per job expected")
            except BaseException as exc:  # the batch failed as a whole
                outcomes = [exc] * len(batch)
            on_loops: dict[asyncio.AbstractEventLoop, list] = defaultdict(list)
            for (_, fut), out in zip(batch, outcomes, strict=True):
                if isinstance(fut, asyncio.Future):
                    on_loops[fut.get_loop()].append((fut, out))
                elif isinstance(out, BaseException):
                    fut.set_exception(out)
                else:
                    fut.set_result(out)
            for loop, answers in on_loops.items():
                try:
                    loop.call_soon_threadsafe(_settle, answers)
                except RuntimeError:  # the loop is closed: nobody waits for them
                    pass
            if stop:
                return


def _settle(answers: list) -> None:
    """Answer asyncio futures (on their loop) with their outcomes; a future given up
    meanwhile (its request cancelled) is left as it is."""
    for fut, out in answers:
        if fut.done():
            continue
        if isinstance(out, BaseException):
            fut.set_exception(out)
        else:
            fut.set_result(out)
