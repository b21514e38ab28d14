"""Partitioned GeoParquet into PostGIS in parallel (issue 26, item 3): a national
build loaded by one task per partition file on a LocalCluster of 2 workers gives the
tables the one-process load gives, every row of every part, in WGS84; a database
holding rows is refused unless --replace."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

pytest.importorskip("distributed")
pytest.importorskip("psycopg")

from gridkit.cli import main
from gridkit.crs import WGS84
from gridkit.national import build_national
from gridkit.scale import Engine
from gridkit.scale.load import load_partitioned, partition_files
from gridkit.store import open_store
from tests import postgis_cluster


@pytest.fixture(scope="module")
def national(tmp_path_factory):
    out = tmp_path_factory.mktemp("nat")
    build_national(0.0002, out, seed=5, city_buildings=3000, months=1)
    return out


def _parts(national, layer: str) -> pd.DataFrame:
    frames = [gpd.read_parquet(p) for p in partition_files(national)[layer]]
    return pd.concat([f.to_crs(WGS84) for f in frames], ignore_index=True)


def test_parallel_load_equals_the_parts_and_the_one_process_load(national) -> None:
    url = postgis_cluster.new_database()
    with Engine.local(2) as engine:
        counts = load_partitioned(national, url, engine=engine)
    files = partition_files(national)
    assert set(counts) == set(files) and counts["buildings"] > 10_000
    import psycopg

    with psycopg.connect(url) as con:  # analysed once loaded: the planner knows the sizes
        sizes = dict(con.execute("SELECT relname, reltuples FROM pg_class WHERE relname = "
                                 "ANY(%s)", [list(files)]).fetchall())  # fmt: skip
    assert sizes == {t: n for t, n in counts.items()}
    store = open_store(url)
    for layer in ("buildings", "communities", "workers"):
        want = _parts(national, layer)
        got = store.read(layer)
        assert counts[layer] == len(want) == len(got), layer
        key = {"buildings": "building_id", "communities": "community_id"}.get(layer, "worker_id")
        want = want.sort_values(key).reset_index(drop=True)
        got = got.sort_values(key).reset_index(drop=True)
        assert got[key].tolist() == want[key].tolist()
        same = shapely.equals_exact(got.geometry.array, want.geometry.array, tolerance=1e-9)
        assert same.all(), layer
    # the one-process load gives the same tables
    serial = postgis_cluster.new_database()
    assert load_partitioned(national, serial) == counts
    a = open_store(serial).read("buildings").sort_values("building_id").reset_index(drop=True)
    b = store.read("buildings").sort_values("building_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))


def test_the_command_refuses_a_database_with_rows_unless_replace(national, capsys) -> None:
    url = postgis_cluster.new_database()
    assert main(["national", "load", str(national), url]) == 0
    said = capsys.readouterr().out
    assert "loaded" in said and "rows/s" in said, said
    assert main(["national", "load", str(national), url]) == 1
    err = capsys.readouterr()
    assert "already holds" in err.out + err.err and "--replace" in err.out + err.err
    assert main(["national", "load", str(national), url, "--replace"]) == 0
    n = len(open_store(url).read("buildings"))
    assert n == sum(len(gpd.read_parquet(p)) for p in partition_files(national)["buildings"])
