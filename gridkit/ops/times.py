"""Time helpers shared by the operations modules: everything stored in UTC."""

from __future__ import annotations

import numpy as np
import pandas as pd

UTC = "UTC"
LOCAL_TZ = "Asia/Shanghai"


def utc_scalar(value: object, *, name: str = "time") -> pd.Timestamp:
    """A tz-aware UTC timestamp; naive values are taken as UTC (the storage convention)."""
    if value is None:
        return pd.Timestamp.now(tz=UTC)
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise ValueError(f"{name} is not a time: {value!r}")
    ts = ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)
    return ts.floor("us").as_unit("us")


def utc_series(values: object, index: pd.Index | None = None) -> pd.Series:
    """A UTC datetime Series (naive values taken as UTC)."""
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
    """``value`` (scalar or length-``n`` sequence) as ``n`` UTC timestamps."""
    if value is None or np.ndim(value) == 0:
        return pd.Series([utc_scalar(value, name=name)] * n)
    s = utc_series(list(value))
    if len(s) != n:
        raise ValueError(f"{name} has {len(s)} values for {n} rows.")
    return s.reset_index(drop=True)
