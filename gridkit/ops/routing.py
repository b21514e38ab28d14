"""Routing cases to handlers at every level (分级处置): bureaus, township offices,
community committees and property companies.

A department serves an area at any level (``admin_code``: a county bureau 6 digits, a
township office 9, a village or community committee 12) and has a ``handler_type``.
Per category, ``rules/handlers.toml`` lists the handler types in order of preference
(a broken street light: the property company, then the community committee, the
township office, the bureau); a case goes to the first type with a department serving
the category in the case's area or above it, the most local of them, and the reason
says why, in Chinese and English. The same file holds the stage limits in working time
(:class:`gridkit.ops.worktime.StageLimits`).

Examples
--------
>>> departments = pd.DataFrame({
...     "department_id": ["D-UM", "T-001", "P-01"],
...     "name": ["区城管局", "月塘街道办事处", "绿城物业"],
...     "admin_code": ["430202", "430202001", "430202001001"],
...     "handler_type": ["bureau", "township_office", "property_company"],
...     "categories": ["street_light;road_damage", "street_light", "street_light"]})
>>> cases = pd.DataFrame({"admin_code": ["430202001001", "430202001002", "430202002001"],
...                       "category": ["street_light"] * 3})
>>> route(cases, departments)["department_id"].tolist()
['P-01', 'T-001', 'D-UM']
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from gridkit import codes
from gridkit.errors import GridkitError, format_rows
from gridkit.layers import layer_spec
from gridkit.ops.reports import report_rules
from gridkit.ops.rulefiles import read_rules
from gridkit.ops.worktime import StageLimits

__all__ = [
    "HANDLER_TYPES",
    "HandlerRules",
    "RoutingError",
    "RoutingRules",
    "handler_rules",
    "load_handler_rules",
    "route",
    "synthetic_departments",
]

#: Handler types, most local first (the ``handler_type`` choices of the ``departments`` layer).
HANDLER_TYPES: tuple[str, ...] = layer_spec("departments").column("handler_type").choices  # type: ignore[union-attr, assignment]
_LABELS = {
    "property_company": ("物业", "property company"),
    "community_committee": ("社区居委会", "community committee"),
    "township_office": ("街道办事处", "township office"),
    "bureau": ("主管部门", "bureau"),
}


class RoutingError(GridkitError, ValueError):
    """Handler rules or a ``departments`` layer that routing cannot use.

    Examples
    --------
    >>> bad = pd.DataFrame({"department_id": ["D1"], "name": ["x"], "admin_code": ["4302"],
    ...                     "categories": ["cctv"], "handler_type": ["police"]})
    >>> try:
    ...     route(pd.DataFrame({"admin_code": ["430202"], "category": ["cctv"]}), bad)
    ... except RoutingError as e:
    ...     print(str(e)[:60])
    departments: handler_type 'police' is none of property_compa
    """


@dataclass(frozen=True)
class RoutingRules:
    """Handler types, their names, and per category the types in order of preference.

    Examples
    --------
    >>> r = handler_rules().routing
    >>> r.preference("street_light")[:2], r.preference("no_such_category")
    (('property_company', 'community_committee'), ('township_office', 'bureau'))
    >>> r.label("township_office")
    ('街道办事处', 'township office')
    """

    default: tuple[str, ...]
    categories: Mapping[str, tuple[str, ...]]
    labels: Mapping[str, tuple[str, str]] = field(default_factory=lambda: dict(_LABELS))
    source: str = field(default="<dict>", compare=False)

    @classmethod
    def from_dict(cls, data: Mapping, *, source: str = "<dict>") -> RoutingRules:
        """Parse the ``[routing]`` table (``default``, ``categories``, ``labels``)."""
        labels = dict(_LABELS)
        labels.update({k: tuple(v) for k, v in dict(data.get("labels", {})).items()})

        def prefs(where: str, value: object) -> tuple[str, ...]:
            items = tuple(str(v) for v in (value or ()))  # type: ignore[union-attr]
            bad = [t for t in items if t not in HANDLER_TYPES]
            if not items or bad:
                raise RoutingError(
                    f"{source}: {where} = {list(items)!r}: "
                    + (f"unknown handler type {bad[0]!r}" if bad else "no handler type")
                    + ".",
                    hint=f"handler types are {', '.join(HANDLER_TYPES)}",
                )
            return items

        cats = {
            str(k): prefs(f"[routing.categories] {k}", v)
            for k, v in dict(data.get("categories", {})).items()
        }
        default = prefs("[routing] default", data.get("default", ["township_office", "bureau"]))
        return cls(default, cats, labels, source)

    def preference(self, category: str) -> tuple[str, ...]:
        """Handler types for ``category``, preferred first."""
        return self.categories.get(category, self.default)

    def label(self, handler_type: str) -> tuple[str, str]:
        """The Chinese and English name of a handler type."""
        return self.labels.get(handler_type, (handler_type, handler_type))  # type: ignore[return-value]


@dataclass(frozen=True)
class HandlerRules:
    """What ``handlers.toml`` holds: routing and stage limits.

    Examples
    --------
    >>> rules = handler_rules()
    >>> str(rules.stage_limits.limit("street_light", "handle")), rules.source
    ('3d', 'gridkit/rules/handlers.toml')
    """

    routing: RoutingRules
    stage_limits: StageLimits
    source: str = field(default="<dict>", compare=False)

    @classmethod
    def from_dict(cls, data: Mapping, *, source: str = "<dict>") -> HandlerRules:
        """Parse a ``handlers.toml`` table (``[routing]``, ``[stage_limits]``)."""
        return cls(
            RoutingRules.from_dict(dict(data.get("routing", {})), source=source),
            StageLimits.from_dict(dict(data.get("stage_limits", {})), source=source),
            source,
        )


def load_handler_rules(path: str | Path | None = None) -> HandlerRules:
    """Read handler rules (default: the packaged ``rules/handlers.toml``).

    Examples
    --------
    >>> load_handler_rules().routing.preference("sand_mining")
    ('bureau',)
    """
    data, source = read_rules("handlers.toml", path, RoutingError)
    return HandlerRules.from_dict(data, source=source)


@functools.cache
def _packaged() -> HandlerRules:
    return load_handler_rules()


def handler_rules(rules: HandlerRules | str | Path | None = None) -> HandlerRules:
    """The rules to apply: ``rules`` itself, read from a path, or the packaged ones.

    Examples
    --------
    >>> handler_rules() is handler_rules()
    True
    """
    if isinstance(rules, HandlerRules):
        return rules
    return _packaged() if rules is None else load_handler_rules(rules)


# --------------------------------------------------------------------------- routing


def _handlers(departments: pd.DataFrame) -> pd.DataFrame:
    """One row per department and category it serves, codes normalised, checked."""
    need = [c for c in ("department_id", "admin_code", "categories") if c not in departments]
    if need:
        raise RoutingError(
            f"departments: no column {', '.join(need)}.",
            hint="departments need department_id, name, admin_code, handler_type, categories.",
        )
    d = departments
    ids = d["department_id"].astype(str)
    types = (
        d["handler_type"].astype(object).where(d["handler_type"].notna(), "bureau")
        if "handler_type" in d
        else pd.Series("bureau", index=d.index)
    ).astype(str)
    bad_type = ~types.isin(HANDLER_TYPES)
    if bad_type.any():
        raise RoutingError(
            f"departments: handler_type {types[bad_type].iloc[0]!r} is none of "
            f"{', '.join(HANDLER_TYPES)} (departments {format_rows(ids[bad_type])}).",
            hint="Leave it empty for a bureau.",
        )
    code = codes.normalise(d["admin_code"])
    lvl = codes.level(code)
    if lvl.isna().any():
        raise RoutingError(
            f"departments: admin_code is no admin code for departments "
            f"{format_rows(ids[lvl.isna().to_numpy()])}.",
            hint="6 digits for a county, 9 for a township, 12 for a village or community.",
        )
    cats = d["categories"].astype(object).where(d["categories"].notna(), "").astype(str)
    out = pd.DataFrame(
        {
            "department_id": ids.to_numpy(),
            "name": (d["name"].astype(str) if "name" in d else ids).to_numpy(),
            "handler_code": code.to_numpy(),
            "handler_type": types.to_numpy(),
            "category": cats.map(lambda s: [c.strip() for c in re.split(r"[;,]", s)]).to_numpy(),
        }
    ).explode("category")
    return out[out["category"].astype(bool) & out["category"].notna()]


def _areas_above(pairs: pd.DataFrame) -> pd.DataFrame:
    """Each pair's admin code and every code above it, with its significant digits."""
    parts = []
    for lvl in codes.LEVELS:  # five levels: a loop over levels, vectorised over pairs
        up = codes.ancestor(pairs["admin_code"], lvl)
        ok = up.notna().to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "pair": pairs.index[ok],
                    "handler_code": up[ok].to_numpy(),
                    "depth": codes.DIGITS[lvl],
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _winners(pairs: pd.DataFrame, handlers: pd.DataFrame, rules: RoutingRules) -> pd.DataFrame:
    """Per pair the chosen department: the first preferred type, the most local, by id."""
    cats = pairs["category"].unique()
    pref = pd.DataFrame(
        [(c, t, i) for c in cats for i, t in enumerate(rules.preference(c))],
        columns=["category", "handler_type", "rank"],
    )
    above = _areas_above(pairs).merge(pairs[["category"]], left_on="pair", right_index=True)
    cand = above.merge(handlers, on=["handler_code", "category"]).merge(
        pref, on=["category", "handler_type"]
    )
    cand = cand.sort_values(["pair", "rank", "depth", "department_id"], ascending=[1, 1, 0, 1])
    return cand.drop_duplicates("pair").set_index("pair")


def _reasons(pairs: pd.DataFrame, rules: RoutingRules) -> tuple[list[str], list[str]]:
    """Chinese and English reasons, one per distinct pair (not per case)."""
    labels = report_rules().label
    zh, en = [], []
    for area, cat, dept, name, htype, hcode, rank in pairs[
        ["admin_code", "category", "department_id", "name", "handler_type", "handler_code", "rank"]
    ].itertuples(index=False):
        pref = rules.preference(cat)
        if area is None:
            zh.append(f"无处置部门: 案件没有行政区划代码, 无法分派{labels(cat)}")
            en.append(f"no handler: the case has no admin code to route {cat}")
            continue
        if dept is None:
            zh.append(
                f"无处置部门: {area}及其上级区域没有负责{labels(cat)}的"
                + "、".join(rules.label(t)[0] for t in pref)
            )
            en.append(
                f"no handler: no {' or '.join(rules.label(t)[1] for t in pref)} serves {cat} "
                f"in {area} or above"
            )
            continue
        skipped = pref[: int(rank)]
        lz, le = rules.label(htype)
        zh.append(
            (
                f"{area}没有负责{labels(cat)}的{'、'.join(rules.label(t)[0] for t in skipped)}; "
                if skipped
                else ""
            )
            + f"最近的{lz}: {name}({dept}, {hcode})负责{area}的{labels(cat)}"
        )
        en.append(
            (
                f"no {' or '.join(rules.label(t)[1] for t in skipped)} serves {cat} in {area}; "
                if skipped
                else ""
            )
            + f"nearest {le} serving {cat} in {area}: {dept} {name} ({hcode})"
        )
    return zh, en


def route(
    cases: pd.DataFrame,
    departments: pd.DataFrame,
    rules: HandlerRules | RoutingRules | str | Path | None = None,
) -> pd.DataFrame:
    """The department that handles each case, and why.

    Parameters
    ----------
    cases
        ``admin_code`` (the case's area, any level) and ``category``.
    departments
        ``department_id``, ``name``, ``admin_code`` (the area served, any level),
        ``handler_type`` (optional; missing or empty: ``bureau``) and ``categories``
        (keys separated by ``;`` or ``,``).
    rules
        Handler rules (default the packaged ``rules/handlers.toml``).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``cases``: ``department_id`` (None when no department serves the
        case), ``handler_type``, ``handler_code`` (the admin code the department
        serves), ``reason_zh``, ``reason_en`` and ``handler_reason`` (both, for the
        case's ``handler_reason`` column). Computed once per distinct (admin code,
        category), whatever the number of cases.

    Examples
    --------
    >>> departments = pd.DataFrame({
    ...     "department_id": ["D-UM", "C-001"], "name": ["区城管局", "仙庾岭社区居委会"],
    ...     "admin_code": ["430202", "430202001001"],
    ...     "handler_type": ["bureau", "community_committee"],
    ...     "categories": ["street_light", "street_light"]})
    >>> cases = pd.DataFrame({"admin_code": ["430202001001", "430202001002", "430203001001"],
    ...                       "category": ["street_light"] * 3})
    >>> r = route(cases, departments)
    >>> print(r["reason_en"].iloc[0])  # doctest: +NORMALIZE_WHITESPACE
    no property company serves street_light in 430202001001; nearest community committee
    serving street_light in 430202001001: C-001 仙庾岭社区居委会 (430202001001)
    >>> print(r["reason_zh"].iloc[1])  # doctest: +NORMALIZE_WHITESPACE
    430202001002没有负责路灯损坏的物业、社区居委会、街道办事处;
    最近的主管部门: 区城管局(D-UM, 430202)负责430202001002的路灯损坏
    >>> print(r["reason_en"].iloc[2])  # doctest: +NORMALIZE_WHITESPACE
    no handler: no property company or community committee or township office or bureau
    serves street_light in 430203001001 or above
    """
    rr = rules if isinstance(rules, RoutingRules) else handler_rules(rules).routing
    for col in ("admin_code", "category"):
        if col not in cases:
            raise RoutingError(
                f"cases: no column {col!r}.", hint="route needs admin_code and category."
            )
    area = codes.normalise(
        cases["admin_code"].astype(object).where(cases["admin_code"].notna(), None)
    )
    key = pd.DataFrame(
        {"admin_code": area.to_numpy(), "category": cases["category"].astype(str).to_numpy()}
    )
    pid, pairs_idx = pd.factorize(pd.MultiIndex.from_frame(key.fillna({"admin_code": ""})))
    pairs = pd.DataFrame(list(pairs_idx), columns=["admin_code", "category"])
    pairs["admin_code"] = pairs["admin_code"].replace("", None)
    handlers = _handlers(departments)
    win = _winners(pairs[pairs["admin_code"].notna()], handlers, rr)
    cols = ["department_id", "name", "handler_type", "handler_code", "rank"]
    pairs = pairs.join(win[cols])
    pairs = pairs.astype(object).where(pairs.notna(), None)
    zh, en = _reasons(pairs, rr)
    pairs["reason_zh"], pairs["reason_en"] = zh, en
    pairs["handler_reason"] = [f"{z} / {e}" for z, e in zip(zh, en, strict=True)]
    out = pairs.iloc[pid][
        [
            "department_id",
            "handler_type",
            "handler_code",
            "reason_zh",
            "reason_en",
            "handler_reason",
        ]
    ]
    return out.set_axis(cases.index)


def synthetic_departments(
    admin_codes: Iterable[object],
    *,
    admin_areas: pd.DataFrame | None = None,
    rules: HandlerRules | str | Path | None = None,
) -> pd.DataFrame:
    """Handlers at every level for the areas of ``admin_codes`` (a simulated season's).

    Three district bureaus (``D-WATER`` river categories, ``D-UM`` community ones,
    ``D-ENV`` discharge and sewage), a township office per township (``T`` + code), a
    community committee per village or community (``C`` + code) and a property company
    for every other one (``P`` + code). Each local handler serves the categories whose
    preference in the rules lists its type. Names come from ``admin_areas``
    (``admin_code``, ``name``) when given, else from the codes.

    Parameters
    ----------
    admin_codes
        The areas of the season (units' ``admin_code``), village or township level.
    admin_areas
        Names of the areas (optional).
    rules
        Handler rules (default the packaged ``rules/handlers.toml``).

    Examples
    --------
    >>> d = synthetic_departments(["430202001001", "430202001002", "430202002001"])
    >>> d["handler_type"].value_counts().sort_index().to_dict()
    {'bureau': 3, 'community_committee': 3, 'property_company': 2, 'township_office': 2}
    >>> cases = pd.DataFrame({"admin_code": ["430202001002", "430202001001"],
    ...                       "category": ["street_light", "sand_mining"]})
    >>> route(cases, d)["department_id"].tolist()
    ['C430202001002', 'D-WATER']
    """
    rr = handler_rules(rules).routing
    cats = sorted(set(rr.categories))
    serves = {t: ";".join(c for c in cats if t in rr.preference(c)) for t in HANDLER_TYPES}
    rc = report_rules()
    river = ";".join(k for k, v in rc.categories.items() if v.get("domain") == "river")
    community = ";".join(k for k, v in rc.categories.items() if v.get("domain") == "community")
    area = codes.normalise(pd.Series(list(admin_codes), dtype=object).dropna().astype(str))
    village = pd.Series(sorted(set(codes.ancestor(area, "village").dropna())), dtype=object)
    town = sorted(set(codes.ancestor(area, "township").dropna()))
    county = sorted(set(codes.ancestor(area, "county").dropna()))[:1]
    district = county[0] if county else str(area.iloc[0]) if len(area) else "430202"
    parts = [
        pd.DataFrame(
            {
                "department_id": ["D-WATER", "D-UM", "D-ENV"],
                "name": ["区水利局", "区城管局", "区生态环境分局"],
                "admin_code": district,
                "categories": [river, community, "illegal_discharge;sewage"],
                "handler_type": "bureau",
            }
        )
    ]
    names = (
        admin_areas.set_index(admin_areas["admin_code"].astype(str))["name"]
        .astype(str)
        .str.replace(r"(街道|镇|乡|社区|村)$", "", regex=True)  # 月塘街道 -> 月塘街道办事处
        if admin_areas is not None and "name" in admin_areas
        else pd.Series(dtype=object)
    )
    for prefix, kind, name, where in (
        ("T", "township_office", "街道办事处", pd.Series(town, dtype=object)),
        ("C", "community_committee", "社区居民委员会", village),
        ("P", "property_company", "物业服务有限公司", village.iloc[::2]),
    ):
        where = where.astype(str)
        parts.append(
            pd.DataFrame(
                {
                    "department_id": prefix + where,
                    "name": where.map(names).astype(object).fillna(where) + name,
                    "admin_code": where,
                    "categories": serves[kind],
                    "handler_type": kind,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)
