"""A person's key issued without a scope is limited to the person's own area (the
tester's worker key, made as the README's field-app example shows, read and reported
across the whole city)."""

from __future__ import annotations

import pytest

from gridkit.cli import main
from gridkit.store import list_keys, open_store
from tests.api.conftest import make_workspace


def _report(x: float, y: float) -> dict:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [x, y]},
        "properties": {"category": "floating_garbage", "description": "河面垃圾"},
    }


def test_a_workers_key_without_scope_is_limited_to_the_workers_area(tmp_path, capsys) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from api import create_app

    ws = make_workspace(tmp_path / "ws.gpkg")  # W1 works in 430202001001
    assert (
        main(["keys", "add", "张三", "--role", "worker", "--worker-id", "W1", "-w", str(ws)]) == 0
    )
    out = capsys.readouterr()
    secret = out.out.strip()
    assert "scope 430202001001" in out.err
    assert list_keys(open_store(ws)).set_index("name").loc["张三", "scope"] == "430202001001"
    # a wider key says so; a key for no person stays as asked
    assert main(["keys", "add", "李四", "--role", "worker", "--worker-id", "W2", "--scope", "4302",
                 "-w", str(ws)]) == 0  # fmt: skip
    assert main(["keys", "add", "看", "--role", "viewer", "-w", str(ws)]) == 0
    scopes = list_keys(open_store(ws)).set_index("name")["scope"]
    assert scopes["李四"] == "4302" and scopes["看"] == ""
    client = TestClient(create_app(workspace=ws))
    auth = {"X-API-Key": secret}
    inside = client.post("/reports", json=_report(113.004, 27.704), headers=auth)  # 430202
    outside = client.post("/reports", json=_report(113.014, 27.704), headers=auth)  # 430203
    assert inside.status_code == 201, inside.text
    assert outside.status_code == 403, outside.text
    units = client.get("/collections/units/items?limit=1000", headers=auth).json()["features"]
    assert units and {u["properties"]["admin_code"] for u in units} == {"430202001001"}
