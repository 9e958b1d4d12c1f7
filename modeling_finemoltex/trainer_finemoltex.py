# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""`Trainer` pieces for FineMolTex pre-training (used by ``examples/pretrain.py`` and ``examples/pretrain_graph.py``).

* `FineMolTexTrainer`: calls the model with ``return_loss=True``, stops on a non-finite loss *before* the backward
  pass and optimizer step (the last checkpoint on disk stays the last good one), logs the contrastive, masked-motif
  and masked-LM losses and the in-batch retrieval accuracy separately (training logs and ``eval_*`` metrics), uses
  fixed masks in evaluation (comparable numbers across evaluations, no draw on the training RNG), and measures the
  time spent waiting on the data loader.
* `EpochSeededLengthGroupedSampler`: length-grouped batches whose order is a function of (seed, epoch) only, so a
  resumed run sees the same batches as an uninterrupted one, and every rank draws the same order.
* `TimeBudgetCallback`: stop (and save) after a wall-clock budget; `FineMolTexTrainer` paces a step schedule's
  warm-up and decay by it when it ends first (`pace_schedule_by_budget`).

No RDKit here: this module only sees tensors.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch.optim.lr_scheduler import LambdaLR
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import get_last_checkpoint

#: Per-batch values of `FineMolTexForPreTrainingOutput` logged next to the total loss.
COMPONENTS = ("contrastive_loss", "masked_motif_loss", "masked_lm_loss", "contrastive_accuracy")


class NonFiniteLossError(RuntimeError):
    """Raised when a training loss is NaN or infinite (before its backward pass)."""


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """`LengthGroupedSampler` with a generator re-seeded from ``seed + epoch`` at every `set_epoch`.

    transformers' sampler draws from the global RNG, so the order of an epoch depends on everything that consumed
    random numbers before it (a resumed run differs). Here it does not.
    """

    def __init__(self, batch_size: int, lengths: list[int], seed: int = 0):
        super().__init__(batch_size, lengths=list(lengths), generator=torch.Generator())
        self.seed = int(seed)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.generator.manual_seed(self.seed + self.epoch)

    def __iter__(self):
        self.generator.manual_seed(self.seed + self.epoch)  # the same order however often it is iterated
        return super().__iter__()


class _SamplerEpochCallback(TrainerCallback):
    """Tell the sampler its epoch at every epoch start. Trainer's own `set_epoch` does not reach it on a resumed
    multi-process run: the skip of the batches already trained wraps accelerate's per-process shard of the batch
    sampler once more, deeper than `set_epoch` looks, so every rank would replay epoch 0's order."""

    def __init__(self, sampler: "EpochSeededLengthGroupedSampler"):
        self.sampler = sampler

    def on_epoch_begin(self, args, state, control, **kwargs):
        # state.epoch is the number of epochs done (fractional in a resumed epoch), exact at epoch boundaries
        self.sampler.set_epoch(math.floor(state.epoch + 1e-9))


class TimeBudgetCallback(TrainerCallback):
    """Stop training once ``max_minutes`` of wall-clock time have passed since training began (then the Trainer
    saves and evaluates as at a normal end), and give the learning-rate schedule the same clock.

    In a multi-process run every process must stop after the same step (the others would wait forever in their
    next collective), so the elapsed time is agreed at each step end: the maximum over the processes.
    `fraction_elapsed` is that agreed time over the budget; `FineMolTexTrainer` runs the warm-up and decay on it
    when the budget ends before the step count would (see `pace_schedule_by_budget`). A resumed run starts a fresh
    budget.

    Args:
        max_minutes: the budget.
        clock: seconds as a float (default `time.perf_counter`; tests pass a fake one).
    """

    def __init__(self, max_minutes: float, clock: Callable[[], float] = time.perf_counter):
        self.max_seconds = float(max_minutes) * 60.0
        if not self.max_seconds > 0:
            raise ValueError(f"max_minutes must be positive, got {max_minutes!r}")
        self.clock = clock
        self.start = None
        self.elapsed_seconds = 0.0
        self.stopped_at_step = None
        self.paced_from_step = None  # first step whose learning rate the budget, not the step count, set

    @property
    def fraction_elapsed(self) -> float:
        return self.elapsed_seconds / self.max_seconds

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = self.clock()
        self.elapsed_seconds = 0.0

    def _agreed_elapsed(self, args) -> float:
        elapsed = self.clock() - self.start
        if getattr(args, "world_size", 1) > 1 and dist.is_available() and dist.is_initialized():
            value = torch.tensor([elapsed], dtype=torch.float64, device=args.device)
            dist.all_reduce(value, op=dist.ReduceOp.MAX)
            elapsed = value.item()
        return elapsed

    def on_step_end(self, args, state, control, **kwargs):
        if self.start is None:
            return control
        self.elapsed_seconds = self._agreed_elapsed(args)
        if self.elapsed_seconds > self.max_seconds:
            control.should_training_stop = True
            control.should_save = args.save_strategy != "no"
            self.stopped_at_step = state.global_step
        return control


def pace_schedule_by_budget(scheduler, budget: TimeBudgetCallback, num_training_steps: int) -> bool:
    """Make a `LambdaLR` schedule (transformers' linear, cosine, constant-with-warm-up...) end with the time budget
    when that comes first: the learning rate at step ``s`` is the schedule's at step
    ``max(s, budget.fraction_elapsed * num_training_steps)``. A fractional warm-up then ends at that fraction of the
    budget and the decay reaches its end when the budget does; a run that finishes its steps inside the budget is
    unchanged. Without it, a budget shorter than the step count stops the run part-way through its schedule: with
    a generous step count (say ``--num_train_epochs 1000`` and ``--max_train_minutes 10``), still in the warm-up.
    Returns False (and changes nothing) for a scheduler that is not a `LambdaLR`."""
    if not isinstance(scheduler, LambdaLR):
        return False

    def paced(lr_lambda):
        def lr_factor(step):
            virtual = int(budget.fraction_elapsed * num_training_steps)
            if virtual > step and budget.paced_from_step is None:
                budget.paced_from_step = step
            return lr_lambda(max(step, virtual))
        return lr_factor  # a plain function: LambdaLR.state_dict leaves it out, as it does transformers' own

    scheduler.lr_lambdas = [paced(f) for f in scheduler.lr_lambdas]
    return True


def format_log(logs: dict) -> str:
    """One log line: ``key value`` pairs with numbers as numbers (4 significant digits), not a dict of strings."""
    parts = []
    for key, value in logs.items():
        if key == "total_flos":
            continue
        if isinstance(value, float):
            value = f"{value:.4g}"
        parts.append(f"{key} {value}")
    return " | ".join(parts)


class LogLineProgressCallback(ProgressCallback):
    """transformers' progress bars, with each log written as one readable line (`format_log`) instead of a dict
    whose numbers print as quoted strings."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs:
            self.training_bar.write(f"step {state.global_step}: {format_log(logs)}")


class LogLinePrinterCallback(TrainerCallback):
    """transformers' `PrinterCallback` (logs without progress bars) writing `format_log` lines."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            print(f"step {state.global_step}: {format_log(logs)}", flush=True)


def _batch_size(inputs: dict) -> int:
    """Molecules (or pairs) in a batch: rows of the text or motif ids, else the molecules of ``graph_batch``."""
    for key in ("input_ids", "motif_input_ids"):
        if inputs.get(key) is not None:
            return int(inputs[key].shape[0])
    graph_batch = inputs["graph_batch"]
    return int(graph_batch[-1]) + 1 if graph_batch.numel() else 0


class FineMolTexTrainer(Trainer):
    """`Trainer` for `FineMolTexForPreTraining` and `FineMolTexGraphForAttributeMasking` (see the module docstring).

    Args (on top of `Trainer`'s):
        eval_mask_seed: seed of the masks drawn in evaluation (batch ``i`` uses ``eval_mask_seed + i``).
        check_finite_loss: raise `NonFiniteLossError` on a NaN/inf training loss (one device sync per step).
        components: the output fields logged next to the loss (default `COMPONENTS`; graph pre-training logs
            ``("masked_atom_accuracy",)``).

    With a `TimeBudgetCallback` among its callbacks, the learning-rate schedule it creates is paced by that budget
    (`pace_schedule_by_budget`).
    """

    def __init__(self, *args, eval_mask_seed: int = 0, check_finite_loss: bool = True,
                 components: tuple[str, ...] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.components = tuple(components) if components is not None else COMPONENTS
        # The model returns a per-batch mean: Trainer must divide by the gradient-accumulation steps.
        self.loss_is_scaled_for_ga = False
        self.eval_mask_seed = int(eval_mask_seed)
        self.check_finite_loss = check_finite_loss
        self._sums = {"train": None, "eval": None}
        self._counts = {"train": 0, "eval": 0}
        self._eval_batch_index = 0
        self._absent: set[str] = set()  # components the model does not return (see `_accumulate`)
        self.data_wait_seconds = 0.0  # time spent in next(dataloader) during training
        if self.pop_callback(ProgressCallback) is not None:  # (absent with --disable_tqdm)
            self.add_callback(LogLineProgressCallback)
        if self.pop_callback(PrinterCallback) is not None:  # (present with --disable_tqdm)
            self.add_callback(LogLinePrinterCallback)

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        created = self.lr_scheduler is None
        scheduler = super().create_scheduler(num_training_steps, optimizer)
        budget = next((c for c in self.callback_handler.callbacks if isinstance(c, TimeBudgetCallback)), None)
        if created and budget is not None:
            pace_schedule_by_budget(scheduler, budget, num_training_steps)
        return scheduler

    # ------------------------------------------------------------------ data
    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        column = self.args.length_column_name
        if (
            self.args.train_sampling_strategy == "group_by_length"
            and hasattr(dataset, "column_names")
            and column in dataset.column_names
        ):
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            sampler = EpochSeededLengthGroupedSampler(
                self.args.train_batch_size * self.args.gradient_accumulation_steps, dataset[column], seed=seed
            )
            self.pop_callback(_SamplerEpochCallback)  # (from an earlier call)
            self.add_callback(_SamplerEpochCallback(sampler))
            return sampler
        return super()._get_train_sampler(train_dataset)

    def get_eval_dataloader(self, eval_dataset=None):
        # `dataloader_drop_last` is for training (a last batch of one pair has no negatives): evaluate every pair.
        drop_last = self.args.dataloader_drop_last
        self.args.dataloader_drop_last = False
        try:
            return super().get_eval_dataloader(eval_dataset)
        finally:
            self.args.dataloader_drop_last = drop_last

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        start = time.perf_counter()
        out = super().get_batch_samples(epoch_iterator, num_batches, device)
        self.data_wait_seconds += time.perf_counter() - start
        return out

    # ------------------------------------------------------------------ loss
    def _accumulate(self, split: str, outputs, batch_size: int) -> None:
        # A component the model does not compute (the masked losses of a contrastive-only run) is left out of the
        # logs; a NaN one is kept, and shows.
        parts = [getattr(outputs, name) for name in self.components]
        self._absent = {name for name, part in zip(self.components, parts) if part is None}
        values = torch.stack([
            part.detach().float() if part is not None else torch.zeros((), device=outputs.loss.device) for part in parts
        ]) * batch_size
        self._sums[split] = values if self._sums[split] is None else self._sums[split] + values
        self._counts[split] += batch_size

    def _reduce(self, split: str) -> dict[str, float]:
        """Means of the accumulated components over all processes since the last call (then reset)."""
        sums = self._sums[split]
        if sums is None:
            sums = torch.zeros(len(self.components), device=self.args.device)
        packed = torch.cat([sums.to(self.args.device), torch.tensor([float(self._counts[split])], device=self.args.device)])
        if self.accelerator.num_processes > 1:
            packed = self.accelerator.reduce(packed, reduction="sum")
        self._sums[split], self._counts[split] = None, 0
        count = float(packed[-1])
        if count == 0:
            return {}
        return {
            name: round(float(v) / count, 4) for name, v in zip(self.components, packed[:-1].tolist()) if name not in self._absent
        }

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        inputs["return_loss"] = True
        outputs = model(**inputs)
        loss = outputs.loss
        split = "train" if model.training else "eval"
        if split == "train" and self.check_finite_loss and not bool(torch.isfinite(loss.detach()).all()):
            parts = ", ".join(
                f"{name}={float(getattr(outputs, name).detach()):.4g}" for name in self.components if getattr(outputs, name) is not None
            )
            last = get_last_checkpoint(self.args.output_dir) if self.args.output_dir else None
            where = f"the last good checkpoint is {last}" if last else "no checkpoint was saved yet"
            raise NonFiniteLossError(
                f"Non-finite training loss {float(loss.detach()):.4g} at step {self.state.global_step + 1} ({parts}); "
                f"stopped before the optimizer step: {where}. Lower the learning rate, check the data, or resume "
                "with --resume after changing them."
            )
        self._accumulate(split, outputs, _batch_size(inputs))
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training log: add the component means since the previous one
            logs.update(self._reduce("train"))
        super().log(logs, start_time)

    # ------------------------------------------------------------------ evaluation
    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        inputs = dict(inputs)
        inputs["mask_seed"] = self.eval_mask_seed + self._eval_batch_index
        self._eval_batch_index += 1
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"):
        self._sums["eval"], self._counts["eval"], self._eval_batch_index = None, 0, 0
        output = super().evaluation_loop(dataloader, description, True, ignore_keys, metric_key_prefix)
        for name, value in self._reduce("eval").items():
            output.metrics[f"{metric_key_prefix}_{name}"] = value
        return output


#: glibc's malloc threshold above which blocks are mmap-ed (and given back to the system when freed).
HEAP_MMAP_THRESHOLD = 4 * 2**20


def limit_heap_growth(threshold: int = HEAP_MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes (Linux/glibc only; a no-op where ``MALLOC_MMAP_THRESHOLD_``
    is set, and elsewhere). Returns whether it was applied.

    Why: glibc raises the threshold (up to 32 MB) each time a large mmap-ed block is freed, so after a few steps
    every activation buffer of a CPU step comes from the heap; with dynamic padding their sizes change every
    step, the heap fragments and the process keeps memory it no longer uses. Measured on the one-hour recipe
    (batch 32): RSS 4.1 GB after 150 steps (7.2 GB after 60 minutes) with glibc's default, 2.3 GB with 4 MB,
    for ~3% of the step time (at 1 MB: ~15%)."""
    import ctypes
    import ctypes.util
    import os
    import sys

    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    m_mmap_threshold = -3  # glibc's M_MMAP_THRESHOLD
    return bool(mallopt(m_mmap_threshold, int(threshold)))


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def set_cpu_threads(requested: int | None = None) -> int | None:
    """Torch CPU threads of this process; -> the number set, or None when left to torch.

    ``requested`` wins. Otherwise, in a process started by ``accelerate launch`` with ``OMP_NUM_THREADS=1``: the
    cores this process may use, shared by the processes of this machine. accelerate sets ``OMP_NUM_THREADS=1``
    unless it is given ``--cpu`` or ``--num_cpu_threads_per_process``, so the README's ``accelerate launch`` command
    trained on one core of two (measured: 17 instead of 32 pairs/s). Plain ``python`` runs keep torch's choice."""
    if requested:
        torch.set_num_threads(int(requested))
        return int(requested)
    launched_by_accelerate = "ACCELERATE_DYNAMO_BACKEND" in os.environ
    if not launched_by_accelerate or os.environ.get("OMP_NUM_THREADS") != "1":
        return None
    local_processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    threads = max(1, _usable_cores() // local_processes)
    torch.set_num_threads(threads)
    return threads


# ---------------------------------------------------------------------------------------------- arguments
@dataclass
class FineMolTexTrainingArguments(TrainingArguments):
    """`TrainingArguments` plus what every FineMolTex training script adds: Trainer checkpoints beside the model
    folder (`checkpoint_dir`), `resume`, a time budget (`max_train_minutes`) and `cpu_threads` (`set_cpu_threads`)."""

    _argument_group_name = "training (the Trainer's options most runs set; --help-all lists every one)"

    checkpoint_dir: str | None = field(
        default=None,
        metadata={"help": "Trainer checkpoints (weights, optimizer and scheduler state, for --resume). Default: "
                  "<output_dir>-checkpoints, beside the model folder."},
    )
    resume: bool = field(
        default=False, metadata={"help": "Resume from the last checkpoint in the checkpoint folder if there is one."}
    )
    max_train_minutes: float | None = field(
        default=None, metadata={"help": "Stop (and save) after this many minutes of training. When that comes "
                                "before the step count, the learning-rate warm-up and decay run on this clock "
                                "instead (a resumed run starts a fresh budget)."}
    )
    cpu_threads: int | None = field(
        default=None,
        metadata={"help": "Torch threads per process on a CPU. Default: torch's choice, or under accelerate launch "
                  "(which sets OMP_NUM_THREADS=1) the machine's cores shared by its processes."},
    )


# ---------------------------------------------------------------------------------------------- run folders
def checkpoint_folder(model_dir: str | os.PathLike) -> str:
    """The default Trainer checkpoint folder of a model folder: its sibling ``<name>-checkpoints`` (checkpoints never
    sit inside what gets published)."""
    folder = Path(model_dir).expanduser()
    if folder.name in ("", ".", ".."):
        folder = folder.resolve()
    return str(folder.with_name(folder.name + "-checkpoints"))


def check_steps_left(checkpoint: str | os.PathLike, max_steps: int) -> None:
    """Refuse to resume from a checkpoint that already reached ``max_steps`` (Trainer would train on past it)."""
    state_file = Path(checkpoint) / "trainer_state.json"
    if max_steps <= 0 or not state_file.is_file():
        return
    done = int(json.loads(state_file.read_text()).get("global_step", 0))
    if done >= max_steps:
        raise ValueError(
            f"{checkpoint} has already trained {done} steps and --max_steps is {max_steps}: nothing left to do. "
            "Raise --max_steps to train on, or drop --resume to start again."
        )


def save_model_folder(trainer: Trainer, output_dir: str | os.PathLike, write_extra: Callable[[Path], None]) -> None:
    """The trained model plus what ``write_extra(folder)`` writes (processor, vocabulary, ...) into ``output_dir``,
    never half-written: all goes to a temporary folder inside it first, then each entry is moved into place with an
    atomic rename (a run killed while saving leaves the previous files whole)."""
    out = Path(output_dir)
    tmp = out / f".saving-{os.getpid()}"
    trainer.save_model(str(tmp))  # every rank (sharded models gather here); the main process writes
    if not trainer.is_world_process_zero():
        return
    write_extra(tmp)
    for entry in sorted(tmp.iterdir()):
        target = out / entry.name
        if entry.is_dir() and target.exists():
            shutil.rmtree(target)
        os.replace(entry, target)
    shutil.rmtree(tmp, ignore_errors=True)
    for stale in out.glob(".saving-*"):  # left by a run killed while saving
        shutil.rmtree(stale, ignore_errors=True)


def tokenisation_workers(requested: int | None, rows: int, rows_per_worker: int = 2000) -> int | None:
    """``datasets.map`` processes for ``rows`` rows: ``requested`` (default: all cores, at most 8), fewer when each
    would get under ``rows_per_worker`` rows (a worker pool costs ~1 s to start); None for one process."""
    n = requested if requested is not None else min(8, os.cpu_count() or 1)
    n = max(1, min(n, rows // rows_per_worker))
    return n if n > 1 else None


def last_logged(log_history: list[dict], key: str) -> float | None:
    """The last value of `key` in `trainer.state.log_history` (None if never logged)."""
    for entry in reversed(log_history):
        if key in entry and not (isinstance(entry[key], float) and math.isnan(entry[key])):
            return entry[key]
    return None


__all__ = [
    "COMPONENTS",
    "check_steps_left",
    "checkpoint_folder",
    "save_model_folder",
    "tokenisation_workers",
    "EpochSeededLengthGroupedSampler",
    "FineMolTexTrainer",
    "FineMolTexTrainingArguments",
    "NonFiniteLossError",
    "TimeBudgetCallback",
    "last_logged",
    "limit_heap_growth",
    "pace_schedule_by_budget",
    "set_cpu_threads",
]
