"""Group commit: one writer thread runs the jobs queued meanwhile as one batch.

A request hands its job to :meth:`GroupCommit.submit` and awaits the returned
future. The writer thread takes the first job and every job queued behind it, runs
them together (the caller's ``process`` does the work for the whole batch and
commits once), and only then answers each future: an answered request is on disk,
and concurrent requests share one pass of the work and one commit.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

J = TypeVar("J")
R = TypeVar("R")


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
        Longest wait for more jobs once a batch has begun, used only under load.
    """

    def __init__(
        self,
        process: Callable[[Sequence[J]], Sequence[R | BaseException]],
        *,
        max_batch: int = 256,
        window_s: float = 0.02,
        name: str = "gridkit-writer",
    ) -> None:
        self._process = process
        self._max = max_batch
        self._queue: queue.SimpleQueue[tuple[J, Future[R]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False
        self._last = 1  # size of the last batch
        self._window = window_s
        self._tick = 0.001
        self._patience = 0.004  # stop waiting after this long without an arrival
        self._start_lock = threading.Lock()

    def submit(self, job: J) -> Future[R]:
        """Queue ``job``; the future is answered once its batch is done."""
        if not self._started:
            with self._start_lock:
                if not self._started:
                    self._thread.start()
                    self._started = True
        fut: Future[R] = Future()
        self._queue.put((job, fut))
        return fut

    def close(self) -> None:
        """Stop the thread after the jobs already queued."""
        if self._started:
            self._queue.put(None)
            self._thread.join()

    def _gather(self, batch: list) -> bool:
        """Add the jobs queued behind the first; True when told to stop.

        Under load (the last batch had company) wait a little while jobs keep
        arriving: the requests being parsed at this moment join this batch instead of
        each starting a batch of its own. A lone request does not wait.
        """
        waited = quiet = 0.0
        while len(batch) < self._max:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                if self._last <= 1 or waited >= self._window or quiet >= self._patience:
                    break
                time.sleep(self._tick)
                waited += self._tick
                quiet = quiet + self._tick if self._queue.empty() else 0.0
                continue
            if item is None:
                return True
            batch.append(item)
        self._last = len(batch)
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
            for (_, fut), out in zip(batch, outcomes, strict=True):
                if isinstance(out, BaseException):
                    fut.set_exception(out)
                else:
                    fut.set_result(out)
            if stop:
                return
