"""What runs in production (producers, processors, schemas, sinks) never depends on the dev stack."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
RUNTIME_PACKAGES = ("producers", "processors", "schemas", "sinks")


def _imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


@pytest.mark.parametrize("package", RUNTIME_PACKAGES)
def test_runtime_code_does_not_import_the_local_stack(package):
    offenders = sorted(
        f"{path.relative_to(ROOT)}: {module}"
        for path in (ROOT / package).rglob("*.py")
        for module in _imported_modules(path)
        if module == "inferwatch.deploy" or module.startswith("inferwatch.deploy.")
    )
    assert offenders == []
