"""Personal data in what is shown: phone numbers masked for those who may not see them.

Workers' phones and reporters' contacts are private fields (``gridkit.LAYERS``); they
also turn up in free text (a description saying "联系电话 13812341234") and in the
tables built from layers. :func:`mask_phones` masks every phone number in text,
keeping enough to recognise it (``138****1234``).
"""

from __future__ import annotations

import re
from collections.abc import Collection

import pandas as pd

__all__ = ["PHONE", "mask_frame", "mask_phones"]

#: a mainland mobile (11 digits from 13x-19x, optionally +86) or a landline with its
#: area code (0731-22334455); not part of a longer number (an id, a code)
PHONE = re.compile(
    r"(?<![\d])(?:(?:\+?86[ -]?)?(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})"
    r"|(0\d{2,3})-?(\d{3,4})(\d{4}))(?![\d])"
)


# PHONE without look-arounds (the vectorised engine has none): matches every text it does
_LONG_RUN = (
    r"(?:^|[^0-9])(?:1[3-9][0-9][ -]?[0-9]{4}[ -]?[0-9]{4}|0[0-9]{2,3}-?[0-9]{7,8})(?:$|[^0-9])"
)


def _mask(m: re.Match[str]) -> str:
    if m.group(1):
        return f"{m.group(1)}****{m.group(3)}"
    return f"{m.group(4)}-****{m.group(6)}"


def mask_phones(values: pd.Series) -> pd.Series:
    """Every phone number in ``values`` (text) masked: ``13812341234`` becomes
    ``138****1234``, ``0731-22334455`` becomes ``0731-****4455``; other text, missing
    values and non-text values unchanged. Same index.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.Series(["13812341234", "联系电话:+86 138 1234 5678，王", "0731-22334455",
    ...                "430202001001", None, "网格 12"], dtype=object)
    >>> mask_phones(s).tolist()
    ['138****1234', '联系电话:138****5678，王', '0731-****4455', '430202001001', None, '网格 12']
    """
    # texts with a run of digits long enough, found in one vectorised pass; the exact
    # pattern then runs on those alone
    plain = pd.api.types.is_object_dtype(values.dtype)
    text = values.where(values.map(lambda v: isinstance(v, str)), None) if plain else values
    has = text.astype("string").str.contains(_LONG_RUN, regex=True, na=False)
    has = has.to_numpy(dtype=bool)
    if not has.any():
        return values
    has[has] = [PHONE.search(v) is not None for v in values[has]]
    if not has.any():
        return values
    out = values.astype(object).copy()
    out[has] = [PHONE.sub(_mask, v) for v in out[has]]  # only the texts holding a number
    return out


def mask_frame(df: pd.DataFrame, *, keep: Collection[str] = ()) -> pd.DataFrame:
    """A copy of ``df`` with the phone numbers of every text column masked
    (:func:`mask_phones`) but those in ``keep`` (ids); other columns as they are.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"worker_id": ["W1"], "phone": ["13900001111"], "capacity": [5]})
    >>> mask_frame(df).values.tolist()
    [['W1', '139****1111', 5]]
    """
    out = df.copy()
    for col in out.columns:
        if col in keep:
            continue
        values = out[col]
        plain = pd.api.types.is_object_dtype(values.dtype)
        if plain or pd.api.types.is_string_dtype(values.dtype):
            masked = mask_phones(values)
            if masked is not values:  # something was masked
                out[col] = masked if plain else masked.astype(values.dtype)
    return out
