"""Times and dates given on the command line: Beijing time unless a zone is given.

Every command option that takes a time or a date (``--at``, ``--start``, ``--end``,
``--since``, ``--until``, ``--held-on``, the ends of ``--period START..END``) is read
by :func:`cli_time`, as zone-less times in CSV and Excel tables are
(:data:`gridkit.io.TABLE_TZ`): a supervisor typing ``--at "2026-12-01 08:00"`` means
08:00 in Beijing. A value with a zone (``+08:00``, ``Z``) keeps it; a date alone is
that day's start in Beijing. The API is not concerned: its times are read as before.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import typer

from gridkit.errors import GridkitError
from gridkit.ops.times import LOCAL_TZ

__all__ = ["ZONE_HELP", "cli_date", "cli_time", "date_option", "time_option"]

#: what every time option's help says about zones
ZONE_HELP = "Beijing time (UTC+8) unless a zone is given"


def cli_time(text: str, *, option: str = "time") -> pd.Timestamp:
    """A time given to ``option``: zone-less in Beijing time (Asia/Shanghai), a zone
    (``+08:00``, ``Z``) kept; a date alone is 00:00 that day in Beijing. A value that
    is not a time is a one-line error naming the option.

    Examples
    --------
    >>> cli_time("2026-12-01 08:00")
    Timestamp('2026-12-01 08:00:00+0800', tz='Asia/Shanghai')
    >>> str(cli_time("2026-12-01T08:00Z")), str(cli_time("2026-12-01").tz_convert("UTC"))
    ('2026-12-01 08:00:00+00:00', '2026-11-30 16:00:00+00:00')
    >>> cli_time("yesterday", option="--at")
    Traceback (most recent call last):
    ...
    gridkit.errors.GridkitError: --at 'yesterday': not a time.
    Hint: Give an ISO 8601 time or date, e.g. --at "2026-06-01 08:00" (Beijing time ...).
    """
    t: Any = pd.NaT
    # words pandas knows ("now", "today") are the machine's clock, not Beijing's
    if text.strip()[:1].isdigit():
        try:
            t = pd.Timestamp(text.strip())
            if t is not pd.NaT and t.tzinfo is None:
                t = t.tz_localize(LOCAL_TZ)
        except (ValueError, TypeError, OverflowError):  # unparsed, out of range, DST gap
            t = pd.NaT
    if t is pd.NaT:
        raise GridkitError(
            f"{option} {text!r}: not a time.",
            hint=f'Give an ISO 8601 time or date, e.g. {option} "2026-06-01 08:00" '
            f"({ZONE_HELP}, as in 2026-06-01T00:00Z).",
        )
    return t


def cli_date(text: str, *, option: str = "date") -> str:
    """A date given to ``option`` (:func:`cli_time`, then its day in Beijing), as
    ``YYYY-MM-DD``.

    Examples
    --------
    >>> cli_date("2026-12-01"), cli_date("2026-12-01T20:00Z")
    ('2026-12-01', '2026-12-02')
    """
    return cli_time(text, option=option).tz_convert(LOCAL_TZ).date().isoformat()


def time_option(name: str, *, help: str) -> Any:
    """A ``typer.Option`` taking a time, read by :func:`cli_time`; its help ends with
    :data:`ZONE_HELP`.

    Examples
    --------
    >>> from typing import Annotated
    >>> def cmd(at: Annotated[pd.Timestamp | None, time_option("--at", help="As of.")] = None):
    ...     pass
    >>> time_option("--at", help="As of.").help
    'As of. Beijing time (UTC+8) unless a zone is given.'
    """
    return _zoned_option(name, help, cli_time, "TIME")


def date_option(name: str, *, help: str) -> Any:
    """A ``typer.Option`` taking a date (``YYYY-MM-DD``), read by :func:`cli_date`.

    Examples
    --------
    >>> date_option("--held-on", help="Date held.").help
    'Date held. Beijing time (UTC+8) unless a zone is given.'
    """
    return _zoned_option(name, help, cli_date, "DATE")


def _zoned_option(name: str, help: str, parse: Any, metavar: str) -> Any:
    """The option ``name`` read by ``parse`` (naming itself in its errors), its help
    ending with :data:`ZONE_HELP`."""
    return typer.Option(
        name,
        parser=lambda text: parse(text, option=name),
        metavar=metavar,
        help=f"{help} {ZONE_HELP}.",
    )
