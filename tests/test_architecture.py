"""The layering written in pyproject.toml is kept (import-linter), and ruff's small rule set
passes: a wrong arrow between apps, or an unused or undefined name, fails the suite."""

import subprocess
import sys
import tomllib

from .conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300)


# `python -m importlinter.cli` does nothing: call the console script's entry point.
LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command as run; sys.argv[1:] = ['--no-cache']; sys.exit(run())"


def test_the_import_contracts_hold():
    result = _run("-c", LINT_IMPORTS)
    assert result.returncode == 0 and "0 broken" in result.stdout, result.stdout + result.stderr


def test_the_layers_name_every_app():
    packages = {name.rstrip("*") for name in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    layers = next(c for c in PYPROJECT["tool"]["importlinter"]["contracts"] if c["type"] == "layers")["layers"]
    layered = {name.strip() for layer in layers for name in layer.split("|")}
    # The command-line client is installed alone; its own contract keeps it apart.
    assert layered == packages - {"framecast_client"}


def test_ruff_finds_nothing():
    result = _run("-m", "ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr
