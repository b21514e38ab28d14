"""The one reader of rules files: the packaged ``gridkit/rules/*.toml`` or an edited copy.

Every rules loader (reports, patrols, handlers, workdays, callbacks) reads its TOML
here, so a missing file, a file that is not UTF-8 or not TOML gets the same clear
error naming the file and the fix, never a traceback.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from gridkit.errors import GridkitError


def read_rules(
    name: str, path: str | Path | None, error: type[GridkitError] = GridkitError
) -> tuple[dict, str]:
    """The table of rules file ``name`` (packaged) or of ``path`` (an edited copy), and
    the source to name in messages; problems raise ``error`` naming the file.

    Examples
    --------
    >>> data, source = read_rules("callbacks.toml", None)
    >>> source, sorted(data)[:2]
    ('gridkit/rules/callbacks.toml', ['max_reopens', 'reopen_on'])
    >>> try:
    ...     read_rules("callbacks.toml", "no/such/callbacks.toml")
    ... except GridkitError as e:
    ...     print(e.message)
    no/such/callbacks.toml: no such rules file.
    """
    packaged = f"gridkit/rules/{name}"
    if path is None:
        text = resources.files("gridkit").joinpath("rules", name).read_text("utf-8")
        source = packaged
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise error(
                f"{source}: no such rules file.",
                hint=f"give the path of an edited copy of {packaged}, or leave the "
                "option out for the packaged rules.",
            ) from None
        except UnicodeDecodeError:
            raise error(
                f"{source}: not UTF-8 text.", hint="save the rules file as UTF-8."
            ) from None
    try:
        return tomllib.loads(text), source
    except tomllib.TOMLDecodeError as e:
        raise error(
            f"{source}: not valid TOML ({e}).",
            hint=f"compare it with {packaged}, or leave the option out for the packaged rules.",
        ) from None
