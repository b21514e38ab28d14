"""Time helpers shared by the operations modules: everything stored in UTC."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["LOCAL_TZ", "UTC", "utc_array", "utc_scalar", "utc_series"]

UTC = "UTC"
LOCAL_TZ = "Asia/Shanghai"


def utc_scalar(value: object, *, name: str = "time") -> pd.Timestamp:
    """A tz-aware UTC timestamp; naive values are taken as UTC (the storage convention).

    Examples
    --------
    >>> str(utc_scalar("2026-05-01 08:00")), str(utc_scalar("2026-05-01T08:00+08:00"))
    ('2026-05-01 08:00:00+00:00', '2026-05-01 00:00:00+00:00')
    """
    if value is None:
        return pd.Timestamp.now(tz=UTC)
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise ValueError(f"{name} is not a time: {value!r}")
    ts = ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)
    return ts.floor("us").as_unit("us")


def utc_series(values: object, index: pd.Index | None = None) -> pd.Series:
    """A UTC datetime Series (naive values taken as UTC).

    Examples
    --------
    >>> utc_series(["2026-05-01T08:00+08:00", "2026-05-01T01:00Z"]).dt.hour.tolist()
    [0, 1]
    >>> str(utc_series(["2026-05-01 08:00"]).dtype)
    'datetime64[us, UTC]'
    """
    s = values if isinstance(values, pd.Series) else pd.Series(values, index=index)
    dtype = s.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) and dtype.unit == "us" and str(dtype.tz) == UTC:
        return s  # already what the conversions below would give
    if not pd.api.types.is_datetime64_any_dtype(s.dtype):
        s = pd.to_datetime(s, utc=True, format="mixed")
    elif getattr(s.dt, "tz", None) is None:
        s = s.dt.tz_localize(UTC)
    else:
        s = s.dt.tz_convert(UTC)
    # One unit everywhere (microseconds), so columns and new values always fit.
    return s.dt.floor("us").dt.as_unit("us")


def utc_array(value: object, n: int, *, name: str = "at") -> pd.Series:
    """``value`` (scalar or length-``n`` sequence) as ``n`` UTC timestamps.

    Examples
    --------
    >>> utc_array("2026-05-01", 2).astype(str).tolist()
    ['2026-05-01 00:00:00+00:00', '2026-05-01 00:00:00+00:00']
    >>> len(utc_array(["2026-05-01", "2026-05-02"], 2))
    2
    """
    if value is None or np.ndim(value) == 0:
        return pd.Series([utc_scalar(value, name=name)] * n)
    s = utc_series(list(value))
    if len(s) != n:
        raise ValueError(f"{name} has {len(s)} values for {n} rows.")
    return s.reset_index(drop=True)
