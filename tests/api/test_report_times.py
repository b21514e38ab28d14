"""The times a 201 answers are the times a later GET reads back, on both backends
(a GeoPackage keeps milliseconds; the answer showed microseconds)."""

from __future__ import annotations

from tests.api.conftest import auth


def test_the_created_report_answers_the_times_it_is_read_back_with(client, keys) -> None:
    report = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [113.004, 27.704]},
        "properties": {"category": "floating_garbage", "description": "闸口漂浮物"},
    }
    made = client.post("/reports", json=report, headers=auth(keys["admin"]))
    assert made.status_code == 201, made.text
    back = client.get(
        f"/collections/reports/items/{made.json()['id']}", headers=auth(keys["admin"])
    )
    assert back.status_code == 200
    for name in ("reported_at", "due_at"):
        said, read = made.json()["properties"].get(name), back.json()["properties"].get(name)
        assert said is not None and said == read, (name, said, read)
