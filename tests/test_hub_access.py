"""hub_access_finemoltex: a Hub id that cannot be fetched fails at once, in one line that says why; and the scripts'
one-line errors (run_script). No network is touched: the "Hub" here is a closed port on this machine."""

import os
import subprocess
import sys
import time

import pytest

from conftest import REPO
from modeling_finemoltex import hub_access_finemoltex as access
from modeling_finemoltex.arguments_finemoltex import run_script

CLOSED = "http://127.0.0.1:9"  # discard port: nothing listens, the connection is refused at once


@pytest.fixture
def unreachable_hub(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", CLOSED)
    access._reachable.cache_clear()
    yield
    access._reachable.cache_clear()


def test_access_cases(tmp_path, unreachable_hub, monkeypatch):
    start = time.perf_counter()
    assert not access.hub_reachable(timeout=2.0)
    assert time.perf_counter() - start < 2.5
    assert access.hub_access(tmp_path) == "local"
    assert access.hub_access("someone/model") == "no network"
    assert access.from_pretrained_kwargs("someone/model") == {"local_files_only": True}
    assert access.from_pretrained_kwargs("someone/model", model=True)["adapter_kwargs"] == {"local_files_only": True}
    assert access.from_pretrained_kwargs(tmp_path, model=True) == {}
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert access.hub_access("someone/model") == "offline"
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(access, "hub_reachable", lambda timeout=3.0: True)
    assert access.hub_access("someone/model") == "hub" and access.from_pretrained_kwargs("someone/model") == {}


def test_load_errors_say_why_in_one_line(tmp_path, unreachable_hub, monkeypatch):
    cause = OSError("We couldn't connect to 'https://huggingface.co' to load the files.\nCheck your connection.")
    message = str(access.load_error("the text encoder", "someone/model", cause, hint="Pass a folder."))
    assert message.startswith("Could not load the text encoder 'someone/model': it is not a local folder, and there is "
                              "no network") and message.endswith("Pass a folder.") and "\n" not in message
    message = str(access.load_error("the model", tmp_path, OSError("no file named config.json\nmore")))
    assert message == f"Could not load the model from the folder {tmp_path}: no file named config.json."
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "the Hub is offline (HF_HUB_OFFLINE=1) with no cached copy" in str(access.load_error("x", "a/b", cause))


def test_network_errors_are_told_from_answers():
    class ConnectError(Exception):
        pass

    assert access.is_network_error(ConnectError("[Errno -2] Name or service not known"))
    assert not access.is_network_error(ValueError("401 Unauthorized"))


def test_script_without_network_fails_at_once_in_one_line(tmp_path):
    """zero_shot_retrieval.py with a Hub id and no Hub: one `error:` line within seconds, not a minute of retries
    and a traceback."""
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_ENDPOINT=CLOSED, HF_HOME=str(tmp_path / "hf_home"), OMP_NUM_THREADS="1")
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, str(REPO / "examples" / "zero_shot_retrieval.py"), "--model_name_or_path", "someone/finemoltex",
         "--data_file", str(REPO / "examples" / "data" / "chebi20_sample.tsv")],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "there is no network" in errors[0] and "someone/finemoltex" in errors[0]
    assert "Traceback" not in run.stderr and "Retrying" not in run.stderr
    assert time.perf_counter() - start < 60


def test_run_script_turns_user_errors_into_one_line(monkeypatch, capsys):
    def bad_input(argv):
        raise ValueError(f"row 3 of {argv[0]}: 'C1CC(' is not a SMILES")

    with pytest.raises(SystemExit) as exit_info:
        run_script(bad_input, ["data.csv"])
    assert exit_info.value.code == "error: row 3 of data.csv: 'C1CC(' is not a SMILES"

    def missing_key(argv):
        raise KeyError("no column 'smiles'")

    with pytest.raises(SystemExit) as exit_info:
        run_script(missing_key, [])
    assert exit_info.value.code == "error: no column 'smiles'"
    monkeypatch.setenv("FINEMOLTEX_TRACEBACK", "1")
    with pytest.raises(ValueError):
        run_script(bad_input, ["data.csv"])

    def bug(argv):
        raise ZeroDivisionError("a bug keeps its traceback")

    monkeypatch.delenv("FINEMOLTEX_TRACEBACK")
    with pytest.raises(ZeroDivisionError):
        run_script(bug, [])
