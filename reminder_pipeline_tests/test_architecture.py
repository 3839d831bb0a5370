"""Imports point one way (docs/architecture.md): entry points → domains → core."""

import ast
from pathlib import Path

import pytest

import reminder_pipeline

PACKAGE = Path(reminder_pipeline.__file__).parent
DOMAINS = {"assignments", "certifications", "activities", "alerting", "delivery"}
ENTRY_POINTS = {"definitions", "cli", "admin_api", "seed", "bench"}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return {name.split(".")[1] for name in found if name.startswith("reminder_pipeline.") and name.count(".") >= 1}


def _modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _modules("core"), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_the_core_imports_no_domain_and_no_entry_point(path: Path) -> None:
    assert _imported_modules(path) - {"core"} == set()


@pytest.mark.parametrize(
    "path",
    [path for domain in sorted(DOMAINS) for path in _modules(domain)],
    ids=lambda path: f"{path.parent.name}/{path.name}",
)
def test_a_domain_imports_no_entry_point(path: Path) -> None:
    assert _imported_modules(path) & ENTRY_POINTS == set()


def test_the_layers_were_found() -> None:
    assert len(_modules("core")) >= 10 and all(_modules(domain) for domain in DOMAINS)
