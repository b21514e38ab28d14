"""API keys: issued once, stored hashed, roles checked, revocation effective."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import auth as auth_module
from api import create_app
from gridkit.cli import main
from gridkit.store import find_key, hash_key, issue_key, list_keys, open_store, revoke_key
from tests.api.conftest import make_workspace


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws.gpkg", n=10)


def test_cli_prints_key_once_and_stores_only_its_hash(ws: Path, capsys) -> None:
    assert main(["keys", "add", "王五", "--role", "viewer", "--workspace", str(ws)]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    assert secret.startswith("gk_") and len(secret) > 40
    raw = Path(ws).read_bytes() + (
        Path(f"{ws}-wal").read_bytes() if Path(f"{ws}-wal").exists() else b""
    )
    assert secret.encode() not in raw
    assert hash_key(secret).encode() in raw
    assert find_key(open_store(ws), secret).role == "viewer"


def test_unknown_role_and_worker_without_id_refused(ws: Path, capsys) -> None:
    assert main(["keys", "add", "x", "--role", "boss", "--workspace", str(ws)]) == 1
    assert "unknown role" in capsys.readouterr().err
    assert main(["keys", "add", "x", "--role", "worker", "--workspace", str(ws)]) == 1


def test_revoked_key_is_refused(ws: Path, monkeypatch) -> None:
    monkeypatch.setattr(auth_module, "KEY_CACHE_S", 0.0)
    store = open_store(ws)
    secret, key = issue_key(store, "temp", role="viewer")
    client = TestClient(create_app(workspace=ws))
    assert client.get("/collections", headers={"X-API-Key": secret}).status_code == 200
    revoke_key(store, key.key_id)
    time.sleep(0.01)
    assert client.get("/collections", headers={"X-API-Key": secret}).status_code == 401


def test_anonymous_read_of_maps_is_a_setting(ws: Path) -> None:
    closed = TestClient(create_app(workspace=ws))
    assert closed.get("/maps/coverage").status_code == 401
    assert closed.get("/collections").status_code == 401
    open_client = TestClient(create_app(workspace=ws, anonymous_read=True))
    page = open_client.get("/maps/coverage")
    assert page.status_code == 200
    assert "13800000001" not in page.text  # the public's view: no phones
    # maps only: layers, figures and writes still want a key
    for path in ("/collections", "/collections/workers/items", "/stats/coverage", "/versions"):
        assert open_client.get(path).status_code == 401, path
    assert open_client.post("/reports", json={"category": "cctv"}).status_code == 401


def test_settings_from_environment(ws: Path, monkeypatch) -> None:
    from api import Settings

    monkeypatch.setenv("GRIDKIT_WORKSPACE", str(ws))
    monkeypatch.setenv("GRIDKIT_ANONYMOUS_READ", "true")
    s = Settings()
    assert s.workspace == ws and s.anonymous_read


def test_missing_workspace_is_clear(tmp_path: Path) -> None:
    from gridkit.errors import InputFileError

    with pytest.raises(InputFileError, match="no such workspace"):
        create_app(workspace=tmp_path / "none.gpkg")


def test_store_updates_attributes_of_a_gdal_layer(ws: Path) -> None:
    """Plain-SQLite updates on a GDAL-made layer fire its R-tree triggers: the store
    registers the functions those need, and GDAL reads the result back cleanly."""
    import warnings

    import pandas as pd
    import pyogrio

    store = open_store(ws)
    due = pd.Timestamp("2026-06-01T08:00:00Z")
    store.update("reports", "report_id", "R1", {"status": "assigned", "due_at": due})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "non-conformant content" from GDAL
        back = pyogrio.read_dataframe(ws, layer="reports", bbox=(113.0, 27.7, 113.01, 27.71))
    assert back["report_id"].tolist() == ["R1"]  # spatial index still answers
    row = store.read("reports").set_index("report_id").loc["R1"]
    assert row["status"] == "assigned" and row["due_at"] == due


def _write_csv(path: Path, text: str, encoding: str = "utf-8-sig") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_bulk_import_from_csv_issues_every_key_once(ws: Path, tmp_path: Path, capsys) -> None:
    sheet = _write_csv(
        tmp_path / "keys.csv",
        "name,role,scope,worker_id\n"
        "张三,worker,,W1\n"
        "\n"
        "王主任,Supervisor,430202,\n"
        "规划科,planner,,\n",
    )
    out = tmp_path / "issued.csv"
    argv = ["keys", "import", str(sheet), "--workspace", str(ws), "--out", str(out)]
    assert main(argv) == 0
    assert "issued 3 keys" in capsys.readouterr().err
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel opens it as UTF-8
    import csv

    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert [r["name"] for r in rows] == ["张三", "王主任", "规划科"]
    store = open_store(ws)
    found = [find_key(store, r["key"]) for r in rows]
    assert [(k.role, k.scope, k.worker_id) for k in found] == [
        ("worker", "430202001001", "W1"),  # a person's key: his own area by default
        ("supervisor", "430202", None),
        ("planner", "", None),
    ]
    raw = Path(ws).read_bytes() + (
        Path(f"{ws}-wal").read_bytes() if Path(f"{ws}-wal").exists() else b""
    )
    assert not any(r["key"].encode() in raw for r in rows)  # only hashes stored


def test_bulk_import_reads_gb18030_and_prints_to_stdout(ws: Path, tmp_path: Path, capsys) -> None:
    sheet = _write_csv(tmp_path / "excel.csv", "name,role\r\n李四,viewer\r\n", "gb18030")
    assert main(["keys", "import", str(sheet), "--workspace", str(ws)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "name,role,scope,worker_id,key_id,key"
    assert lines[1].startswith("李四,viewer,,,")
    assert find_key(open_store(ws), lines[1].rsplit(",", 1)[1]).name == "李四"


def test_bulk_import_refuses_bad_rows_and_issues_nothing(ws: Path, tmp_path: Path, capsys) -> None:
    before = len(list_keys(open_store(ws)))
    sheet = _write_csv(
        tmp_path / "bad.csv",
        "name,role,scope,worker_id\n张三,worker,,W1\n李四,boss,,\n王五,worker,,\n赵六,viewer,荷塘区,\n",
    )
    assert main(["keys", "import", str(sheet), "--workspace", str(ws)]) == 1
    err = " ".join(capsys.readouterr().err.split())  # the terminal wraps long lines
    for words in ("bad.csv", "row 3: unknown role 'boss'", "row 4: a worker key needs", "row 5"):
        assert words in err
    assert "Nothing was issued" in err
    assert len(list_keys(open_store(ws))) == before
    missing = _write_csv(tmp_path / "cols.csv", "姓名,角色\n张三,worker\n")
    assert main(["keys", "import", str(missing), "--workspace", str(ws)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "cols.csv" in err and "no column name, role" in err and "name,role,scope" in err


def test_cli_scope_list_and_revoke(ws: Path, capsys) -> None:
    argv = ["keys", "add", "赵主任", "--role", "supervisor", "--scope", "430203"]
    assert main([*argv, "--workspace", str(ws)]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    key = find_key(open_store(ws), secret)
    assert (key.role, key.scope) == ("supervisor", "430203")
    assert main(["keys", "list", "--workspace", str(ws)]) == 0
    listed = capsys.readouterr().out
    assert key.key_id in listed and "赵主任" in listed and secret not in listed
    assert main(["keys", "revoke", key.key_id, "--workspace", str(ws)]) == 0
    assert find_key(open_store(ws), secret) is None
    assert main(["keys", "revoke", "nope", "--workspace", str(ws)]) == 1
    assert "no API key" in capsys.readouterr().err


def test_keys_are_a_service_over_the_store_not_its_interface(ws: Path) -> None:
    """Neither the persistence interface nor its GeoPackage backend has key methods;
    the key service works over any store through its service-table primitives."""
    from gridkit.store import KEYS, GeoPackageStore, Store

    methods = {"add_key", "add_keys", "find_key", "revoke_key", "keys"}
    assert not methods & {n for cls in (Store, GeoPackageStore) for n in dir(cls)}
    store = open_store(ws)
    secret, key = issue_key(store, "张三", role="worker", worker_id="W1", scope="430202")
    assert find_key(store, secret) == key
    assert "gridkit_api_keys" not in store.layers()
    row = store.records(KEYS, where={"key_id": key.key_id}).iloc[0]
    assert row["hash"] == hash_key(secret) and row["revoked"] == 0
    revoke_key(store, key.key_id)
    assert find_key(open_store(ws), secret) is None


def test_principal_scope_is_an_admin_area() -> None:
    # gridkit.codes.in_scope: a city's scope holds its districts and their communities,
    # whatever form the codes take; a district's holds no other district
    from api.auth import Principal

    city = Principal(role="supervisor", scope="430200")
    assert city.in_scope("430202001001") and city.in_scope("430281") and city.in_scope("430200")
    assert not city.in_scope("430302") and not city.in_scope(None)
    district = Principal(role="supervisor", scope="430202")
    assert district.in_scope("430202000000") and not district.in_scope("430203001001")
    assert Principal(role="admin").in_scope(None)
