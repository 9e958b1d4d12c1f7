"""Import an example or benchmark script (examples/NAME.py, benchmarks/NAME.py) as a module, so tests can call its
``main(args)`` or its helpers."""

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_example(name: str, folder: str = "examples"):
    spec = importlib.util.spec_from_file_location(name, REPO / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module
