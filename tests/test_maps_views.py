"""Issue 24, checked as text (the browser checks are in tests/browser/test_maps_*):
category names and symbols from the rules, legends that list only what is drawn,
status colours, choropleths by area, context instead of tiles, maps from raw layers,
review of a draft grid, the viewport index, printing."""

from __future__ import annotations

import json
import re
import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridkit.io import write_layer
from gridkit.maps import (
    Context,
    ViewIndex,
    coverage_map,
    hotspot_map,
    map_html,
    review_flags,
    review_map,
)
from gridkit.maps.areas import aggregate
from gridkit.maps.hotspot import _HOTSPOT_COLORS
from gridkit.maps.symbols import DOMAIN_COLORS, category_styles
from gridkit.ops.reports import report_rules
from gridkit.synth import maps as synth
from gridkit.synth.ops import grid_units, grid_workers

RULES = report_rules().categories


def _text(page: str) -> str:
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)


def _legend(page: str) -> str:
    return re.search(r'<details class="gk-legend".*?</details>', page, re.S).group(0)


def _layer_names(page: str) -> list[str]:
    """Names in the layer control (``"name" : layer_var`` entries of its overlays)."""
    pat = r'"((?:[^"\\]|\\.)*)"\s*:\s*(?:marker_cluster|geo_json|feature_group)_[0-9a-f]+'
    return [_text(n) for n in re.findall(pat, page)]


@pytest.fixture(scope="module")
def river_reports():
    u = synth.units(100)
    r = synth.reports(u, 120)
    keys = ["floating_garbage", "sand_mining", "cctv", "street_light"]
    r["category"] = [keys[i % 4] for i in range(len(r))]
    return u, r


def test_categories_in_the_page_language_from_the_rules(river_reports):
    """The hotspot page showed `cctv`, `floating_garbage` on a Chinese page."""
    u, r = river_reports
    page = map_html(hotspot_map(synth.hotspot_units(u), reports=r, categories=RULES))
    legend, layers = _legend(page), " ".join(_layer_names(page))
    for key, label in (("floating_garbage", "漂浮垃圾"), ("cctv", "监控老旧")):
        assert label in legend and label in layers
        assert key not in legend and key not in layers
    en = map_html(hotspot_map(synth.hotspot_units(u), reports=r, categories=RULES, lang="en"))
    assert "floating garbage" in _legend(en) and "漂浮垃圾" not in _legend(en)


def test_a_category_looks_the_same_on_every_page(river_reports):
    """A category's colour changed between pages (palette by the categories present)."""
    u, r = river_reports
    sym = re.compile(r'<path d="([^"]+)" fill="(#[0-9A-Fa-f]+)"[^>]*/></svg>([^<]+)</div>')
    pages = [
        map_html(hotspot_map(synth.hotspot_units(u), reports=sub, categories=RULES, cluster=False))
        for sub in (r, r[r["category"] != "floating_garbage"], r[r["category"] == "cctv"])
    ]
    seen: dict[str, set] = {}
    for page in pages:
        for d, fill, label in sym.findall(_legend(page)):
            seen.setdefault(label, set()).add((d, fill))
    assert seen["监控老旧"] and all(len(v) == 1 for v in seen.values()), seen
    pairs = {next(iter(v)) for v in seen.values()}
    assert len(pairs) == len(seen)  # no two categories alike


@settings(max_examples=40, deadline=None)
@given(st.sets(st.sampled_from([*sorted(RULES), "oil_spill", "x"]), max_size=8))
def test_styles_do_not_depend_on_the_data(present):
    full = category_styles(RULES)
    some = category_styles(RULES, sorted(present))
    for key in RULES:
        assert some[key] == full[key]
    by_domain: dict[str, list] = {}
    for s in some.values():
        by_domain.setdefault(s.domain, []).append(s.symbol)
    for domain, symbols in by_domain.items():  # a symbol per category within a domain
        if domain != "other":
            assert len(set(symbols)) == len(symbols)


def _rgb(c: str) -> np.ndarray:
    return np.array([int(c[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)


def _deutan(rgb: np.ndarray) -> np.ndarray:
    """Deuteranopia simulation (Viénot, Brettel, Mollon 1999) in linear RGB."""
    lin = (rgb / 255) ** 2.2
    m = np.array([[0.29275, 0.70725, 0], [0.29275, 0.70725, 0], [-0.02234, 0.02234, 1]])
    return (m @ lin) ** (1 / 2.2) * 255


def test_report_markers_are_told_apart_from_hotspot_classes(river_reports):
    """Cluster bubbles (green/yellow/orange) clashed with the red/blue Gi* legend."""
    for marker in (DOMAIN_COLORS["river"], DOMAIN_COLORS["community"]):
        for cls in _HOTSPOT_COLORS.values():
            assert np.linalg.norm(_rgb(marker) - _rgb(cls)) > 60, (marker, cls)
            assert np.linalg.norm(_deutan(_rgb(marker)) - _deutan(_rgb(cls))) > 25, (marker, cls)
    u, r = river_reports
    page = map_html(hotspot_map(synth.hotspot_units(u), reports=r, categories=RULES))
    assert "gk-cluster" in page and "iconCreateFunction" in page
    assert '"collapsed": true' in page  # 17 rows of layers stay folded


def test_legend_lists_only_colours_on_the_map():
    """15 workers listed and '另有 1416 名网格员' in white while those units had
    recycled palette colours."""
    u = synth.units(400)
    a = synth.assignments(u, n_workers=60, unassigned=0.0)
    page = map_html(coverage_map(u, assignments=a, color_by="worker"))
    legend = _legend(page)
    swatches = set(re.findall(r"background:(#[0-9a-fA-F]{6})", legend))
    drawn = set(re.findall(r'"fillColor": "(#[0-9a-fA-F]{6})"', page))
    assert swatches == drawn and "#ffffff" not in swatches
    assert "另有 45 名网格员" in legend
    assert "未分配网格员" not in legend  # none unassigned: nothing to list


def test_coverage_colours_by_status_not_by_person():
    u = synth.units(144)
    a = synth.assignments(u, n_workers=30)
    page = map_html(coverage_map(u, assignments=a))
    drawn = set(re.findall(r'"fillColor": "(#[0-9a-fA-F]{6})"', page))
    assert {"#1a9641", "#7b3294"} <= drawn  # staffed, unassigned
    assert not drawn & {"#1f77b4", "#2ca02c", "#ff7f0e", "#17becf"}  # no colour per person


def test_choropleth_by_village_sums_its_units():
    u = synth.units(300)
    a = synth.assignments(u, n_workers=10, unassigned=0.3)
    staffed = u["unit_id"].isin(a["unit_id"]).astype(int)
    areas = aggregate(u, pd.DataFrame({"staffed": staffed}), "village")
    brute = u.assign(staffed=staffed).groupby("admin_code")["staffed"].agg(["size", "sum"])
    got = areas.set_index("admin_code")[["n_units", "staffed"]]
    assert (got.to_numpy() == brute.loc[got.index].to_numpy()).all()
    merged = shapely.area(areas.geometry.array).sum()
    assert merged == pytest.approx(shapely.area(u.geometry.array).sum(), rel=1e-6)
    page = map_html(coverage_map(u, assignments=a))
    assert '"switch"' not in page  # config is encoded; the areas layer is in the page
    assert "按村(社区)" in _text(page)
    en = _text(map_html(coverage_map(u, assignments=a, lang="en")))
    assert "By village" in en and "<b>Village</b>" in en and "界" not in en


def _workspace(tmp_path):
    u = grid_units(6, 4, river_rows=1, admin_code="430202001001")
    workers, asg = grid_workers(u)
    admin = gpd.GeoDataFrame(
        {"admin_code": ["430202001", "430202001001"], "name": ["建设街道", "建设村"],
         "level": ["township", "village"], "parent_code": ["430202", "430202001"]},
        geometry=[shapely.box(*u.total_bounds).buffer(0.01), shapely.box(*u.total_bounds)],
        crs=4326,
    )  # fmt: skip
    ws = tmp_path / "ws.gpkg"
    for name, df in (("units", u), ("admin_areas", admin), ("workers", workers)):
        write_layer(df, ws, name)
    write_layer(asg, tmp_path / "asg.csv", "assignments")
    return ws, u, workers, asg


def test_cli_map_has_no_tiles_and_draws_the_workspace_context(tmp_path, capsys):
    """`gridkit map` defaulted to --tiles osm: a blank grey page offline."""
    from gridkit.cli.app import main

    ws, *_ = _workspace(tmp_path)
    out = tmp_path / "m.html"
    assert main(["map", f"{ws}:units", "-o", str(out)]) == 0, capsys.readouterr().err
    page = _text(out.read_text(encoding="utf-8"))
    assert "openstreetmap" not in page.lower() and "L.tileLayer" not in page
    assert "建设街道" in page and "乡镇(街道)界" in page
    admin = tmp_path / "admin.geojson"
    write_layer(gpd.read_file(ws, layer="admin_areas"), admin, "admin_areas")
    alone = tmp_path / "units.gpkg"
    write_layer(gpd.read_file(ws, layer="units"), alone, "units")
    assert main(["map", str(alone), "--admin", str(admin), "-o", str(out)]) == 0
    assert "建设村" in _text(out.read_text(encoding="utf-8"))


def _patrols(u, workers):
    """Weekly walks of each worker back and forth across their unit (about 3 km/h, 40
    minutes, a different line each week), March 2026."""
    rows, geoms = [], []
    for k, wid in enumerate(workers["worker_id"]):
        x0, y0, x1, y1 = u.geometry.iloc[k].bounds
        for week in range(5):
            t = pd.Timestamp("2026-03-02T01:00Z") + pd.Timedelta(days=7 * week + k % 3)
            rows.append({"patrol_id": f"P{k}-{week}", "worker_id": wid, "started_at": t,
                         "ended_at": t + pd.Timedelta(minutes=40), "notes": None})  # fmt: skip
            ys = y0 + (y1 - y0) * (np.arange(1, 5) + week / 5) / 6
            west, east = x0 + 1e-4, x1 - 1e-4
            pts = []
            for i, y in enumerate(ys):  # a zigzag: west to east, then back
                pts += [(west, y), (east, y)] if i % 2 == 0 else [(east, y), (west, y)]
            geoms.append(shapely.LineString(pts))
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=4326)


def test_cli_compliance_map_from_raw_patrols(tmp_path, capsys):
    """`gridkit map --kind compliance` wanted a precomputed compliance table."""
    from gridkit.cli.app import main

    ws, u, workers, _asg = _workspace(tmp_path)
    pat = _patrols(u, workers)
    write_layer(pat, tmp_path / "patrols.gpkg", "patrols")
    out = tmp_path / "c.html"
    args = ["map", f"{ws}:units", "--kind", "compliance", "--patrols",
            str(tmp_path / "patrols.gpkg"), "--assignments", str(tmp_path / "asg.csv"),
            "--period", "2026-03", "-o", str(out)]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    page = _text(out.read_text(encoding="utf-8"))
    assert "2026-03" in page and "达标" in page
    assert "#1a9641" in page  # weekly patrols done: compliant units drawn green
    code = main(["map", f"{ws}:units", "--kind", "compliance", "--patrols",
                 str(tmp_path / "patrols.gpkg"), "-o", str(out)])  # fmt: skip
    assert code == 1 and "needs --assignments" in capsys.readouterr().err


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 2.9), st.floats(0, 1.9), st.floats(0.05, 0.6),
                          st.floats(0.05, 0.6)), min_size=1, max_size=12))  # fmt: skip
def test_cut_footprints_match_brute_force(boxes):
    x0, y0, c = 113.0, 27.0, 0.001
    u = gpd.GeoDataFrame(
        {"unit_id": [f"U{i}" for i in range(6)]},
        geometry=[shapely.box(x0 + i * c, y0 + j * c, x0 + (i + 1) * c, y0 + (j + 1) * c)
                  for j in range(2) for i in range(3)],
        crs=4326,
    )  # fmt: skip
    b = gpd.GeoDataFrame(
        geometry=[shapely.box(x0 + x * c, y0 + y * c, x0 + (x + w) * c, y0 + (y + h) * c)
                  for x, y, w, h in boxes], crs=4326,
    )  # fmt: skip
    _flags, cut = review_flags(u, b)
    um, bm = u.to_crs(32649), b.to_crs(32649)
    brute = []
    for g in bm.geometry:
        holders = [ug for ug in um.geometry if g.intersection(ug).area / g.area > 0.02]
        brute.append(len(holders))
    assert len(cut) == sum(n > 1 for n in brute)
    assert sorted(cut["n_units"]) == sorted(n for n in brute if n > 1)


def test_review_map_of_a_draft_grid():
    u = grid_units(5, 4, river_rows=1)
    u.loc[u.index[7], "households"] = 500  # over the cap
    sliver = shapely.box(*u.geometry.iloc[8].bounds[:2], u.geometry.iloc[8].bounds[0] + 1e-4,
                         u.geometry.iloc[8].bounds[1] + 1e-4)  # fmt: skip
    two = shapely.MultiPolygon([u.geometry.iloc[9], shapely.box(113.5, 27.5, 113.501, 27.501)])
    u = u.set_geometry([*u.geometry.iloc[:8], sliver, two, *u.geometry.iloc[10:]], crs=4326)
    workers, asg = grid_workers(u)
    page = _text(map_html(review_map(u, max_households=400, max_length_m=600,
                                     assignments=asg, workers=workers)))  # fmt: skip
    legend = _legend(page)
    assert "超过上限" in legend and "碎片单元 (1)" in legend and "不连续单元 (1)" in legend
    assert "网格员0" in page and "W00000" not in page.replace('"W00000"', "")  # names


def test_view_index_is_bounded_by_the_request():
    u = synth.units(2500)
    ix = ViewIndex.build(u, assignments=synth.assignments(u, n_workers=40))
    b = u.total_bounds
    whole = json.loads(ix.units(tuple(b), 12, limit=100))
    assert whole == {"type": "FeatureCollection", "features": [], "too_many": 2500}
    part = json.loads(ix.units((b[0], b[1], b[0] + 0.004, b[1] + 0.004), 16))
    assert 4 <= len(part["features"]) <= 9
    coarse = len(ix.areas(tuple(b), 8))
    assert coarse <= len(ix.areas(tuple(b), 16))  # simplified more at low zoom
    assert len(ix.search("网格", limit=7)) == 7


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium")
@pytest.mark.parametrize("suffix", [".png", ".pdf"])
def test_print_a4_png_and_pdf(tmp_path, suffix, capsys):
    from gridkit.cli.app import main

    ws, *_ = _workspace(tmp_path)
    out = tmp_path / f"m{suffix}"
    assert main(["map", f"{ws}:units", "--paper", "A4", "-o", str(out)]) == 0
    data = out.read_bytes()
    if suffix == ".png":
        image = pytest.importorskip("PIL.Image")
        assert data.startswith(b"\x89PNG")
        assert image.open(out).size == (2246, 1588)  # A4 landscape, twice 96 dpi
    else:
        assert data.startswith(b"%PDF") and b"/MediaBox" in data


def test_context_layers_from_a_workspace():
    admin = gpd.GeoDataFrame({"level": ["village"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326)
    ws_layers = {"admin_areas": admin}
    assert Context.from_layers(ws_layers).levels() == ["village"]


def test_areas_of_overlapping_units_merge():
    """A river corridor over community grids is no coverage: the demo's map failed with
    'CoverageUnion cannot process overlapping inputs'."""
    u = gpd.GeoDataFrame(
        {"admin_code": ["430202001001"] * 3},
        geometry=[shapely.box(0, 0, 2, 2), shapely.box(1, 1, 3, 3), shapely.box(2, 0, 3, 1)],
        crs=4326,
    )
    a = aggregate(u, pd.DataFrame({"x": [1, 1, 1]}), "village")
    assert shapely.area(a.geometry.array)[0] == pytest.approx(8.0)


# ------------------------------------------------------ /maps/view: the views' classes

_per_unit = st.lists(
    st.tuples(
        st.integers(-1, 3),
        st.integers(0, 9),
        st.integers(0, 12),
        st.integers(0, 3),
        st.integers(0, 2),
        st.sampled_from([0, 150, 400]),
        st.sampled_from([0.0, 1.5]),
    ),
    min_size=1,
    max_size=40,
)  # fmt: skip  (area, required, done, open, overdue of them, households, km)


@settings(max_examples=60, deadline=None)
@given(_per_unit)
def test_view_classes_match_brute_force(rows):
    from gridkit.maps.views import cases_theme, compliance_theme

    ids = pd.Series([f"U{i}" for i in range(len(rows))])
    area_of = np.array([r[0] for r in rows])
    comp = pd.DataFrame({"unit_id": ids, "required": [r[1] for r in rows],
                         "done": [r[2] for r in rows]})  # fmt: skip
    cases = pd.DataFrame(
        [(f"U{i}", k < min(r[4], r[3])) for i, r in enumerate(rows) for k in range(r[3])],
        columns=["unit_id", "overdue"],
    )
    sizes = pd.DataFrame({"households": [r[5] for r in rows], "km": [r[6] for r in rows]})
    t = compliance_theme(ids, comp, area_of, 4)
    c = cases_theme(ids, cases, sizes, area_of, 4)

    def done_cls(q, d):
        return "no_data" if q <= 0 else "full" if d >= q else "partial" if d >= q / 2 else "low"

    def rate_cls(x):
        return ("rate_none" if not x or x != x or x <= 0 else "rate_low" if x < 2
                else "rate_mid" if x < 5 else "rate_high")  # fmt: skip

    order = ["rate_none", "rate_low", "rate_mid", "rate_high"]
    for i, (_, q, d, o, late, _hh, _km) in enumerate(rows):
        assert t.unit_class[i] == done_cls(q, min(q, d))
        late = min(late, o)
        assert c.unit_class[i] == ("case_overdue" if late else "case_open" if o else "case_none")
    for a in range(4):
        mine = [r for r in rows if r[0] == a]
        q = sum(r[1] for r in mine)
        d = sum(min(r[1], r[2]) for r in mine)
        got = t.area_values.iloc[a]
        assert (got["required"], got["done"], got["c"]) == (q, d, done_cls(q, d))
        hh = sum(r[5] for r in mine)
        km = sum(r[6] for r in mine if r[5] == 0)
        open_hh = sum(r[3] for r in mine if r[5] > 0)
        open_km = sum(r[3] for r in mine if r[5] == 0)
        r_hh = round(open_hh / (hh / 1000), 2) if hh else None
        r_km = round(open_km / km, 2) if km else None
        want = max(order.index(rate_cls(r_hh)), order.index(rate_cls(r_km)))
        got = c.area_values.iloc[a]
        assert got["open"] == sum(r[3] for r in mine)
        assert got["late"] == sum(min(r[4], r[3]) for r in mine)
        assert got["c"] == order[want], (mine, got.to_dict())


def test_view_pages_legend_lists_each_views_classes_in_its_language():
    from gridkit.maps import viewport_page
    from gridkit.maps.views import VIEWS

    ov = {"bounds": [[27.8, 113.1], [27.9, 113.2]], "switch": 14, "level": "village"}
    for view, classes in VIEWS.items():
        for lang in ("zh", "en"):
            page = viewport_page(base_url="/maps/data/", overview=ov, lang=lang, view=view)
            legend = _legend(page)
            for part, colours in classes.items():
                section = re.search(f'<section data-view="{part}">.*?</section>', legend).group(0)
                assert re.findall(r'data-k="([^"]+)"', section) == list(colours)
                assert re.findall(r"background:(#[0-9a-f]{6})", section) == list(colours.values())
            words = re.sub(r"<[^>]+>", " ", legend)
            if lang == "zh":
                assert not re.findall(r"[A-Za-z]{3,}", words), words
            else:
                assert not re.findall(r"[\u4e00-\u9fff]", words), words
    with pytest.raises(Exception, match="Unknown map view"):
        viewport_page(base_url="/d/", overview=ov, view="heat")


def test_view_palettes_are_colour_blind_safe():
    """No view pairs red with green; each view's classes differ in lightness enough to be
    told apart in greyscale (what a deuteranope or a photocopy still sees)."""
    from gridkit.maps.views import VIEWS

    def lightness(c):
        r, g, b = (int(c[i : i + 2], 16) / 255 for i in (1, 3, 5))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    for view, parts in VIEWS.items():
        for part, colours in parts.items():
            values = sorted(lightness(c) for c in colours.values())
            gaps = np.diff(values)
            assert (gaps > 0.05).all(), (view, part, colours)
