"""The README's two commands stay true: CI runs exactly its test command."""

import re

from conftest import REPO


def _commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", quick, flags=re.S)


def test_readme_has_two_commands_and_ci_runs_the_test_one():
    commands = _commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    main_job, tests = commands
    assert "pytest" in tests and "pytest" not in main_job
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert tests in ci_lines


def test_main_job_script_exists():
    main_job = _commands()[0]
    for script in re.findall(r"(examples/\S+\.py)", main_job):
        assert (REPO / script).is_file(), script
