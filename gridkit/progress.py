"""A rich progress bar for long work that stays quiet when not on a terminal."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["track"]

T = TypeVar("T")

_console = Console(stderr=True)


def track(
    items: Iterable[T], description: str, *, total: int | None = None, enabled: bool | None = None
) -> Iterator[T]:
    """Iterate over ``items`` showing a progress bar on an interactive terminal.

    Used around chunks of vectorised work (per district, per batch), never per row.

    Examples
    --------
    >>> [n * 2 for n in track(range(3), "doubling", enabled=False)]
    [0, 2, 4]
    """
    show = _console.is_terminal if enabled is None else enabled
    if not show:
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)
