"""Synthetic posts at the grid-management centre and in departments (the ``staff`` layer)."""

from __future__ import annotations

import pandas as pd

from gridkit import codes

__all__ = ["centre_staff"]


def centre_staff(departments: pd.DataFrame) -> pd.DataFrame:
    """A dispatcher and a supervisor for each district (county-level area) the
    departments serve, a supervisor for the city, and one staff member per department;
    ids are stable (``C<district>-D`` dispatcher, ``C<district>-S`` supervisor,
    ``<department>-S1`` staff).

    Examples
    --------
    >>> d = pd.DataFrame({"department_id": ["D430202-01"], "admin_code": ["430202"]})
    >>> centre_staff(d)[["worker_id", "post", "admin_code", "department_id"]].values.tolist()
    [['C430202-D', 'dispatcher', '430202', nan], ['C430202-S', 'supervisor', '430202', nan],
     ['C430200-S', 'supervisor', '430200', nan], ['D430202-01-S1', 'department', '430202',
     'D430202-01']]
    """
    districts = sorted(
        {d for d in codes.district(departments["admin_code"].astype(str)).dropna()}
        - {c for c in departments["admin_code"].astype(str) if codes.level(c) == "city"}
    )
    rows = []
    for d in districts:
        rows.append((f"C{d}-D", f"{d} 网格中心派遣员", "dispatcher", d, None))
        rows.append((f"C{d}-S", f"{d} 网格中心督办员", "supervisor", d, None))
    cities = sorted(
        {c for c in codes.ancestor(pd.Series(districts, dtype=object), "city").dropna()}
    )
    rows += [(f"C{c}-S", f"{c} 市级督办员", "supervisor", c, None) for c in cities]
    for dep, code in zip(departments["department_id"], departments["admin_code"], strict=True):
        rows.append((f"{dep}-S1", f"{dep} 承办人", "department", str(code), str(dep)))
    return pd.DataFrame(rows, columns=["worker_id", "name", "post", "admin_code", "department_id"])
