"""The training loop: equal steps on every rank, DDP all-reduce, distributed evaluation.

Reads like a table of contents (torchtitan ``trainer.py``): for each epoch, agree on
the step count, then ``batch = next(batches); train_step(batch); maybe_log``; at the
end of the epoch ``maybe_eval``, ``maybe_checkpoint``, ``maybe_stop``.
"""

from __future__ import annotations

import copy
import io
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from dist_train.config.schema import Config, config_to_dict
from dist_train.data.exact_graph import rows_only
from dist_train.data.shards import LocalGraph
from dist_train.loop.checkpoint import (
    Position,
    atomic_write,
    kept_note,
    load_latest_checkpoint,
    save_checkpoint,
)
from dist_train.loop.epoch_plan import EpochPlanner
from dist_train.loop.evaluate import count_split_nodes, distributed_eval, no_validation_line
from dist_train.loop.exact_eval import exact_eval
from dist_train.loop.failures import DivergenceError, Preempted, comm_failure, diverged
from dist_train.loop.metrics import EpochTimer, MetricsLog, progress_bar
from dist_train.loop.resume import apply_optim_config, check_resumable, resumed_segments
from dist_train.loop.schedule import build_scheduler
from dist_train.loop.timed_allreduce import attach_timed_allreduce
from dist_train.model.custom import user_model_failure
from dist_train.model.models import build_model
from dist_train.predict.exact import exact_capable, rank_parts
from dist_train.rundir.writes import write_on_rank0, writing
from dist_train.runtime import process_group as pg
from dist_train.runtime.signals import STOP_RECORD, StopFlag, clear_stop_record, write_stop_record
from dist_train.sampling.batches import mix_seed
from dist_train.sampling.elastic import Segment
from dist_train.sampling.exact_batches import ExactBatches, exact_batches
from dist_train.sampling.prefetch import PeerStopped, Prefetcher
from dist_train.sampling.sampler import NeighborSampler
from partition.errors import InputError

log = logging.getLogger(__name__)


class Trainer:
    def __init__(self, cfg: Config, graph: LocalGraph, num_classes: int, rank: int,
                 world_size: int, device: torch.device, run_dir: Path, stop: StopFlag | None = None,
                 identity: dict[str, str] | None = None) -> None:
        self.cfg, self.graph, self.rank, self.world_size = cfg, graph, rank, world_size
        self.device, self.run_dir = device, run_dir
        self.stop = stop or StopFlag()
        self.identity = identity or {}
        if cfg.dist.threads:
            torch.set_num_threads(cfg.dist.threads)  # leave a core to the prefetch thread
        torch.manual_seed(cfg.train.seed)  # same initial weights on every rank
        m = cfg.model
        self.model = build_model(m.arch, graph.x.shape[1], m.hidden, num_classes, m.num_layers,
                                 m.dropout, m.norm, m.gcn_norm, m.kwargs).to(device)
        self.ddp = DDP(self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.allreduce_clock = attach_timed_allreduce(self.ddp)
        o = cfg.optim
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
        self.scheduler = build_scheduler(self.optimizer, o, cfg.train.epochs)
        s = cfg.sampler
        # the global plan samples layer-wise (MFG blocks, keyed dropout): partition-invariant
        self.global_plan = cfg.train.batch_plan == "global"
        layout = "blocks" if self.global_plan else "union"
        if self.global_plan and m.norm == "batch" and rank == 0:
            log.warning("train.batch_plan=global with model.norm=batch: BatchNorm's statistics are "
                        "over each rank's share of a batch, so training depends on the partition; "
                        "use model.norm=layer or none for partition-invariant training")
        self.eval_fanouts = list(s.eval_fanouts) if s.eval_fanouts is not None else [-1] * len(s.fanouts)
        # exact mode (issue 15): training and evaluation batches sampled across parts, so
        # the local samplers are not built at all (each held an O(local graph) id map, and
        # the local eval graph a copy of the CSR: rss_share.py)
        self.exact = self.exact_eval = self.train_sampler = None
        if s.mode == "exact":
            self.exact = exact_batches(graph, rank, world_size, list(s.fanouts), s.replace, device,
                                       cfg.dist.timeout_s, layout)
            self.exact_eval = ExactBatches(graph, rank, world_size, self.eval_fanouts, False,
                                           self.exact.exchange)
        else:
            self.train_sampler = NeighborSampler(graph.indptr, graph.indices, list(s.fanouts),
                                                 degree=graph.degree, replace=s.replace,
                                                 global_ids=graph.global_ids, layout=layout)
        self._local_eval: tuple[LocalGraph, NeighborSampler] | None = None
        # full-neighbourhood evaluation is exact across ranks (issue 11): needs the stored parts
        self.eval_parts = (rank_parts(cfg.data.path, rank, world_size, graph.stored) if cfg.data.path and
                           all(f == -1 for f in self.eval_fanouts) and exact_capable(self.model) else None)
        self.pos = Position()
        self.metrics = MetricsLog(run_dir, enabled=rank == 0, tensorboard=cfg.train.tensorboard)
        self.best_state: dict[str, torch.Tensor] | None = None
        self._stop_requested = False
        self.planner = EpochPlanner(cfg, graph, rank, world_size)
        self.timer, self.epoch_t0, self.partial = EpochTimer(), time.perf_counter(), None
        self.num_val = self.num_test = 0
        self._step_loss = math.nan  # the last step's loss, mean over every rank's seeds

    # ---- the loop -------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        self.maybe_resume()
        if self.rank == 0:
            clear_stop_record(self.run_dir)
        # a run dir that is not shared between nodes would let ranks resume differently
        pg.check_same_across_ranks("the checkpoint to resume from (is --out on a shared disk?)",
                                   f"epoch {self.pos.epoch} step {self.pos.step}", InputError)
        # lines past the checkpoint (or all, on a fresh start) are redone: drop them first
        self.write_rank0(self.metrics.path, self.metrics.truncate_after, self.pos.epoch)
        t_start = time.perf_counter()
        try:
            self.num_val, self.num_test = count_split_nodes(self.graph)
            if self.num_val == 0 and self.rank == 0:  # without val nodes there is no best epoch
                log.warning("%s", no_validation_line(self.cfg.train.early_stopping_patience))
            self.train_epochs()
            self.checkpoint()
        except RuntimeError as err:
            # a rank died or hangs, or (exact mode) another rank's sampler stopped: one line
            if pg.is_comm_failure(err) or isinstance(err, PeerStopped):
                raise self.comm_failure(err) from err
            raise
        return self.finish(time.perf_counter() - t_start)

    def train_epochs(self) -> None:
        cfg = self.cfg.train
        # The stop test is part of the condition: a run that stopped early and is started
        # again on the same --out (automatic resume) must not train one more epoch.
        while self.pos.epoch < cfg.epochs and not self.should_stop_early():
            epoch = self.pos.epoch
            record = self.train_epoch(epoch)
            if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
                t_eval = time.perf_counter()
                record.update(self.evaluate_and_track(epoch))
                record["time_eval_s"] = time.perf_counter() - t_eval
            self.scheduler.step()
            self.pos.epoch, self.pos.step, self.pos.segments = epoch + 1, 0, []
            line = {"epoch": epoch, **record, "lr": self.optimizer.param_groups[0]["lr"],
                    "global_step": self.pos.global_step}
            self.write_rank0(self.metrics.path, self.metrics.write, line, self.pos.global_step)
            if self.should_stop_early() or (epoch + 1) % cfg.checkpoint_every == 0:
                self.checkpoint()
            if self.should_stop_early():
                log.info("early stopping after epoch %d (best val epoch %d)", epoch, self.pos.best_epoch)
                break

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        run = self.planner.plan(epoch, self.pos.step, [Segment(*x) for x in self.pos.segments])
        timer = self.timer = EpochTimer.resume(self.partial, self.pos.step)
        self.partial = None
        self.allreduce_clock.reset()
        t0 = self.epoch_t0 = time.perf_counter()
        with Prefetcher(self.train_sampler, self.graph.x, self.graph.y,
                        [b.seeds for b in run.todo], [b.sample_seed for b in run.todo], self.device,
                        depth=self.cfg.sampler.prefetch, make=self.exact,
                        agree=self.exact.exchange.any_true if self.exact else None) as batches, \
                progress_bar(run.num_steps, epoch, enabled=self.rank == 0) as bar:
            bar.update(self.pos.step)
            for planned in run.todo:
                t_wait = time.perf_counter()
                batch = next(batches)
                timer.wait_s += time.perf_counter() - t_wait
                self.train_step(batch, planned.weight, planned.step, epoch, timer,
                                planned.global_count)
                run.mark(planned)
                self.after_step(epoch, planned.step, timer, bar)
        timer.allreduce_s = self.allreduce_clock.seconds
        seen = torch.tensor([float(run.seen[self.graph.train_idx].sum()), float(self.graph.train_idx.shape[0])],
                            dtype=torch.float64)
        pg.all_reduce_sum(seen)  # distinct train nodes the epoch trained, over every rank
        record = timer.as_record(time.perf_counter() - t0, run.num_steps) | {
            "train_nodes_seen": int(seen[0]), "train_nodes": int(seen[1])}
        return record | (self.exact.epoch_record(len(run.todo)) if self.exact else {})

    def train_step(self, batch: Any, weight: float, step: int, epoch: int, timer: EpochTimer,
                   global_count: int = 0) -> None:
        # Reseeding per step makes dropout a function of the position: exact resume.
        torch.manual_seed(mix_seed(self.cfg.train.seed, self.rank, epoch, step, 0xD0))
        self.ddp.train()
        t0 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        n = batch.y.shape[0]
        # DDP averages the ranks' gradients: the rank plan averages each rank's batch mean;
        # the global plan scales by world / global_count, so the average is the gradient
        # of the mean loss over the whole global batch (one process's gradient)
        scale = (weight * self.world_size / global_count if global_count
                 else weight / max(n, 1))
        try:
            logits = self.ddp(batch.x, batch.subgraph)
            # a zero-weight batch (a rank with no train node left) is a placeholder seed that
            # may be unlabelled (y = -1): its loss counts nothing, only its collectives do
            y = batch.y if weight else torch.zeros_like(batch.y)
            loss_sum = F.cross_entropy(logits, y, reduction="sum")
            (loss_sum * scale).backward()
        except Exception as err:  # noqa: BLE001 - a user's model may raise anything mid-run
            raise user_model_failure(self.cfg.model.arch, err, epoch, step) from None
        timer.forward_backward_s += time.perf_counter() - t0
        stats = torch.tensor([loss_sum.item() * weight, n * weight, 0.0, float(self.stop.is_set())])
        stats[2] = float(not self.gradients_finite() or not math.isfinite(stats[0]))
        pg.all_reduce_sum(stats)  # one tiny collective: loss, divergence and stop, all agreed
        if stats[2] > 0:
            raise self.diverged(f"non-finite loss or gradient at epoch {epoch} step {step} "
                                f"(loss sum over ranks {stats[0].item():.4g})")
        t1 = time.perf_counter()
        if self.cfg.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.optimizer.step()
        timer.optimizer_s += time.perf_counter() - t1
        self._step_loss = stats[0].item() / stats[1].item() if stats[1] > 0 else math.nan
        timer.loss_sum += stats[0].item()
        timer.loss_count += int(stats[1].item())
        timer.sample_s += batch.sample_s
        timer.gather_s += batch.gather_s
        timer.sampled_edges += batch.subgraph.num_sampled_edges_total
        timer.seeds += n
        self._stop_requested = stats[3] > 0

    def after_step(self, epoch: int, step: int, timer: EpochTimer, bar: Any) -> None:
        self.pos.step = step + 1
        self.pos.global_step += 1
        bar.update(1)
        self.metrics.step(self.pos.global_step, self._step_loss, self.optimizer.param_groups[0]["lr"])
        if self.rank == 0 and step % max(self.cfg.train.log_every, 1) == 0:
            bar.set_postfix(loss=f"{timer.loss_sum / max(timer.loss_count, 1):.4f}")
        if self._stop_requested:
            self.checkpoint(stopping=True)
            raise Preempted(f"stopped by {self.stop.name()}: checkpoint written at epoch {epoch} "
                            f"step {step + 1}")
        every = self.cfg.train.checkpoint_every_steps
        if every and self.pos.global_step % every == 0:
            self.checkpoint()  # mid-epoch: a dead rank costs at most `every` steps

    def comm_failure(self, err: RuntimeError) -> pg.CollectiveError:
        return comm_failure(err, self.rank, self.pos.epoch, self.pos.step, self.cfg.dist.timeout_s, self.run_dir)

    def gradients_finite(self) -> bool:
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        return bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()) if grads else True

    # ---- evaluation -----------------------------------------------------------------
    def local_eval(self) -> tuple[LocalGraph, NeighborSampler]:
        """(the graph of the nodes with feature rows, its eval sampler): what evaluation
        reads when it is neither exact-mode sampling nor exact layer-wise; built on first use."""
        if self._local_eval is None:
            g = rows_only(self.graph)
            self._local_eval = (g, NeighborSampler(g.indptr, g.indices, self.eval_fanouts, degree=g.degree,
                                                   replace=False, global_ids=g.global_ids))
        return self._local_eval

    def evaluate(self) -> dict[str, float]:
        if self.eval_parts is not None:  # every neighbour: exact layer by layer (issue 11)
            # the stored parts are read; the local graph only counts the val/test nodes
            result = distributed_eval(self.model, None, self.graph,
                                      self.cfg.sampler.eval_batch_size, self.cfg.train.seed, self.device,
                                      exact=self.eval_parts)
        elif self.exact_eval is not None:
            result = exact_eval(self.model, self.exact_eval, self.graph, self.cfg.sampler.eval_batch_size,
                                self.cfg.train.seed, self.device)
        else:
            graph, sampler = self.local_eval()
            result = distributed_eval(self.model, sampler, graph,
                                      self.cfg.sampler.eval_batch_size, self.cfg.train.seed, self.device)
        if result.nonfinite_batches:  # the last update overflowed the weights: the next step
            # would fail anyway, and the epoch-end checkpoint must not save them (every rank
            # sees the same all-reduced count)
            raise self.diverged(f"non-finite model outputs when evaluating epoch {self.pos.epoch} "
                                f"(after its step {self.pos.step - 1}): not checkpointed")
        return result.record()

    def evaluate_and_track(self, epoch: int) -> dict[str, float]:
        result = self.evaluate()
        self.pos.last_test = result["test_acc"]
        if self.num_val == 0:
            return result
        if result["val_acc"] > self.pos.best_val:
            self.pos.best_val, self.pos.best_test = result["val_acc"], result["test_acc"]
            self.pos.best_epoch, self.pos.epochs_without_improvement = epoch, 0
            self.best_state = copy.deepcopy(self.model.state_dict())
        else:
            self.pos.epochs_without_improvement += self.cfg.train.eval_every
        return result

    def should_stop_early(self) -> bool:
        patience = self.cfg.train.early_stopping_patience
        return (patience is not None and self.num_val > 0
                and self.pos.epochs_without_improvement >= patience)

    # ---- checkpoints ----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "position": asdict(self.pos),
            "best_model": self.best_state, "config": config_to_dict(self.cfg),
            "identity": self.identity, "world_size": self.world_size,
            "rng": {"torch": torch.get_rng_state()},
            # mid-epoch: the epoch's sums so far, so that its metrics line covers all of it
            "epoch_partial": self.timer.partial(time.perf_counter() - self.epoch_t0) if self.pos.step else None,
        }

    def diverged(self, what: str) -> DivergenceError:
        return diverged(what, self.run_dir)

    def checkpoint(self, stopping: bool = False) -> None:
        # Parameters are identical on every rank (DDP), so every rank takes this branch:
        # a last step that overflowed the weights must not replace a good checkpoint.
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            raise self.diverged(f"non-finite parameters at epoch {self.pos.epoch} step "
                                f"{self.pos.step}: not checkpointed")
        def save() -> None:
            save_checkpoint(self.run_dir, self.state_dict(), self.pos.epoch, self.pos.step,
                            keep=self.cfg.train.keep_checkpoints)
            if stopping:  # before the agreement: every launcher that reads it finds it written
                with writing(self.run_dir / STOP_RECORD, kept_note(self.run_dir)):
                    write_stop_record(self.run_dir, {
                        "signal": self.stop.name(), "epoch": self.pos.epoch, "step": self.pos.step,
                        "checkpoints": str(self.run_dir / "checkpoints")})
        # also the barrier: nobody runs ahead of a checkpoint that may be needed to restart
        write_on_rank0(save, self.rank)

    def write_rank0(self, path: Path, write: Callable[..., None], *args: Any) -> None:
        """``write(*args)`` (to ``path``) on rank 0; a full or read-only disk stops every rank
        with one line naming ``path`` and the checkpoint kept (issue 16)."""
        def guarded() -> None:
            with writing(path, kept_note(self.run_dir)):
                write(*args)
        write_on_rank0(guarded, self.rank)

    def maybe_resume(self) -> None:
        # every rank reads the same file (shared run dir), so all resume identically
        found = load_latest_checkpoint(self.run_dir)
        if found is None:
            return
        state, ref = found
        changes = check_resumable(state, config_to_dict(self.cfg), self.identity, str(ref.path))
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        apply_optim_config(self.optimizer, self.scheduler, self.cfg.optim)  # the new lr wins
        self.pos = Position(**state["position"])
        self.best_state, self.partial = state.get("best_model"), state.get("epoch_partial")
        self.pos.segments, world_line = resumed_segments(
            self.pos.segments, state.get("world_size"), self.world_size, self.pos.epoch,
            self.pos.step, global_plan=self.cfg.train.batch_plan == "global")
        if self.rank == 0:
            log.warning("resumed from %s (epoch %d, step %d)", ref.path, self.pos.epoch, self.pos.step)
            if world_line:
                log.warning("%s", world_line)
            for key, before, after in changes:
                log.warning("resumed with a changed config: %s was %r, now %r", key, before, after)

    def finish(self, wall_s: float) -> dict[str, Any]:
        final = {"event": "final", "best_epoch": self.pos.best_epoch, "val_acc": self.pos.best_val,
                 "test_acc": self.pos.best_test, "epochs_run": self.pos.epoch,
                 "total_steps": self.pos.global_step, "wall_time_s": wall_s}
        if self.num_val == 0:  # no made-up "best val -1 at epoch -1": say there is none
            final.update(best_epoch=None, val_acc=None, test_acc=self.pos.last_test,
                         note="no validation nodes: nothing to validate on; the model is the last epoch's")
        buf = io.BytesIO()
        if self.rank == 0:
            # identity too: giantgcn-predict checks --data against it even when the run's
            # checkpoints were pruned or deleted
            torch.save({"model": self.model.state_dict(), "best_model": self.best_state,
                        "config": config_to_dict(self.cfg), "identity": self.identity}, buf)
        model_pt = self.run_dir / "model.pt"
        self.write_rank0(model_pt, atomic_write, model_pt, buf.getvalue())
        self.write_rank0(self.metrics.path, self.metrics.write, final, self.pos.global_step)
        self.metrics.close()
        return final
