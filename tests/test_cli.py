"""The gridkit command: version, help, exit codes and one-line errors with hints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gridkit import __version__
from gridkit.cli import main
from gridkit.io import write_layer


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version(capsys) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert __version__ in out


def test_help_lists_commands(capsys) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("demo", "check"):
        assert command in out


def test_usage_error_exit_2(capsys) -> None:
    code, _, err = run(capsys, "no-such-command")
    assert code == 2
    assert "No such command" in err


def test_missing_required_option_exit_2(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "check", str(tmp_path / "x.gpkg"))
    assert code == 2
    assert "--layer" in err


def test_invalid_data_exit_1_one_line_and_hint(capsys, tmp_path: Path, rivers) -> None:
    path = write_layer(rivers.rename(columns={"river_id": "rid"}), tmp_path / "r.gpkg", "rivers")
    code, _, err = run(capsys, "check", str(path), "--layer", "rivers")
    assert code == 1
    assert "error:" in err and "missing column(s) river_id" in err
    assert "hint:" in err
    assert "Traceback" not in err


def test_unreadable_file_exit_1_names_it(capsys, tmp_path: Path) -> None:
    broken = tmp_path / "草稿.gpkg"
    broken.write_bytes(b"not a geopackage")
    code, _, err = run(capsys, "publish", str(broken), "--workspace", str(tmp_path / "w.gpkg"))
    assert code == 1
    assert "草稿.gpkg" in err and "cannot open" in err and "hint:" in err
    assert "Traceback" not in err


def test_unknown_format_exit_1(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "check", str(tmp_path / "x.kml"), "--layer", "units")
    assert code == 1
    assert "unsupported file type" in err


def test_check_ok_and_convert(capsys, tmp_path: Path, rivers) -> None:
    path = write_layer(rivers, tmp_path / "r.gpkg", "rivers")
    out_path = tmp_path / "r.geojson"
    code, out, _ = run(capsys, "check", str(path), "--layer", "rivers", "-o", str(out_path))
    assert code == 0
    assert "ok" in out
    assert out_path.exists()


def test_crs_option_declares_datum(capsys, tmp_path: Path, rivers) -> None:
    path = write_layer(
        rivers.to_crs(32649).set_crs(None, allow_override=True).set_crs(32649),
        tmp_path / "m.gpkg",
        "rivers",
    )  # written as WGS84 anyway
    code, _, _ = run(capsys, "check", str(path), "--layer", "rivers", "--crs", "gcj02")
    assert code == 0
    code, _, err = run(capsys, "check", str(path), "--layer", "rivers", "--crs", "nonsense")
    assert code == 1
    assert "Unknown CRS" in err


def test_debug_shows_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gridkit.cli",
            "--debug",
            "check",
            str(tmp_path / "x.kml"),
            "--layer",
            "units",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_console_script_installed(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gridkit.cli", *args], capture_output=True, text=True
    )
    assert proc.returncode == 0


def test_error_text_with_brackets_is_printed_verbatim(capsys, tmp_path: Path, rivers) -> None:
    """Messages carry user data: rich markup in them must not be interpreted."""
    bad = rivers.assign(river_id=["[bold]X[/]", "[bold]X[/]"])
    path = write_layer(bad, tmp_path / "r.gpkg", "rivers")
    code, _, err = run(capsys, "check", str(path), "--layer", "rivers")
    assert code == 1
    assert "[bold]X[/]" in err


def test_demo_serve_serves_the_demo_workspace_with_an_admin_key(
    capsys, monkeypatch, tmp_path: Path
) -> None:
    """``gridkit demo --serve``: the demo is built (here a small workspace stands in for
    it), an admin key is printed once, and the workspace is served with pandas' Python
    strings, which the process gets back afterwards."""
    import pandas as pd
    import uvicorn

    import gridkit.demo
    from gridkit.store import open_store
    from tests.api.test_writes import field_workspace

    ws, _ = field_workspace(tmp_path / "ws.gpkg")
    built: list = []
    monkeypatch.setattr(gridkit.demo, "run_demo", lambda path, seed: built.append(path))
    monkeypatch.setattr(gridkit.demo, "print_summary", lambda summary, console: None)
    seen: dict = {}

    def fake_run(app, **kw):
        seen.update(kw, app=app, strings=pd.options.mode.string_storage)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    before = pd.options.mode.string_storage
    code, out, err = run(capsys, "demo", "--workspace", str(ws), "--serve")
    assert code == 0, err
    assert built == [ws] and seen["app"].state.settings.workspace == ws
    assert seen["port"] == 8000 and seen["strings"] == "python"
    assert pd.options.mode.string_storage == before
    secret = " ".join(out.split()).split("shown once): ")[1].split()[0]
    assert open_store(ws).find_key(secret).role == "admin"
    assert f"/maps/coverage?key={secret}" in " ".join(out.split()).replace(" ", "")


@pytest.mark.parametrize(("flag", "logged"), [(None, True), ("--no-access-log", False)])
def test_serve_access_log_option(capsys, monkeypatch, tmp_path: Path, flag, logged) -> None:
    import uvicorn

    from tests.api.test_writes import field_workspace

    ws, _ = field_workspace(tmp_path / "ws.gpkg")
    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw, app=app))
    code, _, err = run(capsys, "serve", str(ws), "--port", "8123", *([flag] if flag else []))
    assert code == 0, err
    assert seen["access_log"] is logged and seen["port"] == 8123
    assert seen["app"].state.settings.workspace == ws
