"""Print a map page to PNG or PDF at A4/A3 with headless Chromium.

The page is opened in print mode (``#print``: controls hidden, legend open and whole;
the title carries the date printed), at the paper's size at 96 dpi (A4 landscape:
1123 × 794 px), in a headless Chromium with no network (the offline page needs
none). PNG comes from ``--screenshot`` at twice the pixel density, PDF from
``--print-to-pdf``. Chromium is found as ``chromium``, ``chromium-browser`` or
``google-chrome`` on the ``PATH`` (or ``GRIDKIT_CHROMIUM``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from gridkit.errors import GridkitError

__all__ = ["PAPER_PX", "find_chromium", "print_map"]

#: paper sizes in CSS pixels (96 dpi), portrait
PAPER_PX = {"A4": (794, 1123), "A3": (1123, 1587)}
_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The Chromium (or Chrome) executable, or ``None``.

    Examples
    --------
    >>> find_chromium() is None or Path(find_chromium()).name.startswith(("chrom", "google"))
    True
    """
    env = os.environ.get("GRIDKIT_CHROMIUM")
    if env:
        return env
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _page_size(paper: str, landscape: bool) -> tuple[int, int]:
    if paper.upper() not in PAPER_PX:
        raise GridkitError(f"Unknown paper {paper!r}.", hint="Use A4 or A3.")
    w, h = PAPER_PX[paper.upper()]
    return (h, w) if landscape else (w, h)


def print_map(
    page_html: str,
    output: str | Path,
    *,
    paper: str = "A4",
    landscape: bool = True,
    timeout_s: float = 60.0,
) -> Path:
    """Write ``page_html`` (a map page) as ``output`` (``.png`` or ``.pdf``).

    Parameters
    ----------
    page_html
        The map page (:func:`gridkit.maps.map_html`); make it with ``printed=`` set
        in the title or period if the date should show.
    output
        ``.png`` or ``.pdf`` path.
    paper, landscape
        A4 or A3, landscape (default) or portrait.
    timeout_s
        Chromium is stopped after this many seconds.

    Raises
    ------
    GridkitError
        Without Chromium, for another suffix, or when Chromium fails.

    Examples
    --------
    >>> import tempfile, folium
    >>> from gridkit.maps import map_html
    >>> out = Path(tempfile.mkdtemp()) / "m.txt"
    >>> print_map(map_html(folium.Map(tiles=None)), out)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gridkit.errors.GridkitError: cannot print a map to 'm.txt'.
    Hint: Name the output .png or .pdf.
    """
    out = Path(output)
    kind = out.suffix.lower()
    if kind not in (".png", ".pdf"):
        raise GridkitError(
            f"cannot print a map to {out.name!r}.", hint="Name the output .png or .pdf."
        )
    exe = find_chromium()
    if exe is None:
        raise GridkitError(
            "printing a map needs Chromium, which was not found.",
            hint="apt-get install chromium (or set GRIDKIT_CHROMIUM to the browser).",
        )
    w, h = _page_size(paper, landscape)
    with tempfile.TemporaryDirectory(prefix="gridkit-print-") as tmp:
        src = Path(tmp) / "map.html"
        size = f"{paper.upper()} {'landscape' if landscape else 'portrait'}"
        css = f"<style>@page{{size:{size};margin:0}}html,body{{width:{w}px;height:{h}px}}</style>"
        src.write_text(page_html.replace("<head>", "<head>" + css, 1), encoding="utf-8")
        target = Path(tmp) / f"out{kind}"
        args = [
            exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update",
            "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp}/profile",
            f"--window-size={w},{h}", "--hide-scrollbars", "--virtual-time-budget=5000",
        ]  # fmt: skip
        if kind == ".png":
            args += ["--force-device-scale-factor=2", f"--screenshot={target}"]
        else:
            args += [f"--print-to-pdf={target}", "--no-pdf-header-footer"]
        args.append(src.as_uri() + "#print")
        try:
            proc = subprocess.run(args, capture_output=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise GridkitError(f"Chromium took over {timeout_s:.0f} s to print the map.") from None
        if not target.exists():
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
            raise GridkitError("Chromium did not print the map.", hint=" / ".join(err))
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, out)
    return out
