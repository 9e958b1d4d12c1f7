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


def _parser_and_help(name, monkeypatch, flag="--help"):
    """The example's argparse parser (caught as it parses) and its help text."""
    import argparse

    caught = {}
    original = argparse.ArgumentParser.parse_known_args

    def catch(self, args=None, namespace=None):
        caught.setdefault("parser", self)
        return original(self, args, namespace)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", catch)
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    spec = importlib.util.spec_from_file_location(f"_cli_{name}", REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        module.main([flag])
    return caught["parser"], out.getvalue()


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_listed_option_has_help_and_its_default_once(name, monkeypatch):
    import argparse

    parser, text = _parser_and_help(name, monkeypatch)
    for action in parser._actions:
        if action.option_strings and action.help is not argparse.SUPPRESS:
            assert action.help and action.help.strip(), f"{name}: {action.option_strings[0]} has no help line"
    assert "(default: None)" not in text and "{None," not in text
    assert text.count("(default:") <= sum(1 for a in parser._actions if a.help is not argparse.SUPPRESS)
    for line in text.splitlines():  # each option listed once, without its dashed alias
        if line.startswith("  --"):  # an option's own line, not a wrapped help text
            assert ", --" not in line, line


def test_pretrain_help_is_short_grouped_and_true(monkeypatch):
    _, text = _parser_and_help("pretrain", monkeypatch)
    assert len(text.splitlines()) < 250
    for group in ("\nmodel:\n", "\ndata:\n", "\ntraining ("):
        assert group in text
    assert "--lr_scheduler_type" not in text and "--help-all lists them all" in text
    assert "400 steps" in text.replace("\n", " ").replace("  ", " ")  # what a bare run does, not just "-1"
    _, everything = _parser_and_help("pretrain", monkeypatch, flag="--help-all")
    assert "--lr_scheduler_type" in everything and len(everything) > len(text)
