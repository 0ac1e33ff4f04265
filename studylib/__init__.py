"""studylib: why class-conditional generative models fail as robust classifiers.

The package behind the book, in layers (each a folder; a lower one never imports a higher
one): models, theory, measure, attacks, training, benchmarks, the book's machinery, and
one study module per chapter. The public API for readers' own code:

    from studylib import data, evaluate, zoo
    model = zoo.get_model("mnist", "split", profile="quick")
"""

from __future__ import annotations

import importlib
from types import ModuleType

__version__ = "0.1.0"

# Names readers import from the package root, and where each lives.
_PUBLIC = {"zoo": "studylib.training.zoo", "evaluate": "studylib.measure.evaluate"}


def __getattr__(name: str) -> ModuleType:
    """Import a public module on first use, so `import studylib` stays light for the CLI."""
    if name in _PUBLIC:
        return importlib.import_module(_PUBLIC[name])
    raise AttributeError(f"module 'studylib' has no attribute {name!r}")
