"""River chiefs' compliance: ``gridkit.ops.chiefs.chief_compliance`` side by side with a
plain geopandas implementation (sjoin + intersection lengths + groupby per period).

10^4 chiefs (village, township, county and city sections of 300 straight rivers, plus
general chiefs of the counties) x one year of patrols (~4 x 10^5 patrols, ~10^6 GPS
fixes; quick: 30 rivers, a quarter). Both sides answer the same question: a patrol
counts for a section when its track within ``tolerance_m`` of the section's units
covers the level's share of the section's length; each rule of the level is met
window by window over the calendar periods of 2026 in Asia/Shanghai. The check
compares the ``compliant`` flag of every (chief, rule).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from benchmarks._runner import Case
from gridkit.ops.chiefs import chief_compliance
from gridkit.ops.patrols import load_patrol_rules

RULES = load_patrol_rules()
_UNIT_DEG = 0.01  # ~1 km of river per unit
_SECTION = {"village": 4, "township": 20, "county": 50, "city": 100}  # units per section
_PER_YEAR = {"village": 52, "township": 12, "county": 4, "city": 3, "general": 1}


def _layers(n_rivers: int, seed: int = 7):
    """Straight rivers of 100 units; admin codes nest village < township < county."""
    n_units = 100
    r = np.repeat(np.arange(n_rivers), n_units)
    k = np.tile(np.arange(n_units), n_rivers)
    x0 = 112.0 + k * _UNIT_DEG
    y0 = 26.0 + r * 0.02
    # two counties per river, 90 counties per city: codes valid for gridkit.codes
    ci = 2 * r + k // 50
    county = 430000 + (ci // 90 + 1) * 100 + ci % 90 + 1
    town = k // 20 + 1
    village = k // 4 + 1
    codes = np.char.add(
        np.char.add(county.astype(str), np.char.zfill(town.astype(str), 3)),
        np.char.zfill(village.astype(str), 3),
    )
    units = gpd.GeoDataFrame(
        {
            "unit_id": np.char.add(np.char.add(codes, "-"), k.astype(str)),
            "kind": "river_reach",
            "parent_id": np.char.add("R", r.astype(str)),
            "admin_code": codes,
            "length_m": 990.0,
        },
        geometry=shapely.box(x0, y0 - 0.0005, x0 + _UNIT_DEG, y0 + 0.0005),
        crs=4326,
    )
    rows = []
    for level, size in _SECTION.items():
        start = np.arange(0, n_units, size)
        for rv in range(n_rivers):
            for s in start:
                code = units["admin_code"].iloc[rv * n_units + s]
                cut = {"village": 12, "township": 9, "county": 6, "city": 4}[level]
                area = code[:cut].ljust(6, "0")
                rows.append((level, f"R{rv}", area, rv, s, size))
    ch = pd.DataFrame(rows, columns=["level", "river_id", "admin_code", "rv", "s", "size"])
    counties = ch[ch["level"] == "county"]
    gen = counties.assign(level="general", river_id=None)
    ch = pd.concat([ch, gen], ignore_index=True)
    ch["chief_id"] = [f"C{i:06d}" for i in range(len(ch))]
    ch["worker_id"] = "W" + ch["chief_id"]
    return units, ch, seed


def _patrols(units, ch, n_days: int, seed: int):
    """Patrols of each chief at the level's yearly rate (some missed), each a track
    of fixes along a run of its section's units, 10 m off the centreline."""
    rng = np.random.default_rng(seed)
    rate = ch["level"].map(_PER_YEAR).to_numpy() * n_days / 365
    n = rng.poisson(rate * 0.95)
    who = np.repeat(np.arange(len(ch)), n)
    start = pd.Timestamp("2026-01-01T00:00", tz="Asia/Shanghai").value + (
        rng.random(len(who)) * n_days * 86400e9
    ).astype(np.int64)
    c = ch.iloc[who]
    run = np.maximum(np.ceil(c["size"].to_numpy() * 0.6), 2).astype(int)
    first = c["s"].to_numpy() + (rng.random(len(who)) * (c["size"].to_numpy() - run + 1)).astype(
        int
    )
    x_a = 112.0 + first * _UNIT_DEG
    x_b = x_a + run * _UNIT_DEG
    y = 26.0 + c["rv"].to_numpy() * 0.02 + 0.0001
    n_fix = np.clip((run * 0.75).astype(int) + 1, 2, 40)
    p = np.repeat(np.arange(len(who)), n_fix)
    j = np.arange(n_fix.sum()) - np.repeat(np.cumsum(n_fix) - n_fix, n_fix)
    f = j / (n_fix[p] - 1)
    xs = x_a[p] + f * (x_b[p] - x_a[p])
    tracks = shapely.linestrings(np.c_[xs, y[p]], indices=p)
    minutes = run * 15.0  # 4 km/h
    patrols = gpd.GeoDataFrame(
        {
            "patrol_id": [f"P{i:07d}" for i in range(len(who))],
            "worker_id": c["worker_id"].to_numpy(),
            "started_at": pd.to_datetime(start, utc=True),
            "ended_at": pd.to_datetime(start + (minutes * 60e9).astype(np.int64), utc=True),
            "valid": True,  # both sides judge coverage, not plausibility
        },
        geometry=tracks,
        crs=4326,
    )
    return patrols, int(n_fix.sum())


def _data(n_rivers: int, n_days: int):
    units, ch, seed = _layers(n_rivers)
    patrols, n_fixes = _patrols(units, ch, n_days, seed)
    chiefs = ch[["chief_id", "worker_id", "level", "river_id", "admin_code"]]
    period = "2026" if n_days >= 365 else "2026-Q1"
    return units, chiefs, patrols, period, n_fixes


def _ours(data):
    units, chiefs, patrols, period, _ = data
    c = chief_compliance(patrols, chiefs, units, period, rules=RULES)
    return c.set_index(["chief_id", "rule"])["compliant"]


# --------------------------------------------------------------------------- the peer


def _peer_sections(units: pd.DataFrame, chiefs: pd.DataFrame) -> pd.DataFrame:
    """(chief, unit) of each section, by string prefixes of the admin codes."""
    u = pd.DataFrame(units.drop(columns="geometry"))
    parts = []
    for level, cut in (("city", 4), ("county", 6), ("township", 9), ("village", 12)):
        sel = chiefs[chiefs["level"] == level]
        sel = sel.assign(area=sel["admin_code"].str[:cut])
        uu = u.assign(area=u["admin_code"].str[:cut])
        parts.append(sel.merge(uu, left_on=["river_id", "area"], right_on=["parent_id", "area"]))
    general = chiefs[chiefs["level"] == "general"]
    general = general.assign(area=general["admin_code"])
    parts.append(general.merge(u.assign(area=u["admin_code"].str[:6]), on="area"))
    cols = ["chief_id", "worker_id", "level", "unit_id", "parent_id", "length_m"]
    return pd.concat([p[cols] for p in parts], ignore_index=True)


def _peer(data):
    units, chiefs, patrols, period, _ = data
    tol = RULES.tolerance_m
    metric = 32649
    um = units.to_crs(metric)
    corridor = gpd.GeoDataFrame(
        {"unit_id": um["unit_id"].to_numpy()}, geometry=um.buffer(tol).to_numpy(), crs=metric
    )
    pm = patrols.to_crs(metric)
    pairs = gpd.sjoin(pm[["patrol_id", "worker_id", "geometry"]], corridor, predicate="intersects")
    sec = _peer_sections(units, chiefs)
    pairs = pairs.merge(sec, on=["worker_id", "unit_id"])
    tracks = pm.set_index("patrol_id").geometry.loc[pairs["patrol_id"]].reset_index(drop=True)
    polys = corridor.set_index("unit_id").geometry.loc[pairs["unit_id"]].reset_index(drop=True)
    inside = tracks.intersection(polys, align=False)
    pairs["covered"] = np.minimum(inside.length.to_numpy() / pairs["length_m"], 1.0)
    pairs["covered"] *= pairs["length_m"]
    total = sec.groupby(["chief_id", "parent_id"])["length_m"].sum()
    got = pairs.groupby(["patrol_id", "chief_id", "parent_id", "level"], as_index=False)[
        "covered"
    ].sum()
    got["share"] = (
        got["covered"] / total.loc[list(zip(got["chief_id"], got["parent_id"], strict=True))].values
    )
    got = got[got["share"] >= got["level"].map(RULES.section_share) - 1e-9]
    got = got.drop_duplicates(["patrol_id", "chief_id"])
    t = patrols.set_index("patrol_id")["started_at"].loc[got["patrol_id"]]
    got["local"] = t.dt.tz_convert(RULES.timezone).dt.tz_localize(None).to_numpy()
    return _peer_windows(got, chiefs, period)


def _peer_windows(got: pd.DataFrame, chiefs: pd.DataFrame, period: str) -> pd.Series:
    """Windows met per (chief, rule): groupby on pandas periods."""
    year = period == "2026"
    out = []
    for level, rules in RULES.frequency.items():
        ch = chiefs[chiefs["level"] == level]
        if not len(ch):
            continue
        mine = got[got["level"] == level]
        for rule in rules:
            per, count = rule["per"], int(rule["count"])
            if per in ("half", "year") and not year:
                continue
            if per == "week":
                mondays = pd.date_range("2025-12-29", "2027-01-04", freq="W-MON")
                lo = pd.Timestamp("2026-01-01")
                hi = pd.Timestamp("2027-01-01") if year else pd.Timestamp("2026-04-01")
                mondays = mondays[(mondays >= lo) & (mondays < hi)]
                win = mine["local"].dt.to_period("W-SUN").dt.start_time
                n_win = len(mondays)
                ok = win.isin(mondays)
            else:
                freq = {"month": "M", "quarter": "Q", "half": "6M", "year": "Y"}[per]
                if per == "half":
                    win = mine["local"].dt.year * 2 + (mine["local"].dt.month > 6)
                else:
                    win = mine["local"].dt.to_period(freq)
                n_win = (
                    {"month": 12, "quarter": 4, "half": 2, "year": 1}[per]
                    if year
                    else {
                        "month": 3,
                        "quarter": 1,
                    }[per]
                )
                ok = pd.Series(True, index=mine.index)
            counts = mine[ok.to_numpy()].groupby([mine["chief_id"][ok.to_numpy()], win[ok]]).size()
            met = (counts >= count).groupby(level=0).sum()
            label = f"{count}/{per}"
            out.append(
                pd.Series(
                    ch["chief_id"].map(met).fillna(0).to_numpy() == n_win,
                    index=pd.MultiIndex.from_arrays([ch["chief_id"], [label] * len(ch)]),
                )
            )
    return pd.concat(out)


def cases(quick: bool) -> list[Case]:
    n_rivers, n_days = (30, 90) if quick else (300, 365)

    def same(a, b):
        b = b.reindex(a.index)
        diff = int((a.to_numpy() != b.to_numpy()).sum())
        return {"mismatched_chief_rules": diff, "of": len(a)} if diff else None

    def size_of(data):
        _, chiefs, patrols, _, n_fixes = data
        return {"chiefs": len(chiefs), "patrols": len(patrols), "fixes": n_fixes}

    def setup():
        return _data(n_rivers, n_days)

    chiefs_n = n_rivers * (25 + 5 + 2 + 1 + 2)
    return [
        Case(
            f"chief compliance, {chiefs_n:.0e} chiefs x {n_days} days",
            setup,
            _ours,
            _peer,
            peer_name="geopandas sjoin + intersection + groupby per period",
            size={"chiefs": chiefs_n, "days": n_days},
            check=same,
            repeat=1,
            extra=lambda data, _out: size_of(data),
        )
    ]
