# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Command lines of the example scripts: `HfArgumentParser` with a short, grouped ``--help``.

* Each argument dataclass is its own help group (its ``_argument_group_name``, or its docstring's first line).
* Each option is listed once, as ``--name VALUE`` (the dashed alias and the ``--no_name`` half of a switch are
  accepted, not listed), and the usage line does not repeat them.
* A default is shown once: appended as ``(default: X)`` only when the help text does not already say what the
  default is, and never for ``None`` or a false switch.
* `run_script`: bad input, a missing file or no network end the script with one ``error:`` line, not a traceback.
* `TrainingArguments` brings ~150 options. ``--help`` shows the ones a script names as its own (``brief``) and
  says how many more there are; ``--help-all`` lists every one.

Not used by the models: nothing here is copied into a saved model folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence

from transformers import HfArgumentParser

HELP_ALL = "--help-all"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions keep their line breaks (examples of commands); defaults appear once (see the module)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            default is None
            or default is argparse.SUPPRESS
            or default is False
            or default == []
            or action.nargs == 0  # --help, store_true/false switches
            or re.search(r"\bdefault\b", text, flags=re.IGNORECASE)
        ):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"

    def _format_action_invocation(self, action: argparse.Action) -> str:
        # `--name VALUE` once: HfArgumentParser's dashed alias (--name-with-dashes) is accepted, not listed
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        return f"{action.option_strings[0]} {self._format_args(action, self._get_default_metavar_for_optional(action))}"


def _group_name(dtype: type) -> str:
    name = getattr(dtype, "_argument_group_name", None)
    if name:
        return name
    doc = (dtype.__doc__ or "").strip().splitlines()
    # dataclasses write a signature as their docstring when they have none: not a title
    return doc[0].rstrip(".") if doc and not doc[0].startswith(dtype.__name__ + "(") else dtype.__name__


def script_parser(
    dataclass_types: type | Iterable[type], description: str | None = None, brief: dict[type, Sequence[str]] | None = None,
    help_all: bool = False,
) -> HfArgumentParser:
    """`HfArgumentParser` over ``dataclass_types``, one help group each.

    brief: for a dataclass with many inherited options (a `TrainingArguments` subclass), the field names ``--help``
    shows; its other options stay accepted, listed by ``--help-all`` (``help_all=True``)."""
    types = [dataclass_types] if isinstance(dataclass_types, type) else list(dataclass_types)
    for dtype in types:  # HfArgumentParser groups a dataclass by this attribute
        if "_argument_group_name" not in vars(dtype):
            dtype._argument_group_name = _group_name(dtype)
    parser = HfArgumentParser(types, description=description, formatter_class=HelpFormatter)
    required = [a.option_strings[0] + " " + a.dest.upper() for a in parser._actions if a.required and a.option_strings]
    parser.usage = " ".join(["%(prog)s", *required, "[options]"])  # the options are listed below, once
    for action in parser._actions:
        if action.choices and None in action.choices:  # an Optional[Literal[...]] field: None is "not given"
            action.metavar = "{" + ",".join(str(c) for c in action.choices if c is not None) + "}"
        if action.option_strings and action.option_strings[0].startswith("--no_"):  # --no_x: the switch's other half
            action.help = argparse.SUPPRESS
    hidden = 0
    for dtype, names in (brief or {}).items():
        shown = set(names)
        fields = {f.name for f in dataclasses.fields(dtype)}
        unknown = shown - fields
        if unknown:
            raise ValueError(f"brief help names fields {sorted(unknown)} that {dtype.__name__} does not have")
        if help_all:
            continue
        for action in parser._actions:
            if action.dest in fields and action.dest not in shown and action.help is not argparse.SUPPRESS:
                action.help = argparse.SUPPRESS
                hidden += 1
    if hidden:
        parser.epilog = (
            f"{hidden} more options of transformers' TrainingArguments (optimiser, logging, saving, hardware, Hub) "
            f"are accepted: {HELP_ALL} lists them all."
        )
    parser.add_argument(HELP_ALL, action="help", help="Show every option, the Trainer's included, and exit.")
    return parser


def parse_script_arguments(
    dataclass_types: type | Iterable[type], args: list[str] | None = None, description: str | None = None,
    brief: dict[type, Sequence[str]] | None = None,
) -> tuple:
    """Parse a command line (``args``, or ``sys.argv[1:]``) into the dataclasses, with `script_parser`'s help."""
    args = sys.argv[1:] if args is None else list(args)
    parser = script_parser(dataclass_types, description, brief, help_all=HELP_ALL in args)
    return parser.parse_args_into_dataclasses(args=args)


#: What a script reports as one line: bad input, missing files, no network (their messages name the item).
USER_ERRORS = (OSError, ValueError, TypeError, KeyError)


def run_script(main: Callable[[list[str]], object], argv: list[str] | None = None) -> None:
    """Run a script's ``main`` on the command line; a `USER_ERRORS` exception ends it with ``error: <message>`` (exit
    status 1) instead of a traceback. ``FINEMOLTEX_TRACEBACK=1`` shows the traceback."""
    try:
        main(sys.argv[1:] if argv is None else argv)
    except USER_ERRORS as err:
        if os.environ.get("FINEMOLTEX_TRACEBACK", "") not in ("", "0"):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        sys.exit(f"error: {message}")


__all__ = ["HELP_ALL", "USER_ERRORS", "HelpFormatter", "parse_script_arguments", "run_script", "script_parser"]
