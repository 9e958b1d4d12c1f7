"""Every command-line entry point answers ``--help`` (argparse formats each help string with ``%``: one stray
percent sign in a help text made ``pretrain.py --help`` crash)."""

import contextlib
import importlib
import importlib.util
import io
import sys

import pytest

from conftest import REPO

EXAMPLES = sorted(p.stem for p in (REPO / "examples").glob("*.py"))
BUILD_SCRIPTS = sorted(p.stem for p in (REPO / "datasets_scripts").glob("build_*.py"))


def _help(main) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code in (0, None)
    return out.getvalue()


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_help(name, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    spec = importlib.util.spec_from_file_location(f"_cli_{name}", REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    assert "usage:" in _help(module.main)


@pytest.mark.parametrize("name", BUILD_SCRIPTS)
def test_build_script_help(name):
    module = importlib.import_module(f"datasets_scripts.{name}")
    assert "usage:" in _help(module.main)
