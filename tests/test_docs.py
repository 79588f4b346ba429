"""The commands in the README and docs/ still exist, and each one a clinic would
run is exercised by a test: a doc that names a make target the Makefile lost,
a module that moved, or a route no test calls fails here instead of in front of
a clinic."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path
from typing import Dict, List, Set

import pytest

from assistant.paths import PROJECT_ROOT

DOCS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
MAKEFILE = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
TESTS_TEXT = "\n".join(p.read_text(encoding="utf-8") for p in (PROJECT_ROOT / "tests").rglob("*.py"))

MAKE = re.compile(r"(?:^|[\s`(])make ([a-z][a-z0-9-]*)")
PYTHON_MODULE = re.compile(r"python(?:3(?:\.10)?)? -m ([a-z_][\w.]*)")
CURL_PATH = re.compile(r"curl [^\n]*?https?://[^/\s]+(/[^\s'\"]*)")
# targets that install or run everything; their recipes are what `make test` itself runs
WHOLE_PROJECT = {"run", "test", "setup", "model", "data", "lint", "typecheck", "pytest", "shell", "help",
                 "test-unit", "test-model", "test-services", "test-browser", "browser", "axe", "services",
                 "lock", "clean"}


def documented(pattern: re.Pattern[str]) -> Dict[str, List[str]]:
    """What `pattern` names in the docs (code blocks and inline), with where."""
    found: Dict[str, List[str]] = {}
    for doc in DOCS:
        text = re.sub(r"\\\n\s*", " ", doc.read_text(encoding="utf-8"))
        for match in pattern.finditer(text):
            found.setdefault(match.group(1), []).append(doc.name)
    return found


def makefile_targets() -> Set[str]:
    return set(re.findall(r"^([a-z][a-z0-9-]*):", MAKEFILE, flags=re.M))


def recipe_modules(target: str) -> List[str]:
    recipe = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n?)*)", MAKEFILE, flags=re.M)
    assert recipe, target
    return re.findall(r"\$\(PY\) -m ([\w.]+)", recipe.group(1))


def test_the_docs_name_commands_at_all() -> None:
    assert {"run", "test", "staff", "requests", "new-topic"} <= set(documented(MAKE))
    assert "assistant.settings.clinic" in documented(PYTHON_MODULE)


@pytest.mark.parametrize("target", sorted(documented(MAKE)))
def test_every_documented_make_target_exists_and_make_help_lists_it(target: str) -> None:
    assert target in makefile_targets(), f"`make {target}` in {documented(MAKE)[target]}: no such target"
    listed = subprocess.run(["make", "--no-print-directory", "help"], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, check=True).stdout
    assert re.search(rf"^  make {re.escape(target)}\s", listed, flags=re.M), f"make help lacks {target}"


@pytest.mark.parametrize("target", sorted(set(documented(MAKE)) - WHOLE_PROJECT))
def test_every_documented_tool_is_run_by_a_test(target: str) -> None:
    """The module behind `make <target>` is imported or started by some test."""
    modules = recipe_modules(target)
    assert modules, f"make {target} runs no python module"
    for module in modules:
        package, _, name = module.rpartition(".")
        assert (module in TESTS_TEXT or f"from {package} import {name}" in TESTS_TEXT), \
            f"`make {target}` runs {module}, which no test exercises"


@pytest.mark.parametrize("module", sorted(documented(PYTHON_MODULE)))
def test_every_documented_python_module_exists_and_runs_as_a_script(module: str) -> None:
    spec = importlib.util.find_spec(module)
    assert spec and spec.origin, f"python -m {module} in {documented(PYTHON_MODULE)[module]}: no such module"
    assert '__name__ == "__main__"' in Path(spec.origin).read_text(encoding="utf-8"), \
        f"{module} does nothing when run with python -m"


@pytest.mark.parametrize("path", sorted(documented(CURL_PATH)))
def test_every_documented_url_is_called_by_a_test(path: str) -> None:
    assert path in TESTS_TEXT, f"curl {path} in {documented(CURL_PATH)[path]}: no test calls it"
