"""A database that refuses the service for a lasting reason (a privilege revoked, the
password changed) is the administrator's to fix: a logged 500, not a 400 blaming the
request, and no 503 telling clients to retry."""

from __future__ import annotations

import logging

from fastapi.testclient import TestClient

from api import create_app
from gridkit.store import DatabaseRefusedError
from tests.api.test_writes import field_workspace, h


def test_a_refused_database_is_a_logged_500(tmp_path, monkeypatch, caplog) -> None:
    ws, keys = field_workspace(tmp_path / "ws.gpkg")
    app = create_app(workspace=ws)
    store = app.state.service.store

    def refused(*args, **kwargs):
        raise DatabaseRefusedError(
            "postgresql://grid:***@db/zz",
            "permission denied for table units",
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO grid",
        )

    monkeypatch.setattr(store, "read", refused)
    monkeypatch.setattr(store, "version", refused, raising=False)
    with caplog.at_level(logging.ERROR):
        r = TestClient(app, raise_server_exceptions=False).get(
            "/collections/units/items", headers=h(keys["sup"])
        )
    assert r.status_code == 500 and "Retry-After" not in r.headers
    assert "GRANT" not in r.text and "permission denied" not in r.text  # for the admin
    assert "permission denied for table units" in caplog.text
