"""Users' files as they come (issue 18, items 3-5): nullable columns, --layer,
--columns, CSV/XLSX point tables, GBK Shapefiles, tables out as CSV/XLSX."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
import typer
from hypothesis import given, settings
from hypothesis import strategies as st

from gridkit.cli import main
from gridkit.crs import wgs84_to_gcj02
from gridkit.errors import (
    GridkitError,
    GridkitWarning,
    InputFileError,
    InvalidLayerError,
    LayerNotFoundError,
)
from gridkit.io import (
    ColumnMap,
    read_input,
    read_layer,
    read_table,
    write_layer,
    write_layers,
    write_table,
)
from gridkit.synth.ops import grid_units


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


# ---------------------------------------------------------------- files like real exports

#: WGS84 truth of three hotline reports in Hetang district (Zhuzhou)
TRUTH = np.array([[113.1601, 27.8602], [113.1702, 27.8655], [113.1505, 27.8551]])


def _hotline_csv(path: Path, *, encoding: str = "utf-8-sig") -> Path:
    """A 12345 hotline export: GCJ-02 lon/lat, Chinese text, only the columns it has."""
    lon, lat = wgs84_to_gcj02(TRUTH[:, 0], TRUTH[:, 1])
    df = pd.DataFrame(
        {
            "report_id": ["RX-001", "RX-002", "RX-003"],
            "category": ["floating_garbage", "sewage", "floating_garbage"],
            "description": ["河面漂浮垃圾,靠近桥墩", "排污口冒黑水", None],
            "source": ["hotline"] * 3,
            "status": ["reported", "reported", "assigned"],
            "unit_id": [None, None, None],
            "reported_at": ["2026-05-01 08:30:00+08:00", "2026-05-02 09:00", "2026/05/03 10:15"],
            "lon": lon,
            "lat": lat,
        }
    )
    df.to_csv(path, index=False, encoding=encoding)
    return path


def _hotline_reports_7_columns() -> gpd.GeoDataFrame:
    t = pd.Timestamp("2026-05-01T08:30:00Z")
    return gpd.GeoDataFrame(
        {
            "report_id": ["R1", "R2"],
            "category": ["floating_garbage", "sewage"],
            "description": ["河面漂浮垃圾", None],
            "source": ["hotline", "hotline"],
            "status": ["reported", "reported"],
            "unit_id": [None, None],
            "reported_at": [t, t + pd.Timedelta("1h")],
        },
        geometry=[shapely.Point(113.05, 27.85), shapely.Point(113.06, 27.86)],
        crs=4326,
    )


def _gbk_admin_shapefile(path: Path) -> Path:
    """A county GIS export: Chinese column names, Chinese coded levels, GBK, no .cpg."""
    square = shapely.box(113.0, 27.8, 113.1, 27.9)
    df = gpd.GeoDataFrame(
        {
            "行政代码": ["430202", "430202001", "430202001001"],
            "名称": ["荷塘区", "月塘街道", "建设村"],
            "级别": ["区县", "乡镇", "村"],
            "上级代码": ["430200", "430202", "430202001"],
        },
        geometry=[square, square.buffer(-0.01), square.buffer(-0.02)],
        crs=4326,
    )
    pyogrio.write_dataframe(df, path, encoding="gbk")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    return path


MAPPING_TOML = """\
# 区县 GIS export -> gridkit admin_areas
[columns]
行政代码 = "admin_code"
名称 = "name"
级别 = "level"
上级代码 = "parent_code"

[values.level]
区县 = "county"
乡镇 = "township"
村 = "village"
"""


# ---------------------------------------------------------------- item 3: nullable columns


def test_absent_nullable_columns_are_typed_nulls() -> None:
    from gridkit.layers import check_layer

    reports = _hotline_reports_7_columns()
    out = check_layer(reports, "reports")
    for col in ("assignee_id", "lead_department_id", "duplicate_of", "reporter_contact"):
        assert out[col].isna().all()
    for col in ("due_at", "resolved_at"):
        assert pd.api.types.is_datetime64_any_dtype(out[col].dtype)
        assert str(out[col].dt.tz) == "UTC"
    assert list(out.index) == list(reports.index)
    assert "assignee_id" not in reports.columns  # the caller's frame is not touched


def test_absent_required_column_is_still_an_error() -> None:
    from gridkit.layers import check_layer

    reports = _hotline_reports_7_columns().drop(columns="category")
    with pytest.raises(InvalidLayerError, match=r"missing column\(s\) category\.\n"):
        check_layer(reports, "reports")


def test_map_takes_a_reports_file_without_its_nullable_columns(capsys, tmp_path: Path) -> None:
    units = grid_units(2, 2)
    centre = units.geometry.representative_point()
    reports = _hotline_reports_7_columns().set_geometry(list(centre.iloc[:2]), crs=4326)
    write_layer(units, tmp_path / "units.gpkg", "units")
    write_layer(reports, tmp_path / "reports.gpkg", "reports")
    code, _, err = run(
        capsys,
        "map",
        str(tmp_path / "units.gpkg"),
        "--reports",
        str(tmp_path / "reports.gpkg"),
        "-o",
        str(tmp_path / "m.html"),
    )
    assert code == 0, err
    assert (tmp_path / "m.html").exists()


# ---------------------------------------------------------------- item 4: files as they come


def test_hotline_csv_gcj02_reads_as_wgs84_reports(tmp_path: Path) -> None:
    path = _hotline_csv(tmp_path / "12345热线.csv")
    reports = read_layer(path, "reports", crs="gcj02")
    assert isinstance(reports, gpd.GeoDataFrame) and reports.crs.to_epsg() == 4326
    err_m = shapely.distance(
        gpd.GeoSeries(reports.geometry.values, crs=4326).to_crs(32649).values,
        gpd.GeoSeries(gpd.points_from_xy(TRUTH[:, 0], TRUTH[:, 1]), crs=4326).to_crs(32649).values,
    )
    assert err_m.max() < 0.5  # GCJ-02 shifted back (it is ~500 m off otherwise)
    assert reports["description"].iloc[0] == "河面漂浮垃圾,靠近桥墩"
    assert reports["assignee_id"].isna().all() and reports["due_at"].isna().all()
    assert str(reports["reported_at"].dt.tz) == "UTC"
    assert reports["reported_at"].iloc[0] == pd.Timestamp("2026-05-01T00:30:00Z")
    assert not {"lon", "lat"} & set(reports.columns)


def test_gbk_csv_needs_and_takes_an_encoding(tmp_path: Path) -> None:
    path = _hotline_csv(tmp_path / "hotline_gbk.csv", encoding="gbk")
    with pytest.raises(InputFileError, match="hotline_gbk.csv") as info:
        read_layer(path, "reports", crs="gcj02")
    assert "gbk" in info.value.hint
    reports = read_layer(path, "reports", crs="gcj02", encoding="gbk")
    assert reports["description"].iloc[1] == "排污口冒黑水"


def test_csv_coordinates_that_are_not_numbers_are_named_by_line(tmp_path: Path) -> None:
    path = _hotline_csv(tmp_path / "hotline.csv")
    text = path.read_text(encoding="utf-8-sig").splitlines()
    head = text[0].split(",")
    row = text[2].split(",")
    row[head.index("lat")] = "北纬27"
    text[2] = ",".join(row)
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"hotline.csv.*line 3.*lat"):
        read_layer(path, "reports")


def test_xlsx_sheet_of_workers_with_chinese_columns_and_xy(tmp_path: Path) -> None:
    path = tmp_path / "网格员花名册.xlsx"
    sheet = pd.DataFrame(
        {
            "编号": ["W001", "W002"],
            "姓名": ["张三", "李四"],
            "岗位": ["网格员", "楼栋长"],
            "层级": ["村", "村"],
            "行政代码": ["430202001001", "430202001002"],
            "容量": [300, 250],
            "电话": ["13800000000", None],
            "X": [113.15, 113.16],
            "Y": [27.85, 27.86],
        }
    )
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame({"说明": ["花名册"]}).to_excel(xl, sheet_name="封面", index=False)
        sheet.to_excel(xl, sheet_name="花名册", index=False)
    mapping = ColumnMap.parse(
        [
            "编号=worker_id",
            "姓名=name",
            "岗位=role",
            "层级=level",
            "行政代码=admin_code",
            "容量=capacity",
            "电话=phone",
        ]
    ).merge(ColumnMap(values={"role": {"网格员": "grid_worker", "楼栋长": "building_head"},
                                 "level": {"村": "village"}}))  # fmt: skip
    workers = read_layer(path, "花名册", columns=mapping, check="workers")
    assert workers["worker_id"].tolist() == ["W001", "W002"]
    assert workers["role"].tolist() == ["grid_worker", "building_head"]
    assert workers["admin_code"].iloc[0] == "430202001001"  # a code stays text
    assert workers["phone"].iloc[0] == "13800000000"
    assert workers.geometry.x.round(2).tolist() == [113.15, 113.16]
    with pytest.raises(LayerNotFoundError, match="no sheet 'workers'") as info:
        read_layer(path, "workers", columns=mapping)
    assert "花名册" in info.value.hint and "封面" in info.value.hint


def test_patrol_fixes_csv_with_wkt(tmp_path: Path) -> None:
    path = tmp_path / "fixes.csv"
    pd.DataFrame(
        {
            "patrol_id": ["P1", "P1", "P1"],
            "t": ["2026-05-01T08:00:00Z", "2026-05-01T08:01:00Z", "2026-05-01T08:02:00Z"],
            "accuracy_m": [5, 8, None],
            "wkt": ["POINT (113.1 27.8)", "POINT (113.1001 27.8001)", "POINT (113.1002 27.8)"],
        }
    ).to_csv(path, index=False)
    fixes = read_layer(path, "patrol_points")
    assert fixes.geom_type.unique().tolist() == ["Point"]
    assert fixes["t"].is_monotonic_increasing
    assert fixes["accuracy_m"].isna().tolist() == [False, False, True]


def test_gbk_shapefile_with_chinese_columns_and_coded_levels(tmp_path: Path) -> None:
    shp = _gbk_admin_shapefile(tmp_path / "行政区划.shp")
    toml = tmp_path / "mapping.toml"
    toml.write_text(MAPPING_TOML, encoding="utf-8")
    admin = read_layer(shp, "admin_areas", encoding="gbk", columns=ColumnMap.parse([str(toml)]))
    assert admin["name"].tolist() == ["荷塘区", "月塘街道", "建设村"]
    assert admin["level"].tolist() == ["county", "township", "village"]
    assert admin["parent_code"].iloc[2] == "430202001"


def test_unknown_coded_value_is_reported_by_the_contract(tmp_path: Path) -> None:
    shp = _gbk_admin_shapefile(tmp_path / "admin.shp")
    mapping = ColumnMap.parse(
        ["行政代码=admin_code", "名称=name", "级别=level", "上级代码=parent_code"]
    )
    with pytest.raises(InvalidLayerError, match=r"unknown value\(s\) 乡镇, 区县, 村"):
        read_layer(shp, "admin_areas", encoding="gbk", columns=mapping)


def test_column_map_refuses_two_sources_for_one_column() -> None:
    df = pd.DataFrame({"名称": ["a"], "name": ["b"]})
    with pytest.raises(InvalidLayerError, match="名称.*name"):
        ColumnMap.parse(["名称=name"]).apply(df, source="x.csv")


def test_bad_mapping_spec_says_how() -> None:
    with pytest.raises(GridkitError, match="SRC=DST"):
        ColumnMap.parse(["名称"])


def test_gridkit_reads_back_its_own_shapefile_export(tmp_path: Path, admin_areas) -> None:
    reports = _hotline_reports_7_columns().assign(
        lead_department_id=["D1", None], reporter_contact=["138", None]
    )
    with pytest.warns(GridkitWarning, match="names cut"):
        write_layer(admin_areas, tmp_path / "admin.shp", "admin_areas")
        write_layer(reports, tmp_path / "reports.shp", "reports")
    admin = read_layer(tmp_path / "admin.shp", "admin_areas")
    assert admin["parent_code"].tolist() == admin_areas["parent_code"].tolist()
    back = read_layer(tmp_path / "reports.shp", "reports")
    assert back["lead_department_id"].tolist()[0] == "D1"
    assert back["reporter_contact"].tolist()[0] == "138"
    assert (back["reported_at"] == reports["reported_at"]).all()


@pytest.mark.parametrize("ext", [".csv", ".xlsx"])
def test_tables_written_as_csv_or_xlsx_and_read_back(tmp_path: Path, ext: str) -> None:
    lineage = pd.DataFrame(
        {
            "old_id": ["430202001001-001", "430202001001-002", None],
            "new_id": ["430202001001-001", "430202001001-004", "430202001001-005"],
            "relation": ["unchanged", "modified", "added"],
            "share": [1.0, 0.8, None],
            "备注": ["不变", "边界调整", "新增"],
        }
    )
    path = write_layer(lineage, tmp_path / f"lineage{ext}", "lineage")
    if ext == ".csv":
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel opens it as UTF-8
    back = read_layer(path, "lineage")
    assert not isinstance(back, gpd.GeoDataFrame)
    assert back["old_id"].tolist()[:2] == lineage["old_id"].tolist()[:2]
    assert back["old_id"].isna().tolist() == [False, False, True]
    assert back["备注"].tolist() == lineage["备注"].tolist()
    assert np.allclose(back["share"].to_numpy(dtype=float), [1.0, 0.8, np.nan], equal_nan=True)


def test_xlsx_workbook_holds_several_tables_and_datetimes(tmp_path: Path) -> None:
    t = pd.Timestamp("2026-05-01T08:30:00Z")
    asg = pd.DataFrame(
        {"unit_id": ["U1", "U2"], "worker_id": ["W1", "W1"], "valid_from": [t, pd.NaT]}
    )
    loads = pd.DataFrame({"worker_id": ["W1"], "load": [2.0]})
    path = tmp_path / "assign.xlsx"
    write_layers({"assignments": asg, "worker_loads": loads}, path)
    assert pd.ExcelFile(path).sheet_names == ["assignments", "worker_loads"]
    back = read_layer(path, "assignments")
    assert back["valid_from"].iloc[0] == t
    assert read_table(path, "worker_loads")["load"].tolist() == [2.0]


def test_write_table_writes_points_as_wkt_that_reads_back(tmp_path: Path) -> None:
    reports = _hotline_reports_7_columns()
    path = write_table(reports, tmp_path / "reports.csv")
    back = read_layer(path, "reports")
    assert shapely.equals_exact(back.geometry.values, reports.geometry.values, 1e-9).all()


# ---------------------------------------------------------------- item 5: layer must exist


def test_named_layer_must_exist_single_layer_note(tmp_path: Path, rivers) -> None:
    path = write_layer(rivers, tmp_path / "rivers.gpkg", "xiang_2024")
    with pytest.raises(LayerNotFoundError, match="no layer 'nosuch'") as info:
        read_input(path, "rivers", source_layer="nosuch")
    assert "xiang_2024" in info.value.hint
    with pytest.warns(GridkitWarning, match="only layer 'xiang_2024'"):
        assert len(read_input(path, "rivers")) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_input(f"{path}:xiang_2024", "rivers")) == 2


def test_check_refuses_a_layer_the_file_does_not_have(capsys, tmp_path: Path, rivers) -> None:
    path = write_layer(rivers, tmp_path / "rivers.gpkg", "rivers")
    code, out, err = run(capsys, "check", str(path), "--layer", "nosuch")
    assert code == 1
    assert "ok" not in out
    assert "no layer 'nosuch'" in err and "rivers" in err


def test_check_reads_the_only_layer_as_the_contract_name_with_a_note(
    capsys, tmp_path: Path, rivers
) -> None:
    path = write_layer(rivers, tmp_path / "export.gpkg", "河流")
    code, out, err = run(capsys, "check", str(path), "--layer", "rivers")
    assert code == 0, err
    assert "only layer '河流'" in err
    assert "2 rows" in out


def test_cli_file_colon_layer_and_columns_toml(capsys, tmp_path: Path) -> None:
    shp = _gbk_admin_shapefile(tmp_path / "admin.shp")
    toml = tmp_path / "mapping.toml"
    toml.write_text(MAPPING_TOML, encoding="utf-8")
    ws = tmp_path / "ws.gpkg"
    code, _, err = run(
        capsys,
        "check",
        str(shp),
        "--layer",
        "admin_areas",
        "--encoding",
        "gbk",
        "--columns",
        str(toml),
        "-o",
        str(ws),
    )
    assert code == 0, err
    code, out, err = run(capsys, "check", f"{ws}:admin_areas", "--layer", "admin_areas")
    assert code == 0, err
    assert "3 rows" in out


def test_cli_diff_writes_lineage_csv_and_xlsx(capsys, tmp_path: Path) -> None:
    old = write_layer(grid_units(2, 2), tmp_path / "old.gpkg", "units")
    new = write_layer(grid_units(3, 2), tmp_path / "new.gpkg", "units")
    for ext in (".csv", ".xlsx"):
        out_path = tmp_path / f"lineage{ext}"
        code, _, err = run(capsys, "diff", str(old), str(new), "-o", str(out_path))
        assert code == 0, err
        back = read_layer(out_path, "lineage")
        assert set(back["relation"]) >= {"unchanged", "added"}


def test_cli_map_with_hotline_csv_in_gcj02_for_reports_only(capsys, tmp_path: Path) -> None:
    units = grid_units(15, 15)  # covers TRUTH (a report 5 km off the grid is in no unit)
    ws = write_layer(units, tmp_path / "units.gpkg", "units")
    csv = _hotline_csv(tmp_path / "hotline.csv")
    code, _, err = run(
        capsys,
        "map",
        str(ws),
        "--reports",
        str(csv),
        "--crs",
        "reports=gcj02",
        "-o",
        str(tmp_path / "m.html"),
    )
    assert code == 0, err
    page = (tmp_path / "m.html").read_text(encoding="utf-8")
    assert "RX-001" in page  # the hotline reports are on the map
    code, _, err = run(capsys, "map", str(ws), "--reports", str(csv), "--crs", "report=gcj02",
                       "-o", str(tmp_path / "m2.html"))  # fmt: skip
    assert code == 1 and "'report' is not a layer" in err


def _commands_reading_files() -> list[tuple[str, object]]:
    """Every command with a file parameter (other than its output), as click sees it."""
    from gridkit.cli.app import app

    found = []

    def walk(prefix: str, cmd) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(f"{prefix} {name}".strip(), sub)
            return
        notes = getattr(cmd.callback, "__annotations__", {})
        reads = [
            n
            for n, hint in notes.items()
            # rules files (a calendar), QR images and review queues written are no layers
            if "Path" in str(hint)
            and n not in ("output", "out", "workspace", "return", "calendar", "qr_file", "review")
        ]
        if reads:
            found.append((prefix, cmd))

    walk("", typer.main.get_command(app))
    return found


@pytest.mark.parametrize(("name", "cmd"), _commands_reading_files())
def test_every_command_reading_a_file_takes_layer_columns_encoding(name: str, cmd) -> None:
    options = {o for p in cmd.params for o in getattr(p, "opts", [])}
    if name in ("keys import", "serve", "callbacks record", "patrols import") or name.startswith(
        "national"
    ):
        # a key sheet, a workspace, a table of calls, a paper ledger's fixed layout, a
        # partitioned national dataset (a directory)
        pytest.skip("reads no contract layer")
    assert {"--encoding", "--columns", "--crs"} <= options, name
    if name != "assign":  # assign has no main input: --units FILE.gpkg:LAYER
        assert "--layer" in options, name


def test_cli_encoding_on_a_command_other_than_check(capsys, tmp_path: Path) -> None:
    units = grid_units(2, 2).assign(name=["建设村一组", "建设村二组", "荷塘社区", "月塘街道"])
    for name in ("old", "new"):
        pyogrio.write_dataframe(units, tmp_path / f"{name}.shp", encoding="gbk")
        (tmp_path / f"{name}.cpg").unlink(missing_ok=True)
    old, new = str(tmp_path / "old.shp"), str(tmp_path / "new.shp")
    code, _, err = run(capsys, "diff", old, new)
    assert code == 1 and "--encoding" in err and "gbk" in err  # an option diff now has
    code, out, err = run(capsys, "diff", old, new, "--encoding", "gbk")
    assert code == 0, err
    assert "unchanged" in out


def test_csv_xy_in_a_projected_crs(tmp_path: Path) -> None:
    truth = gpd.GeoSeries(gpd.points_from_xy(TRUTH[:, 0], TRUTH[:, 1]), crs=4326)
    gk = truth.to_crs(4547)  # CGCS2000 / 3-degree Gauss-Kruger CM 114E, as surveys come
    path = tmp_path / "fixes.csv"
    pd.DataFrame(
        {"patrol_id": ["P1"] * 3, "t": pd.date_range("2026-05-01", periods=3, freq="min"),
         "x": gk.x, "y": gk.y}
    ).to_csv(path, index=False)  # fmt: skip
    fixes = read_layer(path, "patrol_points", crs=4547)
    assert fixes.crs.to_epsg() == 4326
    assert np.allclose(fixes.geometry.x, TRUTH[:, 0], atol=1e-7)
    with pytest.raises(Exception, match="fixes.csv"):
        read_layer(path, "patrol_points")  # metres are not degrees: refused, not misplaced


def test_points_table_without_locations_is_refused_for_fixes(tmp_path: Path) -> None:
    path = tmp_path / "fixes.csv"
    pd.DataFrame({"patrol_id": ["P1"], "t": ["2026-05-01T08:00Z"]}).to_csv(path, index=False)
    with pytest.raises(InvalidLayerError, match="no lon/lat, x/y or WKT column"):
        read_layer(path, "patrol_points")


@settings(max_examples=40, deadline=None)
@given(
    ids=st.lists(
        st.text(alphabet="0123456789-甲乙E.", min_size=1, max_size=14), min_size=1, max_size=8
    )
)
def test_text_columns_come_back_exactly_from_csv_and_xlsx(tmp_path_factory, ids) -> None:
    """Ids and codes are text in the contract: 007, 1e5, 430202001001 come back as written."""
    tmp = tmp_path_factory.mktemp("ids")
    lineage = pd.DataFrame({"old_id": ids, "new_id": ids, "relation": "unchanged"})
    for ext in (".csv", ".xlsx"):
        path = write_table(lineage, tmp / f"lineage{ext}", sheet="lineage")
        back = read_layer(path, "lineage")
        assert back["old_id"].tolist() == ids


def test_map_requires_only_the_report_columns_it_uses(capsys, tmp_path: Path) -> None:
    units = grid_units(2, 2)
    ws = write_layer(units, tmp_path / "units.gpkg", "units")
    pts = units.geometry.representative_point()
    csv = tmp_path / "巡查问题.csv"
    pd.DataFrame(
        {"report_id": ["Q1", "Q2"], "category": ["垃圾", "占道"], "status": ["reported"] * 2,
         "lon": pts.x.iloc[:2], "lat": pts.y.iloc[:2]}
    ).to_csv(csv, index=False, encoding="utf-8-sig")  # fmt: skip
    code, _, err = run(capsys, "check", str(csv), "--layer", "reports")
    assert code == 1 and "missing column(s) source, reported_at" in err  # the contract
    code, _, err = run(
        capsys, "map", str(ws), "--reports", str(csv), "-o", str(tmp_path / "m.html")
    )
    assert code == 0, err  # the map uses report_id, category and status only
    assert "Q1" in (tmp_path / "m.html").read_text(encoding="utf-8")


def test_unchecked_buildings_keep_contract_types_and_points(tmp_path: Path) -> None:
    """split-communities reads buildings unchecked (households may be estimated), yet
    the contract still gives the names, the types and the points."""
    path = tmp_path / "楼栋.csv"
    pd.DataFrame(
        {"楼栋编号": ["0012", "0013"], "户数": ["24", None], "经度": [113.1, 113.2],
         "纬度": [27.8, 27.9]}
    ).to_csv(path, index=False)  # fmt: skip
    columns = ColumnMap.parse(["楼栋编号=building_id", "户数=households"])
    bld = read_input(path, "buildings", columns=columns, check=False)
    assert bld["building_id"].tolist() == ["0012", "0013"]
    assert bld["households"].tolist()[0] == 24 and pd.isna(bld["households"].iloc[1])
    assert bld.geom_type.tolist() == ["Point", "Point"]


def test_split_rivers_on_gbk_shapefiles_with_chinese_columns(capsys, tmp_path: Path) -> None:
    """The whole way in and out on a county export: GBK .dbf without .cpg, Chinese
    column names and coded levels, a mapping file, tables out as XLSX."""
    import geodata

    levels = {"city": "市", "county": "区县"}
    admin = geodata.zhuzhou_admin()
    admin = admin.assign(level=admin["level"].map(levels)).rename(
        columns={
            "admin_code": "行政代码",
            "name": "名称",
            "level": "级别",
            "parent_code": "上级代码",
        }
    )
    rivers = geodata.xiang_river().rename(columns={"river_id": "河流编码", "name": "河流名称"})
    for df, name in ((admin, "行政区"), (rivers, "河流")):
        pyogrio.write_dataframe(df, tmp_path / f"{name}.shp", encoding="gbk")
        (tmp_path / f"{name}.cpg").unlink(missing_ok=True)
    toml = tmp_path / "mapping.toml"
    toml.write_text(
        MAPPING_TOML.replace("[values.level]", '河流编码 = "river_id"\n河流名称 = "name"\n\n'
                             '[values.level]\n市 = "city"'),
        encoding="utf-8",
    )  # fmt: skip
    out = tmp_path / "河长制.gpkg"
    args = ["split-rivers", str(tmp_path / "河流.shp"), "--admin", str(tmp_path / "行政区.shp"),
            "--max-length", "5000", "--columns", str(toml), "-o", str(out)]  # fmt: skip
    code, _, err = run(capsys, *args)
    assert code == 1 and "--encoding" in err
    code, _, err = run(capsys, *args, "--encoding", "gbk")
    assert code == 0, err
    units = read_layer(out, "units")
    assert units["admin_code"].str.startswith("4302").all()
    assert set(read_layer(out, "reaches")["river_id"]) == set(geodata.xiang_river()["river_id"])
