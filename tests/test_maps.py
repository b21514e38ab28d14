"""Maps checked as text: assets, escaping, datum shift, rounding, size, labels, CLI.

Rendering in a real browser is in ``tests/browser/test_maps_browser.py``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from gridkit.errors import GridkitError, InvalidLayerError
from gridkit.maps import (
    MapOptions,
    UnknownOptionError,
    compliance_map,
    coverage_map,
    diff_map,
    hotspot_map,
    map_html,
    offline_assets,
)
from gridkit.ops.locate import locate
from gridkit.synth import maps as synth

PAYLOADS = (
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    '"><svg onload=alert(1)>',
)
INLINED = re.compile(r"<(script|style)>/\* [\w.]+ \*/.*?</\1>", re.S)


def _text(page: str) -> str:
    """The page with JSON \\uXXXX escapes decoded (folium writes JSON as ASCII)."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)


REMOTE = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.I)


@pytest.fixture(scope="module")
def units():
    return synth.units(64)


@pytest.fixture(scope="module")
def assignments(units):
    return synth.assignments(units, n_workers=5)


@pytest.fixture(scope="module")
def compliance(assignments):
    return synth.compliance(assignments)


@pytest.fixture(scope="module")
def reports(units):
    return synth.reports(units, 40)


def _all_maps(units, assignments, compliance, reports, **kw):
    hot = synth.hotspot_units(units)
    new = units.iloc[4:].copy()
    lineage = pd.DataFrame(
        {
            "old_id": list(units["unit_id"].iloc[:4]) + list(units["unit_id"].iloc[4:]),
            "new_id": [None] * 4 + list(new["unit_id"]),
            "relation": ["removed"] * 4 + ["unchanged"] * len(new),
            "share": [None] * 4 + [1.0] * len(new),
        }
    )
    return {
        "coverage": coverage_map(units, assignments=assignments, reports=reports, **kw),
        "recency": coverage_map(units, compliance=compliance, reports=reports, **kw),
        "compliance": compliance_map(units, compliance, level="village", **kw),
        "hotspots": hotspot_map(hot, reports=reports, **kw),
        "diff": diff_map(units, new, lineage, **kw),
    }


def test_offline_pages_load_nothing_remote(units, assignments, compliance, reports):
    for kind, m in _all_maps(
        units, assignments, compliance, reports, offline=True, tiles=None
    ).items():
        page = map_html(m)
        assert not REMOTE.search(page), kind
        for host in ("cdn.jsdelivr", "cdnjs", "code.jquery", "bootstrapcdn"):
            assert host not in page, kind
        assert "L.map(" in page and "leaflet" in page.lower()


def test_offline_page_with_tile_url_has_only_the_tile_url(units, assignments):
    url = "http://tiles.intranet.local/{z}/{x}/{y}.png"
    page = map_html(coverage_map(units, assignments=assignments, offline=True, tiles=url))
    assert not REMOTE.search(page)
    hosts = set(re.findall(r"https?://[^\s\"'<>\\]+", INLINED.sub("", page)))
    assert hosts == {url}


def test_pages_are_offline_by_default(units, assignments):
    page = map_html(coverage_map(units, assignments=assignments, tiles=None))
    assert not re.findall(r"<(?:script|link)\b[^>]*\b(?:src|href)=\"https?://", page)


def test_online_page_loads_only_leaflet(units, assignments):
    page = map_html(coverage_map(units, assignments=assignments, offline=False))
    links = re.findall(r"<(?:script|link)\b[^>]*\b(?:src|href)=\"([^\"]+)\"", page)
    assert links and all("leaflet" in u for u in links)
    for unwanted in ("bootstrap", "jquery", "fontawesome", "awesome-markers", "d3"):
        assert unwanted not in " ".join(links).lower()


def test_asset_base_url_references_served_files(units, assignments):
    page = map_html(
        coverage_map(
            units, assignments=assignments, offline=True, tiles=None, asset_base_url="/static/gk"
        )
    )
    assert '<script src="/static/gk/leaflet.js">' in page
    assert 'href="/static/gk/leaflet.css"' in page
    assert not REMOTE.search(page)


def test_offline_assets_are_local_files():
    assets = offline_assets()
    assert {"leaflet.js", "leaflet.css", "images/layers.png"} <= set(assets)
    assert all(p.is_file() for p in assets.values())


def _payload_layers(units, reports):
    u = units.copy()
    u.loc[u.index[0], "unit_id"] = PAYLOADS[0]
    a = pd.DataFrame({"unit_id": u["unit_id"].iloc[:10], "worker_id": PAYLOADS[1]})
    workers = pd.DataFrame({"worker_id": [PAYLOADS[1]], "name": [PAYLOADS[2]]})
    r = reports.copy()
    r["description"] = [PAYLOADS[i % 3] for i in range(len(r))]
    r["category"] = [PAYLOADS[i % 3] for i in range(len(r))]
    r["report_id"] = [f"{PAYLOADS[0]}{i}" for i in range(len(r))]
    r["status"] = "reported"
    r["unit_id"] = u["unit_id"].iloc[0]
    return u, a, workers, r


def _assert_escaped(page: str) -> None:
    # neither raw in the HTML nor in JSON that Leaflet would give to innerHTML
    text = _text(page)
    for p in PAYLOADS:
        assert p not in text
    assert "<img src=x" not in text and "<svg onload" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_user_strings_are_escaped_everywhere(units, reports):
    u, a, workers, r = _payload_layers(units, reports)
    kw = dict(offline=True, tiles=None, title=PAYLOADS[1], period=PAYLOADS[0])
    pages = [
        coverage_map(u, assignments=a, workers=workers, reports=r, **kw),
        hotspot_map(synth.hotspot_units(u), reports=r, cluster=False, **kw),
        hotspot_map(synth.hotspot_units(u), reports=r, cluster=True, **kw),
        compliance_map(u, synth.compliance(a), workers=workers, **kw),
        coverage_map(u, assignments=a, tiles="http://t/{z}/{x}/{y}.png", tiles_attr=PAYLOADS[1]),
    ]
    for m in pages:
        _assert_escaped(map_html(m))


def test_gcj02_tiles_shift_the_data(units, assignments):
    def first_x(page: str) -> float:
        return float(re.search(r'"coordinates": \[\[\[(\d+\.\d+)', page).group(1))

    wgs = first_x(map_html(coverage_map(units, assignments=assignments, tiles=None)))
    gcj = first_x(
        map_html(coverage_map(units, assignments=assignments, tiles=None, tiles_datum="gcj02"))
    )
    assert 0.003 < gcj - wgs < 0.008  # a few hundred metres east near Zhuzhou
    with pytest.raises(GridkitError, match="tiles_datum"):
        coverage_map(units, tiles_datum="bd09")


def test_coordinates_rounded_and_simplified(units, assignments):
    page = map_html(coverage_map(units, assignments=assignments, tiles=None, precision=4))
    coords = re.findall(r"\b1\d\d\.(\d+)|\b2\d\.(\d+)", page.split('"coordinates"', 1)[1][:5000])
    assert coords and all(len(a or b) <= 4 for a, b in coords)
    wavy = units.copy()
    wavy.geometry = wavy.geometry.segmentize(0.0001)
    # online pages: the inlined Leaflet would only dilute the comparison
    full = len(map_html(coverage_map(wavy, tiles=None, offline=False)))
    simple = len(map_html(coverage_map(wavy, tiles=None, simplify_m=5, offline=False)))
    assert simple < full * 0.6


def test_labels_follow_language(units, assignments):
    zh = map_html(coverage_map(units, assignments=assignments, tiles=None))
    en = map_html(coverage_map(units, assignments=assignments, tiles=None, lang="en"))
    assert "网格覆盖" in zh and "未分配网格员" in zh
    assert "Grid coverage" in en and "No grid worker" in en and "网格覆盖" not in en
    with pytest.raises(GridkitError, match="language"):
        coverage_map(units, lang="fr")


def test_every_map_has_legend_scale_layer_control_and_bounds(
    units, assignments, compliance, reports
):
    for kind, m in _all_maps(units, assignments, compliance, reports, tiles=None).items():
        page = map_html(m)
        assert 'class="gk-legend"' in page, kind
        assert 'class="gk-title"' in page, kind
        assert "L.control.scale()" in page, kind
        assert "L.control.layers(" in page, kind
        assert ".fitBounds(" in page, kind
        assert "branca" not in page and "d3.min.js" not in page


def test_coverage_colours_unassigned_and_recency(units, assignments, compliance):
    m = coverage_map(units, compliance=compliance, assignments=assignments, tiles=None)
    page = map_html(m)
    n_unassigned = len(units) - assignments["unit_id"].nunique()
    assert f"未分配网格员 ({n_unassigned})" in page
    for colour in ("#1a9641", "#fdae61", "#d7191c", "#7b3294"):
        assert colour in page
    with pytest.raises(GridkitError, match="compliance"):
        coverage_map(units, color_by="recency")


def test_popups_list_open_reports_only(units, reports):
    r = reports.copy()
    r["unit_id"] = units["unit_id"].iloc[0]
    r["status"] = ["closed"] + ["reported"] * (len(r) - 1)
    r["description"] = [f"desc-{i}" for i in range(len(r))]
    r.loc[r.index[1], "geometry"] = units.geometry.iloc[0].centroid
    # maps take joined data: a report is placed in its unit by gridkit.locate
    r.loc[r.index[1], "unit_id"] = locate(r.iloc[[1]].drop(columns="unit_id"), units)[
        "unit_id"
    ].iloc[0]
    page = _text(map_html(coverage_map(units, reports=r, tiles=None)))
    assert "desc-0" not in page  # closed
    assert any(f"desc-{i}" in page for i in range(1, len(r)))
    assert f"({len(r) - 1})" in page
    assert "另有" in page  # more than 10 open reports are summarised


def test_popups_need_reports_joined_to_units(units, reports):
    with pytest.raises(InvalidLayerError, match="unit_id") as err:
        coverage_map(units, reports=reports.drop(columns="unit_id"), tiles=None)
    assert "gridkit.locate" in err.value.hint


def test_hotspot_map_one_layer_per_category(units, reports):
    hot = synth.hotspot_units(units)
    page = _text(map_html(hotspot_map(hot, reports=reports, tiles=None, cluster=False)))
    for cat in reports["category"].unique():
        assert f"问题上报 · {cat}" in page
    clustered = map_html(hotspot_map(hot, reports=reports, tiles=None, offline=True))
    assert "L.markerClusterGroup" in clustered and not REMOTE.search(clustered)
    bad = hot.copy()
    bad["hotspot"] = "very hot"
    with pytest.raises(InvalidLayerError, match="very hot"):
        hotspot_map(bad)


def test_diff_map_highlights_changes(units):
    old = units.iloc[:10]
    new = units.iloc[2:12]
    ids_old, ids_new = list(old["unit_id"]), list(new["unit_id"])
    lineage = pd.DataFrame(
        {
            "old_id": [ids_old[0], ids_old[1], *ids_old[2:], None, None],
            "new_id": [None, None, *ids_new[:8], *ids_new[8:]],
            "relation": ["removed", "removed"] + ["unchanged"] * 7 + ["split", "added", "added"],
            "share": np.nan,
        }
    )
    page = map_html(diff_map(old, new, lineage, tiles=None, lang="en"))
    assert "Removed (2)" in page and "Added (2)" in page and "Split (1)" in page


def test_compliance_filters_level(units, assignments, compliance):
    c = pd.concat([compliance, compliance.assign(level="county", done=0)])
    page_v = map_html(compliance_map(units, c, level="village", tiles=None))
    page_c = map_html(compliance_map(units, c, level="county", tiles=None))
    assert page_v != page_c and "层级: county" in page_c
    with pytest.raises(InvalidLayerError, match="required"):
        compliance_map(units, compliance.drop(columns="required"))


def test_5000_units_under_5_mb():
    u = synth.units(5000)
    a = synth.assignments(u, n_workers=400)
    page = map_html(coverage_map(u, assignments=a, compliance=synth.compliance(a), offline=True))
    size = len(page.encode("utf-8"))
    assert size < 5 * 2**20, size
    assert 'preferCanvas": true' in page or "prefer_canvas" not in page


def test_cli_map_command(tmp_path, units, assignments, compliance):
    import typer
    from typer.testing import CliRunner

    from gridkit.cli.maps import map_cmd
    from gridkit.io import write_layer

    app = typer.Typer()
    app.command()(map_cmd)
    src = tmp_path / "ws.gpkg"
    write_layer(units, src, "units")
    comp = tmp_path / "compliance.csv"
    compliance.to_csv(comp, index=False)
    out = tmp_path / "map.html"
    args = [str(src), "--patrols", str(comp), "--offline", "--tiles", "none", "-o", str(out)]
    res = CliRunner().invoke(app, [*args, "--kind", "compliance", "--lang", "en"])
    assert res.exit_code == 0, res.output
    assert "MB" in res.output
    page = out.read_text(encoding="utf-8")
    assert "Patrol compliance" in page and not REMOTE.search(page)


@pytest.mark.parametrize("missing", ["folium", "xstatic.pkg.leaflet"])
def test_cli_map_names_the_extra_when_missing(tmp_path, units, monkeypatch, capsys, missing):
    import sys

    from gridkit.cli.app import main
    from gridkit.io import write_layer

    src = write_layer(units, tmp_path / "ws.gpkg", "units")
    monkeypatch.setitem(sys.modules, missing, None)  # the import fails as if not installed
    code = main(["map", str(src), "-o", str(tmp_path / "map.html")])
    err = capsys.readouterr().err
    assert code == 1
    assert "needs the 'maps' extra" in err and 'pip install "gridkit[maps]"' in err
    assert "Traceback" not in err
    assert not (tmp_path / "map.html").exists()


def test_map_options_object_and_keyword_overrides(units, assignments):
    options = MapOptions(lang="en", tiles=None, title="Zhuzhou")
    page = map_html(coverage_map(units, assignments=assignments, options=options))
    assert "Zhuzhou" in page and "No grid worker" in page
    # a keyword overrides the object, for the callers written before it
    zh = map_html(coverage_map(units, assignments=assignments, options=options, lang="zh"))
    assert "未分配网格员" in zh and "Zhuzhou" in zh
    with pytest.raises(UnknownOptionError, match="colour"):
        coverage_map(units, options=options, colour="red")
    with pytest.raises(TypeError):  # still a TypeError, as for any unknown keyword
        hotspot_map(synth.hotspot_units(units), titel="x")


def test_cli_hotspot_map_from_raw_units_and_reports(tmp_path, units, reports, capsys):
    """`gridkit map UNITS --reports R --kind hotspots` on units as split (no hotspot
    column) computes Gi* first; it answered `missing column 'hotspot'`. Without
    reports it says what to pass."""
    from gridkit.cli.app import main
    from gridkit.io import write_layer
    from gridkit.maps.labels import labels
    from gridkit.ops import hotspots

    src = write_layer(units.drop(columns="hotspot", errors="ignore"), tmp_path / "ws.gpkg", "units")
    rep = write_layer(reports, tmp_path / "reports.gpkg", "reports")
    out = tmp_path / "hot.html"
    code = main(["map", str(src), "--reports", str(rep), "--kind", "hotspots", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    page = out.read_text(encoding="utf-8")
    hot = set(hotspots(reports, units)["hotspot"]) - {"not significant"}
    assert hot and all(labels("zh")[c] in page for c in hot)  # as the function finds them
    code = main(["map", str(src), "--kind", "hotspots", "-o", str(tmp_path / "none.html")])
    err = capsys.readouterr().err
    assert code == 1 and "--kind hotspots needs --reports" in err
    assert not (tmp_path / "none.html").exists()
