"""Real two-process runs on the CPU (gloo): the negatives gather with its backward, and examples/pretrain.py
launched with two processes, killed and resumed. About a minute in all; CI runs them."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from conftest import REPO
from test_pretrain import _history, tiny_args, tiny_text_encoder  # noqa: F401  (fixture)

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path, **extra) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "HOME": str(tmp_path / "home"), "HF_HOME": str(tmp_path / "hf_home"), **extra}


def test_gathered_negatives_equal_the_concatenated_batch_across_two_processes(tmp_path):
    """tests/_distributed_worker.py on two gloo ranks: loss and DDP gradients equal the single-process ones on
    the whole batch, the full objective keeps the ranks' weights identical, and a time budget stops both ranks
    after the same step."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(HERE / "_distributed_worker.py")]
    run = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True, timeout=300, cwd=REPO)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    for rank in (0, 1):
        assert f"rank {rank}: gathered loss" in run.stdout and "gradients equal" in run.stdout
        assert f"rank {rank}: weights identical on all 2 ranks" in run.stdout
        assert f"rank {rank}: time budget stopped all 2 ranks after step 100" in run.stdout


# examples/pretrain.py with callbacks that record each rank's final weights and can kill the run after a save
LAUNCHED = """
import os, sys
import torch
from transformers import TrainerCallback

sys.path.insert(0, {examples!r})
import pretrain


class RecordWeights(TrainerCallback):
    def on_train_end(self, args, state, control, model=None, **kwargs):
        # parameters: BatchNorm running statistics are per process between DDP's broadcasts (rank 0's are saved)
        weights = {{k: v.detach().clone() for k, v in model.named_parameters()}}
        torch.save(weights, os.path.join(os.environ["RANK_WEIGHTS"], f"rank{{args.process_index}}.pt"))


class KillAfterSave(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == int(os.environ.get("KILL_AT_STEP", "-1")):
            raise KeyboardInterrupt(f"killed after step {{state.global_step}}")


pretrain.main(sys.argv[1:], callbacks=[RecordWeights(), KillAfterSave()])
"""


def _launch(tmp_path, script, args, weights_dir, kill_at=None):
    weights_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(REPO / "examples" / "accelerate_configs" / "default.yaml"), "--multi_gpu", "--num_processes", "2",
           "--main_process_port", str(_free_port()), str(script), *args]
    env = _env(tmp_path, RANK_WEIGHTS=str(weights_dir), KILL_AT_STEP=str(kill_at or -1))
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)


def _same_weights(a: dict, b: dict, exact: bool) -> None:
    assert a.keys() == b.keys()
    for name in a:
        if exact:
            assert torch.equal(a[name], b[name]), name
        else:
            torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5, msg=name)


def test_two_process_pretraining_keeps_ranks_identical_and_resumes(tiny_text_encoder, tmp_path):  # noqa: F811
    script = tmp_path / "launched.py"
    script.write_text(textwrap.dedent(LAUNCHED.format(examples=str(REPO / "examples"))))
    cache = tmp_path / "cache"
    # 2 ranks x 4 pairs = 8 pairs a step, 24 pairs = 3 steps an epoch: the kill at step 4 is in the second epoch
    common = ["--max_steps", "6", "--max_train_samples", "24", "--max_eval_samples", "0",
              "--validation_split_percentage", "0", "--per_device_train_batch_size", "4", "--disable_tqdm", "false"]

    straight = _launch(tmp_path, script, tiny_args(tiny_text_encoder, tmp_path / "a", cache, *common), tmp_path / "wa")
    assert straight.returncode == 0, straight.stderr[-4000:]
    assert "FineMolTex pre-training finished" in straight.stdout and "6 steps" in straight.stdout
    assert "find_unused_parameters=True" not in straight.stderr  # every parameter trains: no DDP graph search
    assert "Expected to have finished reduction" not in straight.stderr
    ranks = [torch.load(tmp_path / "wa" / f"rank{r}.pt") for r in (0, 1)]
    _same_weights(ranks[0], ranks[1], exact=True)

    killed = _launch(tmp_path, script, tiny_args(tiny_text_encoder, tmp_path / "b", cache, *common), tmp_path / "wb",
                     kill_at=4)
    assert killed.returncode != 0 and "killed after step 4" in killed.stderr
    checkpoints = tmp_path / "b-checkpoints"
    assert (checkpoints / "checkpoint-4").is_dir() and not (checkpoints / "checkpoint-6").exists()
    assert {p.name for p in (checkpoints / "checkpoint-4").glob("rng_state_*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}

    resumed = _launch(tmp_path, script, tiny_args(tiny_text_encoder, tmp_path / "b", cache, *common, "--resume", "true"),
                      tmp_path / "wb")
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    resumed_ranks = [torch.load(tmp_path / "wb" / f"rank{r}.pt") for r in (0, 1)]
    _same_weights(resumed_ranks[0], resumed_ranks[1], exact=True)
    _same_weights(resumed_ranks[0], ranks[0], exact=False)  # = the uninterrupted two-process run

    def history(folder):
        return json.loads((folder / "trainer_state.json").read_text())["log_history"]

    a, b = {"log_history": history(tmp_path / "a")}, {"log_history": history(tmp_path / "b")}
    for key in ("loss", "contrastive_loss", "masked_motif_loss", "masked_lm_loss"):
        assert _history(b, key) == pytest.approx(_history(a, key), rel=1e-3, abs=1e-4), key
