"""One rank of the real two-process (gloo) checks in test_distributed.py; started by torchrun.

Each rank holds half of an 8-pair batch. Checked on every rank, against a single-process computation on the
whole batch done in the same rank:
  1. the contrastive loss with gathered negatives equals the loss on the concatenated batch, and the gradients
     DDP leaves on every parameter equal the single-process gradients (the backward through the gather ran);
  2. after optimizer steps of the full pre-training objective (masked motifs and words too), every rank holds
     the same weights;
  3. a time budget whose clocks differ between ranks stops every rank after the same step, with the same elapsed
     fraction (which paces the learning rate).
The models run in eval mode for check 1: BatchNorm then uses its running statistics. In training mode each
process normalises with its own half's statistics (DDP keeps BatchNorm per process, and SyncBatchNorm has no CPU
kernel), the one thing that legitimately differs from the concatenated batch.
"""

import copy
import os
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _model_fixtures import random_batch, select_molecules, tiny_config  # noqa: E402

from modeling_finemoltex.modeling_finemoltex import FineMolTexForPreTraining, FineMolTexModel  # noqa: E402


def check_gathered_loss_and_gradients(rank: int, world: int) -> None:
    config = tiny_config()
    full = random_batch(config, batch_size=4 * world, seed=1)
    local = select_molecules(full, list(range(4 * rank, 4 * rank + 4)))
    torch.manual_seed(0)
    reference = FineMolTexModel(config).eval()
    # the contrastive loss alone leaves the co-attention layers without gradients
    model = DistributedDataParallel(copy.deepcopy(reference), find_unused_parameters=True)
    reference.config.gather_negatives = False  # the single-process computation, inside a distributed job

    out = model(**local, return_loss=True)
    assert out.logits_per_graph.shape == (4 * world, 4 * world), out.logits_per_graph.shape
    out.loss.backward()
    expected = reference(**full, return_loss=True)
    expected.loss.backward()
    torch.testing.assert_close(out.loss, expected.loss, rtol=1e-5, atol=1e-6)
    for (name, p), (_, q) in zip(model.module.named_parameters(), reference.named_parameters()):
        if q.grad is None:
            assert p.grad is None or not p.grad.any(), name
            continue
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=lambda m: f"{name}: {m}")
    print(f"rank {rank}: gathered loss {out.loss.item():.6f} == single-process {expected.loss.item():.6f}; "
          "gradients equal", flush=True)


def check_full_objective_keeps_ranks_identical(rank: int, world: int) -> None:
    config = tiny_config(hidden_dropout_prob=0.1)
    torch.manual_seed(0)
    model = DistributedDataParallel(FineMolTexForPreTraining(config).train())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    torch.manual_seed(100 + rank)  # masks and dropout differ between ranks, as in a real run
    for step in range(3):
        batch = random_batch(config, batch_size=4, seed=10 * step + rank)
        out = model(**batch, return_loss=True)
        assert torch.isfinite(out.loss) and out.masked_motif_loss is not None and out.masked_lm_loss is not None
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    flat = torch.cat([p.detach().flatten() for p in model.module.parameters()])
    copies = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(copies, flat)
    for other in copies[1:]:
        assert torch.equal(copies[0], other), "ranks diverged"
    print(f"rank {rank}: weights identical on all {world} ranks after 3 steps of the full objective", flush=True)


def check_time_budget_stops_every_rank_at_the_same_step(rank: int, world: int) -> None:
    from types import SimpleNamespace

    from transformers import TrainerControl, TrainerState

    from modeling_finemoltex.trainer_finemoltex import TimeBudgetCallback

    now = [0.0]
    budget = TimeBudgetCallback(1.0, clock=lambda: now[0])
    args = SimpleNamespace(world_size=world, device=torch.device("cpu"), save_strategy="no")
    state, control = TrainerState(), TrainerControl()
    budget.on_train_begin(args, state, control)
    now[0] -= 3.0 * rank  # rank r began 3r s after rank 0: on its own clock it would stop 5r steps later
    while not control.should_training_stop:
        now[0] += 0.6
        state.global_step += 1
        budget.on_step_end(args, state, control)
    agreed = torch.tensor([budget.stopped_at_step, budget.fraction_elapsed], dtype=torch.float64)
    copies = [torch.empty_like(agreed) for _ in range(world)]
    dist.all_gather(copies, agreed)
    assert all(torch.equal(copies[0], other) for other in copies[1:]), copies
    print(f"rank {rank}: time budget stopped all {world} ranks after step {budget.stopped_at_step}", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        check_gathered_loss_and_gradients(rank, world)
        check_full_objective_keeps_ranks_identical(rank, world)
        check_time_budget_stops_every_rank_at_the_same_step(rank, world)
    finally:
        dist.destroy_process_group()
