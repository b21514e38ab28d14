"""Evidence photos: what a file must be to count, and where the received ones are kept.

A photo counts only if Pillow decodes it whole (not only its first bytes): a JPEG
header followed by garbage, a file that is also something else (a polyglot: an
archive or a page after the image, script in its metadata) or a decompression bomb
(more pixels than Pillow's ``MAX_IMAGE_PIXELS``) is refused. Received files are
listed in the ``report_evidence`` table (one row per report and file) and stored
beside the workspace under their content hash.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import pandas as pd
from PIL import Image, UnidentifiedImageError

from api.errors import ApiError

#: Pillow's formats accepted, with their file extension and media type
FORMATS = {
    "JPEG": (".jpg", "image/jpeg"),
    "PNG": (".png", "image/png"),
    "WEBP": (".webp", "image/webp"),
}
MEDIA_TYPES = {ext: media for ext, media in FORMATS.values()}
#: a stored evidence file's name: its content hash and extension (nothing else is served)
NAME = re.compile(r"^[0-9a-f]{32}\.(jpg|png|webp)$")
TABLE = "report_evidence"
COLUMNS = [
    "report_id",
    "name",
    "kind",
    "media_type",
    "bytes",
    "width",
    "height",
    "uploaded_at",
    "uploaded_by",
    "taken_at",
    "lon",
    "lat",
    "idempotency_key",
]
# what follows an image in a polyglot, or hides in its metadata for a browser to run
_FOREIGN = re.compile(rb"<script|<html|<body|<\?php|<svg|<iframe|javascript:", re.IGNORECASE)


def _ends_cleanly(data: bytes, fmt: str) -> bool:
    """Whether the file ends where its image ends (nothing appended after it)."""
    if fmt == "JPEG":
        return data.rstrip(b"\x00").endswith(b"\xff\xd9")
    if fmt == "PNG":
        return data.endswith(b"IEND\xaeB`\x82")
    # RIFF: the size field counts every byte after the first 8
    return int.from_bytes(data[4:8], "little") + 8 == len(data)


def checked_image(data: bytes) -> tuple[str, str, int, int]:
    """The extension, media type, width and height of a photo that decodes whole;
    415 when it is no image of ours, 422 when it claims to be one and is not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            fmt = im.format or ""
            if fmt not in FORMATS:
                raise ApiError(415, f"Evidence must be a JPEG, PNG or WebP photo, not {fmt}.")
            width, height = im.size
            if width * height > Image.MAX_IMAGE_PIXELS:
                raise ApiError(
                    422,
                    f"The photo claims {width}x{height} pixels, more than "
                    f"{Image.MAX_IMAGE_PIXELS:,}; send a photo as the camera took it.",
                )
            im.load()  # decodes every pixel: a truncated or garbled image fails here
            meta = repr(im.info).encode() + b"".join(s for _, s in getattr(im, "applist", []))
    except UnidentifiedImageError:
        raise ApiError(415, "Evidence must be a JPEG, PNG or WebP photo.") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Warning) as exc:
        raise ApiError(422, f"The photo does not decode as an image ({exc}); retake it.") from None
    if not _ends_cleanly(data, fmt) or _FOREIGN.search(meta):
        raise ApiError(
            422, f"The {fmt} file carries more than a photo (data after or inside the image)."
        )
    ext, media = FORMATS[fmt]
    return ext, media, width, height


#: column types, so that the first row (without a position, say) fixes none wrongly
_TYPES = {
    "bytes": "int64",
    "width": "int64",
    "height": "int64",
    "lon": "float64",
    "lat": "float64",
    "uploaded_at": "datetime64[us, UTC]",
    "taken_at": "datetime64[us, UTC]",
}


def frame(row: dict) -> pd.DataFrame:
    """One evidence row as a typed frame (as the table stores it)."""
    df = pd.DataFrame([row], columns=COLUMNS)
    for col, dtype in _TYPES.items():
        if dtype.startswith("datetime"):
            df[col] = pd.to_datetime(df[col], utc=True).astype(dtype)
        else:
            df[col] = pd.to_numeric(df[col]).astype(dtype)
    for col in set(COLUMNS) - set(_TYPES):
        df[col] = df[col].astype("string")
    return df


def folder(root: Path | None, report_id: str) -> Path:
    """Where the photos of ``report_id`` are stored, under ``root`` (the settings'
    :meth:`~api.settings.Settings.evidence_root`); a clear 503 when there is none."""
    if root is None:
        raise ApiError(
            503,
            "Evidence photos cannot be stored or read: this server runs on a database "
            "and GRIDKIT_EVIDENCE_DIR is not set. Set it to a folder every server "
            "process shares, then restart the service.",
        )
    return Path(root) / report_id


def of_report(table: pd.DataFrame | None, report_id: str) -> pd.DataFrame:
    """The evidence rows of ``report_id`` (none when the table does not exist yet)."""
    if table is None or not len(table):
        return pd.DataFrame(columns=COLUMNS)
    return table[table["report_id"].astype(str) == report_id]


def listed(rows: pd.DataFrame) -> list[dict]:
    """Evidence rows as JSON records (bookkeeping left out)."""
    out = rows.drop(columns=["idempotency_key"], errors="ignore")
    out = out.astype(object).where(out.notna(), None)
    return [
        {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in rec.items()}
        for rec in out.to_dict(orient="records")
    ]
