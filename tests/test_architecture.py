"""The house's floors, checked on the source: every import points down the flow (faces ->
api -> use -> training -> runs -> novelty -> text -> models -> the ground), no module is over
400 lines, no function over 50. ``python tests/test_architecture.py`` prints the figures."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "charlm"
# lowest first; a module may import its own floor and those below it
FLOORS = [
    ("ground", ("errors", "fsio", "graphs", "metrics", "say", "version", "options")),
    ("models", ("models",)),
    ("text", ("text",)),
    ("novelty", ("novelty",)),
    ("runs", ("runs",)),
    ("training", ("training",)),
    ("use", ("use",)),
    ("api", ("api",)),
    ("faces", ("cli", "serve", "__init__", "__main__")),
]
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 50


def floor(module: str) -> int:
    """The floor of ``module`` (dotted, under charlm: "use.generate"; "__init__" the root)."""
    top = module.split(".")[0]
    return next(i for i, (_, tops) in enumerate(FLOORS) if top in tops)


def modules() -> dict[str, Path]:
    """Each module of charlm by its dotted name under the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path) -> set[str]:
    """The charlm modules ``name`` imports (dotted under charlm), lazily or not."""
    package = name.split(".") if path.name == "__init__.py" and name != "__init__" else []
    package = package or name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            out |= (
                {target} if node.module else {f"{target}.{a.name}".strip(".") for a in node.names}
            )
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("charlm."):
            out.add(node.module.removeprefix("charlm."))
        elif isinstance(node, ast.Import):
            out |= {
                a.name.removeprefix("charlm.") for a in node.names if a.name.startswith("charlm.")
            }
    return {m or "__init__" for m in out}


def arrows() -> list[tuple[str, str]]:
    found = modules()
    return [
        (name, target) for name, path in found.items() for target in sorted(imports(name, path))
    ]


def upward() -> list[str]:
    return [f"{a} -> {b}" for a, b in arrows() if floor(b) > floor(a)]


def long_functions() -> list[str]:
    out = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    out.append(f"{name}.{node.name}: {lines} lines")
    return out


def long_modules() -> list[str]:
    return [
        f"{name}: {n} lines"
        for name, path in modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]


def test_every_import_points_down_the_flow_or_along_its_floor():
    assert upward() == []


def test_the_faces_reach_the_engine_only_through_the_api():
    """A face (the CLI, the server, the package's own face) imports the api, the ground and
    other faces: never the engine's floors (models, text, runs, training, use) directly."""
    faces, api, ground = len(FLOORS) - 1, floor("api"), floor("options")
    around = [f"{a} -> {b}" for a, b in arrows() if floor(a) == faces]
    assert [a for a in around if floor(a.split(" -> ")[1]) not in (faces, api, ground)] == []


def test_the_floor_table_knows_every_module():
    for name in modules():
        floor(name)


def test_no_module_is_over_400_lines():
    assert long_modules() == []


def test_no_function_is_over_50_lines():
    assert long_functions() == []


def test_the_check_sees_an_upward_import_lazy_or_not(tmp_path):
    """The checker itself: a models module that imports the api, even inside a function, is
    an arrow that points up; one that imports the ground is not."""
    source = tmp_path / "x.py"
    source.write_text("from ..options import config\n\ndef f():\n    from ..api.run import Run\n")
    found = imports("models.x", source)
    assert found == {"options", "api.run"}
    assert [t for t in found if floor(t) > floor("models.x")] == ["api.run"]


def test_the_command_line_starts_without_numpy_or_tensorflow():
    """``charlm --help``, shell completion and every error found before a model loads pay
    for the CLI's own imports alone: the api's door imports its rooms when asked."""
    import subprocess

    code = "import sys, charlm.cli; print(sorted({'numpy', 'tensorflow'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


if __name__ == "__main__":
    all_arrows = arrows()
    print(f"modules: {len(modules())}, floors: {len(FLOORS)}, import arrows: {len(all_arrows)}")
    for i, (label, _) in enumerate(FLOORS):
        print(f"  {label}: {sum(1 for m in modules() if floor(m) == i)} modules")
    print(f"arrows pointing up: {len(upward())}", *upward(), sep="\n  ")
    print(
        f"modules over {MAX_MODULE_LINES} lines: {len(long_modules())}", *long_modules(), sep="\n  "
    )
    print(
        f"functions over {MAX_FUNCTION_LINES} lines: {len(long_functions())}",
        *long_functions(),
        sep="\n  ",
    )
    sys.exit(0)
