"""environment.yml (conda) and pyproject.toml (pip) list the same dependencies with the
same version bounds, so neither install route drifts from the other."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch"}  # conda-forge's names where they differ from PyPI's


def _split(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def pip_requirements(pyproject: dict) -> dict[str, str]:
    """name -> version bound of the core dependencies and the dev and book extras."""
    project = pyproject["project"]
    extras = project["optional-dependencies"]
    return dict(_split(r) for r in [*project["dependencies"], *extras["dev"], *extras["book"]])


def conda_requirements(env: dict) -> dict[str, str]:
    """name -> version bound as pip writes it ("=X" becomes "==X"), conda and pip sections."""
    found = {}
    for dep in env["dependencies"]:
        for item in dep["pip"] if isinstance(dep, dict) else [dep]:
            if item.startswith("-e ") or item in ("pip", ".") or item.startswith("python="):
                continue
            name, spec = _split(item)
            found[CONDA_TO_PIP.get(name, name)] = re.sub(r"^=(?!=)", "==", spec)
    return found


def _differences(pip: dict[str, str], conda: dict[str, str]) -> list[str]:
    return [
        f"{name}: pyproject {pip.get(name, 'missing')!r}, environment.yml {conda.get(name, 'missing')!r}"
        for name in sorted(pip.keys() | conda.keys())
        if pip.get(name) != conda.get(name)
    ]


def test_environment_and_pyproject_list_the_same_dependencies():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert _differences(pip_requirements(pyproject), conda_requirements(env)) == []


def test_environment_uses_conda_forge_alone():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]


def test_a_drifted_bound_or_a_missing_package_is_reported():
    pip = {"torch": "==2.14.1", "numpy": ">=1.24", "ruff": ">=0.6"}
    conda = conda_requirements({"dependencies": ["pytorch=2.14.0", "numpy>=1.24", {"pip": ["seaborn>=0.13"]}]})
    assert conda == {"torch": "==2.14.0", "numpy": ">=1.24", "seaborn": ">=0.13"}
    assert _differences(pip, conda) == [
        "ruff: pyproject '>=0.6', environment.yml 'missing'",
        "seaborn: pyproject 'missing', environment.yml '>=0.13'",
        "torch: pyproject '==2.14.1', environment.yml '==2.14.0'",
    ]
