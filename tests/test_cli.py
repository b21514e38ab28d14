"""The gridkit command: version, help, exit codes and one-line errors with hints."""

from __future__ import annotations

import os
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
    # (check takes FILE:LAYER or the file's own layer now: assess needs --period)
    code, _, err = run(capsys, "assess", str(tmp_path / "x.gpkg"), "-o", str(tmp_path / "a"))
    assert code == 2
    assert "--period" in err


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


def _fake_uvicorn_run(seen: dict):
    """A stand-in for ``uvicorn.run``: records its arguments, and builds the app as
    uvicorn does (the factory, called with the environment the command set)."""
    import pandas as pd

    def fake_run(app, **kw):
        from unittest import mock

        from uvicorn.importer import import_from_string

        assert app == "api.serving:serving_app" and kw["factory"] is True
        with mock.patch("gc.freeze") as freeze:  # not this test process's objects
            built = import_from_string(app)()
        seen.update(
            kw,
            frozen=freeze.call_count,
            app=built,
            env=os.environ.get("GRIDKIT_WORKSPACE"),
            strings=pd.options.mode.string_storage,
        )

    return fake_run


def test_demo_serve_serves_the_demo_workspace_with_an_admin_key(
    capsys, monkeypatch, tmp_path: Path
) -> None:
    """``gridkit demo --serve``: the demo is built (here a small workspace stands in for
    it), an admin key is printed once, and the workspace is served with pandas' Python
    strings, which the process gets back afterwards."""
    import pandas as pd
    import uvicorn

    import gridkit.cli.app
    from gridkit.store import find_key, open_store
    from tests.api.test_writes import field_workspace

    ws, _ = field_workspace(tmp_path / "ws.gpkg")
    built: list = []
    monkeypatch.setattr(gridkit.cli.app, "run_demo", lambda path, seed: built.append(path))
    monkeypatch.setattr(gridkit.cli.app, "print_summary", lambda summary, console: None)
    monkeypatch.delenv("GRIDKIT_WORKSPACE", raising=False)
    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", _fake_uvicorn_run(seen))
    before = pd.options.mode.string_storage
    code, out, err = run(capsys, "demo", "--workspace", str(ws), "--serve")
    assert code == 0, err
    assert built == [ws] and seen["app"].state.service.settings.workspace == ws
    assert seen["frozen"] == 1  # the process's start-up objects, out of the collector
    assert seen["port"] == 8000 and seen["strings"] == "python"
    assert pd.options.mode.string_storage == before
    assert "GRIDKIT_WORKSPACE" not in os.environ  # the process gets its environment back
    secret = " ".join(out.split()).split("shown once): ")[1].split()[0]
    assert find_key(open_store(ws), secret).role == "admin"
    assert f"/maps/coverage?key={secret}" in " ".join(out.split()).replace(" ", "")


def test_a_server_process_freezes_its_start_up_objects(tmp_path: Path) -> None:
    """The app as a server process builds it: everything made by then is out of the
    cyclic collector, so a full collection while serving walks only what serving made
    (in a process of its own: this one's objects stay collectable)."""
    from tests.api.test_writes import field_workspace

    ws, _ = field_workspace(tmp_path / "ws.gpkg")
    code = (
        "import gc, time; from api.serving import serving_app; app = serving_app(); "
        "t = time.perf_counter(); gc.collect(); "
        "print(gc.get_freeze_count(), len(gc.get_objects()), time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "GRIDKIT_WORKSPACE": str(ws)},
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout.split()  # fmt: skip
    frozen, left = int(out[0]), int(out[1])
    assert frozen > 50_000 and left < frozen / 10


@pytest.mark.parametrize(("flag", "logged"), [(None, True), ("--no-access-log", False)])
def test_serve_access_log_option(capsys, monkeypatch, tmp_path: Path, flag, logged) -> None:
    import uvicorn

    from tests.api.test_writes import field_workspace

    ws, _ = field_workspace(tmp_path / "ws.gpkg")
    monkeypatch.setenv("GRIDKIT_WORKSPACE", "elsewhere.gpkg")  # the argument wins
    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", _fake_uvicorn_run(seen))
    code, _, err = run(capsys, "serve", str(ws), "--port", "8123", *([flag] if flag else []))
    assert code == 0, err
    assert seen["access_log"] is logged and seen["port"] == 8123
    assert seen["app"].state.service.settings.workspace == ws and seen["env"] == str(ws)
    assert os.environ["GRIDKIT_WORKSPACE"] == "elsewhere.gpkg"  # put back


@pytest.mark.parametrize("missing", ["uvicorn", "fastapi", "pydantic_settings"])
def test_serve_without_the_api_extra_says_what_to_install(
    capsys, monkeypatch, tmp_path: Path, missing: str
) -> None:
    """Without the 'api' extra, ``gridkit serve`` (and ``demo --serve``, before building
    anything) exit 1 with one line naming the extra: no traceback."""
    import gridkit.cli.app

    monkeypatch.setitem(sys.modules, missing, None)  # `import missing` raises ImportError
    built: list = []
    monkeypatch.setattr(gridkit.cli.app, "run_demo", lambda path, seed: built.append(path))
    for args in (["serve", str(tmp_path / "ws.gpkg")], ["demo", "-w", "x.gpkg", "--serve"]):
        code, _, err = run(capsys, *args)
        assert code == 1
        line = " ".join(err.split())
        assert "needs the 'api' extra: pip install \"gridkit[api]\"" in line, err
        assert "error:" in line and "Traceback" not in err
    assert built == []


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["keys", "--help"]])
def test_help_and_version_with_the_core_dependencies_alone(args: list[str]) -> None:
    """``gridkit --help`` and ``--version`` work without the extras (fastapi, uvicorn,
    folium...): importing any of them fails in this process."""
    extras = ["fastapi", "uvicorn", "starlette", "pydantic_settings", "folium", "api"]
    script = (
        "import sys\n"
        f"for name in {extras!r}:\n"
        "    sys.modules[name] = None  # import fails\n"
        "from gridkit.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert ("gridkit" in proc.stdout) and (__version__ in proc.stdout or "Usage" in proc.stdout)
