"""Concurrent escalation runs under every interleaving hypothesis picks (tester's W1):
each run has its own view of the reports, as a process has its own store; a write is
conditional on the reports being as that run last read them, as a store's
``if_unchanged`` write is. Whatever the order of the runs' reads and writes, each case
is escalated once, to the level one run alone gives it (brute force: :func:`escalate`
on the whole layer)."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from gridkit.ops.cases import escalate, escalate_each

AT = pd.Timestamp("2026-05-10T00:00Z")


class Shared:
    """The stored reports and events, with a version each write moves."""

    def __init__(self, reports: pd.DataFrame) -> None:
        self.reports = reports
        self.events: list[pd.DataFrame] = []
        self.version = 0


class Scheduler:
    """Lets one run at a time take its next step (a read or a write), in the order
    ``picks`` says among the runs waiting."""

    def __init__(self, n: int, picks: list[int]) -> None:
        self.cond = threading.Condition()
        self.waiting: set[int] = set()
        self.alive = set(range(n))
        self.current: int | None = None
        self.picks = picks

    def step(self, me: int):
        with self.cond:
            self.waiting.add(me)
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.current == me)
            self.waiting.discard(me)

    def done_step(self) -> None:
        with self.cond:
            self.current = None
            self.cond.notify_all()

    def finished(self, me: int) -> None:
        with self.cond:
            self.alive.discard(me)
            self.cond.notify_all()

    def drive(self) -> None:
        k = 0
        with self.cond:
            while self.alive:
                self.cond.wait_for(
                    lambda: self.current is None and self.waiting >= self.alive, timeout=10
                )
                if not self.alive:
                    break
                ready = sorted(self.waiting)
                pick = self.picks[k % len(self.picks)] if self.picks else 0
                self.current = ready[pick % len(ready)]
                k += 1
                self.cond.notify_all()


def _run(me: int, shared: Shared, sched: Scheduler, out: list) -> None:
    seen = {"version": -1}

    def read() -> pd.DataFrame:
        sched.step(me)
        try:
            seen["version"] = shared.version
            return shared.reports.copy()
        finally:
            sched.done_step()

    def write(rid: str, values: dict, events: pd.DataFrame) -> bool:
        sched.step(me)
        try:
            if shared.version != seen["version"]:
                seen["version"] = shared.version  # as a store forgets what it held
                return False
            at = (shared.reports["report_id"] == rid).to_numpy()
            for col, v in values.items():
                if col not in shared.reports:
                    shared.reports[col] = pd.Series([None] * len(shared.reports), dtype=object)
                shared.reports[col] = shared.reports[col].astype(object)
                shared.reports.loc[at, col] = v
            shared.events.append(events)
            shared.version += 1
            seen["version"] = shared.version
            return True
        finally:
            sched.done_step()

    try:
        out.append(escalate_each(read, write, at=AT, backoff_s=0.0, attempts=1000))
    finally:
        sched.finished(me)


def _reports(late_h: list[int]) -> pd.DataFrame:
    n = len(late_h)
    return pd.DataFrame(
        {
            "report_id": [f"R{i:07d}" for i in range(1, n + 1)],
            "category": "floating_garbage",
            "source": "patrol",
            "status": "handling",
            "admin_code": "430202001001",
            "lead_department_id": "D1",
            "reported_at": pd.Timestamp("2026-04-01T00:00Z"),
            "due_at": [AT - pd.Timedelta(hours=h) for h in late_h],
        }
    )


@settings(max_examples=40, deadline=None)
@given(
    late_h=st.lists(st.integers(-48, 300), min_size=1, max_size=6),
    runs=st.integers(2, 3),
    picks=st.lists(st.integers(0, 2), min_size=1, max_size=40),
)
def test_any_interleaving_escalates_each_lapse_once(late_h, runs, picks) -> None:
    reports = _reports(late_h)
    alone = escalate(reports, at=AT)  # brute force: one run over the whole layer
    shared = Shared(reports.copy())
    sched = Scheduler(runs, picks)
    out: list[pd.DataFrame] = []
    threads = [threading.Thread(target=_run, args=(i, shared, sched, out)) for i in range(runs)]
    for t in threads:
        t.start()
    sched.drive()
    for t in threads:
        t.join(timeout=30)
    assert len(out) == runs
    events = pd.concat([alone.events.iloc[:0], *shared.events], ignore_index=True)
    assert sorted(events["report_id"]) == sorted(alone.events["report_id"])
    assert sorted(events["note"]) == sorted(alone.events["note"])
    # what the runs say they escalated is what was written, each case by one run only
    said = pd.concat(out, ignore_index=True)
    assert sorted(said["report_id"]) == sorted(alone.events["report_id"])
    got = shared.reports.set_index("report_id")["escalation_level"] if len(events) else None
    if got is not None:
        want = alone.reports.set_index("report_id")["escalation_level"]
        for rid in events["report_id"]:
            assert int(got[rid]) == int(want[rid])
    assert np.all(events.groupby("report_id").size() == 1)


def test_a_run_keeps_the_rows_of_the_cases_it_decided_only() -> None:
    """A run over a city's reports with few overdue keeps those few rows to compare at
    write time, not a copy of every row (that made a run over 10^4 reports with nothing
    overdue take 1.7 s of every server process's CPU, every five minutes)."""
    from gridkit.ops.cases import _Decided

    late = [-5] * 500 + [30, 2, -1, 50]  # three of the last four are overdue
    reports = _reports(late)
    change = escalate(reports, at=AT)
    decided = _Decided(reports, change)
    overdue = set(reports["report_id"][np.asarray(late) > 0])
    assert set(decided.rows) == overdue == set(change.events["report_id"])
    for rid in overdue:  # the row as read, to compare with the row at write time
        pd.testing.assert_series_equal(
            decided.rows[rid],
            reports.set_index("report_id", drop=False).loc[rid],
            check_names=False,
        )
    assert _Decided(reports.iloc[:500], escalate(reports.iloc[:500], at=AT)).rows == {}
