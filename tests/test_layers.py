"""The package's layers: a lower layer never imports a higher one, and a chapter imports
only its own study module, its parameters (`book.chapter`) and the ledger."""

from __future__ import annotations

import ast
from pathlib import Path

import jupytext
import pytest

import studylib
from studylib.book import runner

PACKAGE = Path(studylib.__file__).parent

# Lowest first. A module may import its own layer's modules and any lower layer's, never a
# higher one's; two different layers of the same rank may not import each other.
LAYERS = {
    "foundation": (0, ("storage", "sizes", "config", "data", "progress")),
    "theory": (1, ("theory",)),
    "models": (1, ("models",)),
    "book": (1, ("book",)),
    "measure": (2, ("measure",)),
    "attacks": (3, ("attacks",)),
    "training": (4, ("training",)),
    "benchmarks": (5, ("benchmarks",)),
    "studies": (6, ("studies",)),
    "entry": (7, ("cli", "__main__", "__init__")),
}
STUDY_OF = {
    "00_overview": "overview",
    "01_theory": "theory",
    "02_training": "training",
    "03_likelihood": "likelihood",
    "04_attacks": "attacks",
    "05_interpolations": "interpolations",
    "06_bg_mnist": "bg_mnist",
    "07_flow_robustness": "flow_robustness",
    "08_appendices": "appendices",
    "09_recipe": "recipe",
    "10_scale": "scale",
}


def _imports(source: str) -> set[str]:
    """Every module (and `from` name) a piece of Python imports, fully qualified."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def layer_of(dotted: str) -> str:
    """The layer of a studylib module or name, from the first part of its path under studylib."""
    head = dotted.split(".")[1] if "." in dotted else "__init__"
    head = head.removesuffix(".py")
    found = [name for name, (_, parts) in LAYERS.items() if head in parts]
    if not found:
        raise AssertionError(f"{dotted}: in no layer; add its folder or module to LAYERS")
    return found[0]


def test_every_module_has_a_layer_and_the_root_stays_small():
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= 8, f"the package root holds {root}; put components in their layer's folder"
    for path in PACKAGE.rglob("*.py"):
        layer_of("studylib." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))


def test_no_layer_imports_a_higher_one():
    for path in PACKAGE.rglob("*.py"):
        module = "studylib." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        mine = layer_of(module)
        for name in _imports(path.read_text()):
            if name.split(".")[0] != "studylib" or name == "studylib":
                continue
            theirs = layer_of(name)
            if theirs == mine:
                continue
            assert LAYERS[theirs][0] < LAYERS[mine][0], f"{module} ({mine}) imports {name} ({theirs})"


def test_the_checker_sees_a_violation():
    assert _imports("from studylib import studies\nimport studylib.studies.common") == {
        "studylib.studies",
        "studylib.studies.common",
    }
    assert layer_of("studylib.training.zoo") == "training" and layer_of("studylib.config.Arch") == "foundation"
    assert LAYERS[layer_of("studylib.studies.common")][0] > LAYERS[layer_of("studylib.models.flows")][0]
    with pytest.raises(AssertionError, match="in no layer"):
        layer_of("studylib.nowhere")


@pytest.mark.parametrize("md", runner.chapters(), ids=lambda p: p.stem)
def test_chapter_imports_only_its_study_chapter_and_ledger(md):
    assert md.stem in STUDY_OF, f"{md.stem}: add it to STUDY_OF with its study module"
    allowed = {"studylib.book.chapter", "studylib.book.ledger", f"studylib.studies.{STUDY_OF[md.stem]}"}
    assert (PACKAGE / "studies" / f"{STUDY_OF[md.stem]}.py").exists()
    cells = jupytext.read(md).cells
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    ours = {n for n in _imports(code) if n.split(".")[0] == "studylib"}
    stray = {n for n in ours if not any(n == a or n.startswith(a + ".") for a in allowed)}
    assert not stray, f"{md.stem} imports {stray}; a chapter uses its study module, chapter and ledger only"


def test_the_public_api_is_reachable_from_the_package_root():
    from studylib import data, evaluate, zoo
    from studylib.measure import evaluate as measure_evaluate
    from studylib.training import zoo as training_zoo

    assert zoo is training_zoo and evaluate is measure_evaluate and callable(data.load)
    with pytest.raises(AttributeError, match="no attribute 'nowhere'"):
        studylib.nowhere  # noqa: B018
