"""The house rules of the code itself (README, "Architecture"): the layering holds,
no room reaches into another's private names, the API does no geometry, functions
stay short, imports sit at the top, every public function has a runnable example,
and ``import gridkit`` needs only the core dependencies."""

from __future__ import annotations

import ast
import io
import os
import shutil
import subprocess
import sys
import textwrap
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gridkit", "api")
MAX_FUNCTION_LINES = 100
#: geometry operations (shapely, geopandas) the API must leave to gridkit
GEOMETRY_OPS = frozenset(
    "union_all unary_union covers covered_by contains within intersects intersection "
    "difference symmetric_difference buffer sjoin sjoin_nearest overlay distance dwithin "
    "to_crs set_crs bounds total_bounds centroid area length simplify make_valid clip "
    "convex_hull envelope representative_point nearest sindex".split()
)
#: modules that may import gridkit lazily, and why
LAZY_IMPORTS_OK = {
    "gridkit/__init__.py": "maps need the optional 'maps' extra (folium)",
}
#: gridkit modules that need an optional extra may load on use anywhere
LAZY_MODULES_OK = {"gridkit.maps": "needs the optional 'maps' extra (folium)"}
LAZY_IMPORTS_OK_DIRS = {
    "gridkit/cli": "each command loads its room on use: `gridkit --help` stays fast and "
    "works without the optional extras",
}


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _room(module: str) -> str:
    """gridkit.rivers.split -> gridkit.rivers; gridkit.crs -> gridkit.crs; api.x -> api."""
    parts = module.split(".")
    return parts[0] if parts[0] == "api" else ".".join(parts[:2])


def _imports(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node, node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name, []


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter not installed")
def test_import_linter_contracts_hold() -> None:
    """The layering of pyproject.toml's [tool.importlinter]: nothing in gridkit imports
    api, the foundation imports no capability, capabilities import no other."""
    run = subprocess.run(
        ["lint-imports", "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


def test_no_private_name_crosses_a_room() -> None:
    """A room's private modules and names (leading underscore) are its own."""
    crossings = []
    for path in _modules():
        here = _module_name(path)
        for node, module, names in _imports(_tree(path)):
            if not module.startswith(PACKAGES):
                continue
            private_module = any(p.startswith("_") for p in module.split(".")[1:])
            private_names = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if (private_module or private_names) and _room(module) != _room(here):
                crossings.append(f"{_rel(path)}:{node.lineno} from {module} {private_names}")
    assert not crossings, "\n".join(crossings)


def test_api_does_no_geometry_itself() -> None:
    """The API parses, authorises, calls gridkit and serialises; geometry is gridkit's:
    no shapely function and no geometry operation of geopandas in ``api/`` (GeoDataFrames
    may pass through it as data, shapely's types may name it)."""
    found = []
    for path in sorted((ROOT / "api").rglob("*.py")):
        for node in ast.walk(_tree(path)):
            if not isinstance(node, ast.Attribute):
                continue
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            if (owner == "shapely" and not node.attr[:1].isupper()) or node.attr in GEOMETRY_OPS:
                found.append(f"{_rel(path)}:{node.lineno} .{node.attr}")
    assert not found, "\n".join(found)


def _code_lines(source: str) -> set[int]:
    lines: set[int] = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in skip and tok.type != tokenize.ENDMARKER:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines


def _function_lengths(path: Path):
    source = path.read_text(encoding="utf-8")
    code = _code_lines(source)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if ast.get_docstring(node):
                body = body[1:]
            if body:
                span = range(body[0].lineno, node.end_lineno + 1)
                yield node, sum(1 for n in span if n in code)


def test_functions_a_reader_can_hold() -> None:
    """No function over 100 lines of code (docstring, comments and blank lines aside)."""
    long = [
        f"{_rel(path)}:{node.lineno} {node.name} ({n} lines)"
        for path in _modules()
        for node, n in _function_lengths(path)
        if n > MAX_FUNCTION_LINES
    ]
    assert not long, "\n".join(long)


def _lazy_ok(path: Path) -> bool:
    rel = _rel(path)
    return rel in LAZY_IMPORTS_OK or any(rel.startswith(d + "/") for d in LAZY_IMPORTS_OK_DIRS)


def test_project_imports_sit_at_the_top() -> None:
    """gridkit and api modules are imported at the top of a module, where a reader
    sees them (an import loop is fixed by the structure, not hidden in a function);
    optional third-party packages may load on use."""
    hidden = []
    for path in _modules():
        if _lazy_ok(path):
            continue
        for fn in ast.walk(_tree(path)):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node, module, _ in _imports(fn):
                if module.split(".")[0] in PACKAGES and module not in LAZY_MODULES_OK:
                    hidden.append(f"{_rel(path)}:{node.lineno} {fn.name} imports {module}")
    assert not hidden, "\n".join(hidden)


def _public_api(path: Path, tree: ast.Module):
    """Public functions and classes of a public module (``__all__`` where it is given)."""
    if any(p.startswith("_") and p != "__init__.py" for p in path.relative_to(ROOT).parts):
        return
    declared = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            declared = set(ast.literal_eval(node.value))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
            if node.name.endswith(("Error", "Warning")):
                continue  # exceptions are shown where they are raised
            if any(getattr(d, "id", None) == "overload" for d in node.decorator_list):
                continue  # typing overloads: the implementation carries the docstring
            if declared is None or node.name in declared:
                yield node


@pytest.mark.parametrize("package", ["gridkit"])
def test_every_public_function_has_an_example(package: str) -> None:
    """numpydoc ``Examples`` on every public function and class of the library; they
    run as doctests in this suite (``--doctest-modules``)."""
    missing = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if _rel(path).startswith("gridkit/cli/"):
            continue  # commands are documented by --help and tested in test_cli
        tree = _tree(path)
        for node in _public_api(path, tree):
            doc = ast.get_docstring(node) or ""
            if "Examples\n--------" not in doc:
                missing.append(f"{_rel(path)}:{node.lineno} {node.name}")
    assert not missing, f"{len(missing)} without Examples:\n" + "\n".join(missing)


_BLOCK_EXTRAS = textwrap.dedent(
    """
    import importlib.abc, sys

    class _NoExtras(importlib.abc.MetaPathFinder):
        # as if only the core dependencies were installed
        blocked = ("folium", "branca", "xstatic", "fastapi", "starlette", "uvicorn",
                   "pydantic", "pydantic_settings", "orjson", "multipart", "swagger_ui_bundle")

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.blocked:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, _NoExtras())
    """
)


def _core_only(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", _BLOCK_EXTRAS + textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
        timeout=120,
    )


def test_import_gridkit_needs_only_the_core_dependencies() -> None:
    run = _core_only(
        """
        import gridkit
        assert callable(gridkit.split_rivers) and callable(gridkit.locate)
        try:
            gridkit.coverage_map
        except ImportError as e:
            print("maps:", e)
        """
    )
    assert run.returncode == 0, run.stderr
    assert 'pip install "gridkit[maps]"' in run.stdout


def test_cli_help_needs_only_the_core_dependencies() -> None:
    run = _core_only("import sys; from gridkit.cli import main; sys.exit(main(['--help']))")
    assert run.returncode == 0, run.stderr
    assert "split-rivers" in run.stdout and "serve" in run.stdout
