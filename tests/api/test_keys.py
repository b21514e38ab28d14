"""API keys: issued once, stored hashed, roles checked, revocation effective."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import auth as auth_module
from api import create_app
from gridkit.cli import main
from gridkit.store import hash_key, open_store
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
    assert open_store(ws).find_key(secret).role == "viewer"


def test_unknown_role_and_worker_without_id_refused(ws: Path, capsys) -> None:
    assert main(["keys", "add", "x", "--role", "boss", "--workspace", str(ws)]) == 1
    assert "unknown role" in capsys.readouterr().err
    assert main(["keys", "add", "x", "--role", "worker", "--workspace", str(ws)]) == 1


def test_revoked_key_is_refused(ws: Path, monkeypatch) -> None:
    monkeypatch.setattr(auth_module, "KEY_CACHE_S", 0.0)
    store = open_store(ws)
    secret, key = store.add_key("temp", role="viewer")
    client = TestClient(create_app(workspace=ws))
    assert client.get("/collections", headers={"X-API-Key": secret}).status_code == 200
    store.revoke_key(key.key_id)
    time.sleep(0.01)
    assert client.get("/collections", headers={"X-API-Key": secret}).status_code == 401


def test_anonymous_read_is_a_setting(ws: Path) -> None:
    assert TestClient(create_app(workspace=ws)).get("/collections").status_code == 401
    open_client = TestClient(create_app(workspace=ws, anonymous_read=True))
    r = open_client.get("/collections/workers/items")
    assert r.status_code == 200
    assert all("phone" not in f["properties"] for f in r.json()["features"])


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
