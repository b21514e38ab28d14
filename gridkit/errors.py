"""Errors raised by gridkit.

Every error derives from :class:`GridkitError` and from the builtin it refines, so
``except ValueError`` keeps working for callers that do not know gridkit. Messages
say what was wrong, where (file, layer, row ids) and what to do about it.
"""

from __future__ import annotations

import functools
import importlib
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType
from typing import Any, TypeVar

__all__ = [
    "CRSError",
    "GridkitError",
    "GridkitWarning",
    "InputFileError",
    "InvalidLayerError",
    "LayerNotFoundError",
    "MissingExtraError",
    "UnsupportedFormatError",
    "import_quietly",
    "once_per_call",
    "require_extra",
]

F = TypeVar("F", bound=Callable[..., Any])


class GridkitError(Exception):
    """Base class of every gridkit error.

    Parameters
    ----------
    message
        What was wrong and where.
    hint
        What to do about it (shown by the CLI as a separate line).
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\nHint: {hint}")


class InvalidLayerError(GridkitError, ValueError):
    """A layer does not satisfy the data contract (columns, geometry, ids, values).

    ``problems`` holds one line per problem, ``rows`` the offending row ids when known.
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        problems: Sequence[str] = (),
        rows: Iterable[object] = (),
    ) -> None:
        self.problems = list(problems)
        self.rows = list(rows)
        super().__init__(message, hint=hint)


class CRSError(GridkitError, ValueError):
    """A coordinate reference system is missing, unknown or does not fit the data."""


class UnsupportedFormatError(GridkitError, ValueError):
    """A file extension or driver gridkit cannot read or write."""


class LayerNotFoundError(GridkitError, LookupError):
    """A named layer is not in a file or workspace."""


def format_rows(rows: Iterable[object], *, limit: int = 10) -> str:
    """Render row ids for a message: the first ``limit`` and how many more."""
    rows = list(rows)
    shown = ", ".join(str(r) for r in rows[:limit])
    more = len(rows) - limit
    return f"{shown} (and {more} more)" if more > 0 else shown


class InputFileError(GridkitError, OSError):
    """A file cannot be found, opened or decoded."""


class GridkitWarning(UserWarning):
    """A recoverable condition gridkit handled for you (and tells you about)."""


#: optional extras of the distribution and the modules each brings
EXTRAS = {
    "maps": ("folium", "xstatic.pkg.leaflet"),
    "api": ("fastapi", "uvicorn", "pydantic_settings"),
    "scale": ("dask", "distributed", "dask_geopandas"),
    "postgis": ("psycopg", "psycopg_pool"),
}


class MissingExtraError(GridkitError, ImportError):
    """A feature needs an optional extra of gridkit that is not installed."""


def require_extra(extra: str, feature: str) -> list[ModuleType]:
    """Import the modules of an optional extra, or say which extra to install.

    Parameters
    ----------
    extra
        ``"maps"`` (folium, Leaflet) or ``"api"`` (FastAPI, uvicorn).
    feature
        What needs it, for the message ("maps", "gridkit serve").

    Returns
    -------
    list of module
        The extra's modules, imported.

    Raises
    ------
    MissingExtraError
        Naming the missing module and the ``pip install`` line that brings it.

    Examples
    --------
    >>> [m.__name__ for m in require_extra("maps", "maps")]
    ['folium', 'xstatic.pkg.leaflet']
    >>> require_extra("bogus", "x")
    Traceback (most recent call last):
    ...
    KeyError: 'bogus'
    """
    modules = []
    for name in EXTRAS[extra]:
        try:
            modules.append(importlib.import_module(name))
        except ImportError as e:
            raise MissingExtraError(
                f"{feature} needs the '{extra}' extra: pip install \"gridkit[{extra}]\"",
                hint=f"{e.name or name} is not installed.",
            ) from e
    return modules


def once_per_call(func: F) -> F:
    """Decorate a function so that a call shows each kind of :class:`GridkitWarning`
    once: warnings of the same text but for their ids and figures (one per community,
    per row...) come out as the first of them and how many more there were, at the
    caller's line. Other warnings pass through unchanged.

    (Collecting uses :class:`warnings.catch_warnings`, which is process-wide: meant for
    the notebook-facing functions, not for work run in threads.)

    Examples
    --------
    >>> import warnings
    >>> @once_per_call
    ... def split(parts):
    ...     for p in parts:
    ...         warnings.warn(f"community {p}: a building above the cap.", GridkitWarning)
    ...     return len(parts)
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     split(["C1", "C2", "C3"])
    3
    >>> [str(w.message) for w in seen]
    ['community C1: a building above the cap. (and 2 more warnings like it)']
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", GridkitWarning)
            result = func(*args, **kwargs)
        kinds: dict[tuple, list[warnings.WarningMessage]] = {}
        for w in caught:
            if issubclass(w.category, GridkitWarning):
                kinds.setdefault((w.category, _shape(str(w.message))), []).append(w)
            else:  # not ours: as it was
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        for (category, _), same in kinds.items():
            more = len({str(w.message) for w in same}) - 1
            text = str(same[0].message)
            if more:
                text += f" (and {more} more warning{'s' if more > 1 else ''} like it)"
            warnings.warn(text, category, stacklevel=2)
        return result

    return wrapper  # type: ignore[return-value]


def _shape(message: str) -> str:
    """A message with its ids and figures blanked: warnings of one kind about different
    communities, rows or areas share a shape (where they are raised says nothing: they
    all point at the caller)."""
    blanked = re.sub(r"[\w+-]*\d(?:[\w.+-]*[\w+-])?", "#", message)
    blanked = re.sub(r"#(?:[,\s]+#)*", "#", blanked)  # lists of ids: one blank
    return re.sub(r"\s*\(and # more[^)]*\)", "", blanked)  # however long the list


def import_quietly(name: str) -> ModuleType:
    """Import a third-party module without the warnings its import shows in a notebook
    and that are not the user's business (tqdm's "IProgress not found" TqdmWarning,
    raised when PySAL's esda loads ``tqdm.auto`` without ipywidgets).

    Examples
    --------
    >>> import_quietly("json").__name__
    'json'
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        return importlib.import_module(name)
