"""The training loop: one engine for both stages (the VQ-GAN tokenizer and the transformer).

Read `Trainer.fit` top to bottom: fetch a global batch's worth of micro-batches, for
each optimizer run forward/backward under autocast with DDP sync on the last
micro-batch, clip, step, update EMA; then log, validate and checkpoint. What a model
contributes lives in a `Task` (see `maskvit.train.task_protocol`).
"""

from __future__ import annotations

import contextlib
import resource
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Dataset

from maskvit import run_dir as ckpt
from maskvit.config import Config, TrainConfig, save_config
from maskvit.devices import choose_precision
from maskvit.errors import UserError
from maskvit.train.distributed import (
    DistEnv,
    GlobalBatchSampler,
    all_gather_objects,
    all_reduce_sum,
    eval_micro_batches,
    micro_batch_size,
)
from maskvit.train.logger import MetricLogger
from maskvit.train.optim import EMA, build_optimizer, lr_at
from maskvit.train.rng import capture_rng, restore_rng, resume_seed, seed_everything
from maskvit.train.task_protocol import OptimizerSpec, StepContext, Task

STOP_CHECK_EVERY = 16  # GPU steps between the ranks' stop-flag all-reduce (a host-device sync)

class NonFiniteLossError(UserError):
    """Training stopped because its loss is no longer a finite number."""


@dataclass
class FitResult:
    """How a `fit` call ended."""

    step: int  # optimizer steps completed in total
    interrupted: bool  # stopped by SIGINT/SIGTERM (a checkpoint was saved)
    last_train: dict[str, float]  # the last logged training metrics
    last_val: dict[str, float]  # the last validation metrics


class Trainer:
    """Trains a `Task` on a map-style dataset, single process or under torchrun.

    `out` is the run directory (None: no files at all, for quick experiments). With
    `resume=True` the latest checkpoint in `out` is loaded and training continues from
    its step with the same data order and random numbers. `max_steps` stops early
    without changing the learning-rate schedule (which always spans `train_cfg.steps`).
    """

    def __init__(self, task: Task, train_cfg: TrainConfig, train_data: Dataset, *,
                 config: Config | None = None, out: str | Path | None = None,
                 val_data: Dataset | None = None, env: DistEnv | None = None,
                 resume: bool = False, max_steps: int | None = None,
                 progress: bool = True, tensorboard: bool = True) -> None:
        self.task, self.cfg, self.config = task, train_cfg, config
        self.env = env or DistEnv()
        self.out = Path(out) if out is not None else None
        self.train_data, self.val_data = train_data, val_data
        self.end_step = min(train_cfg.steps, max_steps) if max_steps else train_cfg.steps
        self.micro = micro_batch_size(train_cfg.batch_size, self.env.world_size,
                                      train_cfg.grad_accum)
        self.device = self.env.device
        # What train.precision means here; a resumed run keeps the one it recorded.
        self.precision, self._precision_reason = choose_precision(train_cfg.precision, self.device)

        # Per-rank seeds: dropout and masking differ between ranks, repeat across runs.
        seed_everything(train_cfg.seed + self.env.rank)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(train_cfg.seed * 1_000_003 + self.env.rank)

        self.modules = task.modules()
        for module in self.modules.values():
            module.to(self.device)
        self.specs: list[OptimizerSpec] = task.optimizers()
        self.optimizers = {
            s.name: build_optimizer([self.modules[m] for m in s.modules], s.config or train_cfg)
            for s in self.specs
        }
        self.emas = ({m: EMA(self.modules[m], train_cfg.ema_decay) for m in task.ema_modules()}
                     if train_cfg.ema_decay else {})

        self.step = 0
        self.notes: list[str] = []  # things the user should know (shown when fit starts)
        self.warnings: list[str] = []  # things that went wrong but were recovered from
        if self.out is not None and self.env.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            ckpt.remove_stale_temporaries(self.out)
        if resume:
            if config is not None and self.out is not None and ckpt.has_run(self.out):
                ckpt.check_resume_config(ckpt.read_run_config(self.out), config, self.out)
            self._load_latest()
        elif self.out is not None and self.env.is_main and config is not None:
            save_config(config, self.out / ckpt.CONFIG_FILE)
        self.autocast_dtype = torch.bfloat16 if self.precision == "bf16" else None
        if train_cfg.precision == "auto":  # say what auto chose, first
            self.notes.insert(0, f"precision: auto -> {self.precision} ({self._precision_reason})")

        # Wrapped (compiled / DDP) modules exist only while `fit` runs: a DDP reducer keeps
        # the process group alive, and gloo aborts the process ("terminate called without
        # an active exception") when that group is freed during interpreter shutdown.
        self.wrapped: dict[str, nn.Module] = {}
        self.sampler = GlobalBatchSampler(
            len(train_data), train_cfg.batch_size, rank=self.env.rank,
            world_size=self.env.world_size, grad_accum=train_cfg.grad_accum,
            seed=train_cfg.seed, start_step=self.step)
        self._stop_requested = False
        self._progress, self._tensorboard = progress, tensorboard

    # ------------------------------------------------------------------ setup helpers

    def _wrap(self, module: nn.Module) -> nn.Module:
        """torch.compile (optional), then DDP when there are several processes."""
        if self.cfg.compile:
            module = torch.compile(module)
        if self.env.distributed and any(p.requires_grad for p in module.parameters()):
            ids = [self.device.index] if self.device.type == "cuda" else None
            module = DDP(module, device_ids=ids)
        return module

    def _load_latest(self) -> None:
        """Continue from the newest intact checkpoint; damaged ones are skipped and set aside."""
        assert self.out is not None, "resume needs a run directory"
        damaged: list[tuple[Path, str]] = []
        for path in ckpt.resume_candidates(self.out):
            try:
                self._restore(ckpt.load_checkpoint(path))
            except ckpt.CheckpointError as err:
                damaged.append((path, str(err)))
                continue
            if damaged:
                if self.env.is_main:  # newer than `path`: training will write those steps again
                    for bad, _ in damaged:
                        ckpt.set_aside(bad)
                self.warnings.append(
                    f"skipped damaged checkpoint(s) ({'; '.join(e for _, e in damaged)}); "
                    f"resumed from {path.name}; the damaged ones are kept as damaged-step_*")
            return
        if damaged:  # left in place: a later --resume must not silently start from step 0
            raise UserError(f"no intact checkpoint to resume in {self.out}: {damaged[0][1]}"
                            + (f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else "")
                            + "; start a new run with another --out")
        # nothing saved yet: start from step 0 in the same run directory

    def _restore(self, state: ckpt.Checkpoint) -> None:
        """Load one checkpoint into modules, optimizers, task, step and RNGs.

        Anything that does not fit (a missing module, a garbage optimizer state) is a
        `CheckpointError`: every field is overwritten by the next candidate, so a half
        applied damaged checkpoint leaves no trace.
        """
        try:
            for name, module in self.modules.items():
                module.load_state_dict(state.weights[name])
            for name, ema in self.emas.items():
                ema.load_state_dict(state.ema[name])
            for name, opt in self.optimizers.items():
                opt.load_state_dict(state.state["optimizers"][name])
            self.task.load_state_dict(state.state.get("task", {}))
            rngs = state.state.get("rng", [])
            rng_notes: list[str] = []
            if len(rngs) == self.env.world_size:
                rng_notes = restore_rng(rngs[self.env.rank], self.generator,
                                        reseed=resume_seed(self.cfg.seed, self.env.rank, state.step))
            saved_len = state.state.get("dataset_len")
        except torch.cuda.OutOfMemoryError:
            raise  # the machine's fault, not the checkpoint's: never set a checkpoint aside
        except (KeyError, IndexError, RuntimeError, ValueError, TypeError, AttributeError) as err:
            raise ckpt.CheckpointError(
                f"{state.path} does not fit this run ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''})") from None
        self.step = state.step
        self.notes.extend(rng_notes)
        self._keep_recorded_precision(state.state.get("precision"))
        if len(rngs) != self.env.world_size:
            self.notes.append(f"checkpoint saved by {len(rngs)} process(es), resumed with "
                              f"{self.env.world_size}: draws from the engine's generator (dropout, "
                              f"the tokenizer's augmentation) differ from an uninterrupted run "
                              f"(the data order and the transformer's masks do not)")
        if saved_len is not None and saved_len != len(self.train_data):
            self.notes.append(f"the training set changed size ({saved_len} → "
                              f"{len(self.train_data)} clips) since the checkpoint; the data "
                              f"order differs from an uninterrupted run")

    def _keep_recorded_precision(self, recorded: str | None) -> None:
        """With train.precision auto a resumed run continues in the precision its
        checkpoint recorded, whatever auto would pick on this machine: one run, one
        precision. Where the recorded one cannot run here, the resume is refused."""
        if self.cfg.precision != "auto" or recorded is None or recorded == self.precision:
            return
        here = f"{self.precision}: {self._precision_reason}"
        try:
            self.precision, _ = choose_precision(recorded, self.device)
        except UserError:
            raise UserError(f"{self.out} trained in {recorded} (train.precision auto, recorded "
                            f"in its checkpoints), which {self.device} cannot run; resume it "
                            f"where {recorded} runs or start a new run") from None
        self._precision_reason = f"the run's recorded choice; on this machine auto is {here}"

    def _loader(self) -> Iterator[Any]:
        loader = DataLoader(
            self.train_data, batch_sampler=self.sampler, num_workers=self.cfg.num_workers,
            pin_memory=self.device.type == "cuda",
            # A private generator: creating the loader must not consume the global RNG.
            generator=torch.Generator().manual_seed(self.cfg.seed + self.step),
        )
        return iter(loader)

    # --------------------------------------------------------------------- the loop

    def fit(self) -> FitResult:
        """Train until `end_step` or a stop signal; returns how it ended."""
        log = self._open_log()
        previous = self._install_signal_handlers()
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}  # steps that logged each key (a phase may be skipped)
        window_steps, window_tokens, window_start = 0, 0, time.perf_counter()
        last_train: dict[str, float] = {}
        last_val: dict[str, float] = {}
        saved_at = self.step
        interrupted = False
        try:
            self.wrapped = {name: self._wrap(m) for name, m in self.modules.items()}
            batches = self._loader()
            for module in self.modules.values():
                module.train()
            while self.step < self.end_step:
                micro_batches = [_to_device(next(batches), self.device)
                                 for _ in range(self.cfg.grad_accum)]
                step_logs = self._train_step(micro_batches)
                self.step += 1
                window_steps += 1
                window_tokens += sum(self.task.count_tokens(b) for b in micro_batches)
                for key, value in step_logs.items():
                    sums[key] = sums.get(key, 0.0) + value
                    counts[key] = counts.get(key, 0) + 1
                log.advance()

                if _every(self.step, self.cfg.log_every) or self.step == self.end_step:
                    self._stop_if_not_finite(sums)
                    last_train = self._reduce_window(sums, counts, window_tokens,
                                                     time.perf_counter() - window_start)
                    log.log(self.step, last_train)
                    sums, counts, window_steps, window_tokens = {}, {}, 0, 0
                    window_start = time.perf_counter()
                if self.val_data is not None and self.cfg.val_every > 0 and (
                        _every(self.step, self.cfg.val_every) or self.step == self.end_step):
                    last_val = self.validate()
                    if last_val:
                        log.log(self.step, last_val, split="val")
                if _every(self.step, self.cfg.checkpoint_every):
                    self._stop_if_not_finite(sums)
                    self.save()
                    saved_at = self.step
                if self._should_stop():
                    interrupted = True
                    break
            if saved_at != self.step:
                self._stop_if_not_finite(sums)
                self.save()
            if interrupted:
                log.message(f"stopped at step {self.step}; checkpoint saved")
        finally:
            self.wrapped = {}
            self._restore_signal_handlers(previous)
            log.close()
        return FitResult(self.step, interrupted, last_train, last_val)

    def _open_log(self) -> MetricLogger:
        """The run's logger, with the notes and warnings gathered while setting up."""
        log = MetricLogger(self.out, total_steps=self.end_step, start_step=self.step,
                           enabled=self.env.is_main, progress=self._progress,
                           tensorboard=self._tensorboard)
        for note in self.notes:
            log.message(f"note: {note}")
        for warning in self.warnings:
            log.message(f"warning: {warning}")
        return log

    def _stop_if_not_finite(self, sums: dict[str, torch.Tensor]) -> None:
        """Stop (one line) when a loss summed since the last check is NaN or infinite on any
        rank: the weights are then garbage, so nothing more is saved and the run keeps its
        last good checkpoint. Called before every log and checkpoint (one sync each)."""
        losses = [v.reshape(()) for k, v in sums.items() if k == "loss" or k.endswith("_loss")]
        if not losses:
            return
        bad = (~torch.isfinite(torch.stack(losses))).any().float().reshape(1)
        if all_reduce_sum(bad, self.env).item() == 0:
            return
        kept = ckpt.latest_checkpoint(self.out) if self.out is not None else None
        raise NonFiniteLossError(
            f"the training loss became NaN or infinite by step {self.step}; stopped without "
            f"saving, so the run keeps its last good checkpoint "
            f"({kept.name if kept else 'none yet'}); look for NaN/inf values in the data, or "
            f"lower the learning rate")

    def _train_step(self, micro_batches: list[Any]) -> dict[str, torch.Tensor]:
        """One optimizer step per spec over all micro-batches; returns summed logs."""
        accum = len(micro_batches)
        scratch = [{} for _ in micro_batches]
        logs: dict[str, torch.Tensor] = {}
        prefix = len(self.specs) > 1
        for spec in self.specs:
            cfg = spec.config or self.cfg
            lr = lr_at(self.step, lr=cfg.lr, warmup_steps=cfg.warmup_steps,
                       total_steps=self.cfg.steps, min_lr_ratio=cfg.min_lr_ratio)
            opt = self.optimizers[spec.name]
            for group in opt.param_groups:
                group["lr"] = lr
            for module in self.modules.values():
                module.zero_grad(set_to_none=True)
            ran = False
            for i, batch in enumerate(micro_batches):
                ctx = StepContext(step=self.step, modules=self.wrapped,
                                  generator=self.generator, device=self.device,
                                  training=True, micro_batch=i, scratch=scratch[i],
                                  rank=self.env.rank, world_size=self.env.world_size)
                with self._no_sync(last=i == accum - 1):
                    with self._autocast():
                        out = self.task.loss(spec.name, batch, ctx)
                    if out is None:
                        break
                    loss, step_logs = out
                    (loss / accum).backward()
                ran = True
                _add_logs(logs, spec.name if prefix else "", {"loss": loss, **step_logs},
                          1.0 / accum, self.device)
            if not ran:
                continue
            params = [p for m in spec.modules for p in self.modules[m].parameters()
                      if p.grad is not None]
            clip = cfg.grad_clip if cfg.grad_clip and cfg.grad_clip > 0 else float("inf")
            grad_norm = torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
            key = f"{spec.name}_" if prefix else ""
            logs[key + "grad_norm"] = grad_norm.detach().float()
            logs[key + "lr"] = torch.full((), lr, device=self.device)  # a fill: no copy from the host
        for name, ema in self.emas.items():
            ema.update(self.modules[name])
        return logs

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Average `task.validation_step` over the fixed validation batches (all ranks)."""
        assert self.val_data is not None
        batches = eval_micro_batches(len(self.val_data), self.micro, rank=self.env.rank,
                                     world_size=self.env.world_size,
                                     max_batches=self.cfg.val_batches)
        generator = torch.Generator(device=self.device)
        generator.manual_seed(self.cfg.seed * 7919 + self.env.rank + 1)
        for module in self.modules.values():
            module.eval()
        totals: dict[str, torch.Tensor] = {}
        for indices in batches:
            batch = _to_device(_collate([self.val_data[i] for i in indices]), self.device)
            ctx = StepContext(step=self.step, modules=self.modules, generator=generator,
                              device=self.device, training=False, rank=self.env.rank,
                              world_size=self.env.world_size)
            with self._autocast():
                metrics = self.task.validation_step(batch, ctx)
            _add_logs(totals, "", metrics, 1.0, self.device)
        for module in self.modules.values():
            module.train()
        keys = sorted(totals)
        if not keys:
            return {}
        stacked = torch.stack([totals[k].float() for k in keys] +
                              [torch.tensor(float(len(batches)), device=self.device)])
        *values, count = all_reduce_sum(stacked, self.env).tolist()  # one copy to the host
        count = max(count, 1.0)
        return {k: v / count for k, v in zip(keys, values, strict=True)}

    # ---------------------------------------------------------------- checkpointing

    def save(self) -> None:
        """Checkpoint now (every rank must call it: RNG states are gathered)."""
        rngs = all_gather_objects(capture_rng(self.generator), self.env)
        if self.out is None or not self.env.is_main:
            return
        pos = self.sampler.position(self.step)
        state = {
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "data_position": {"epoch": pos.epoch, "index": pos.index},
            "rng": rngs,
            "task": self.task.state_dict(),
            "world_size": self.env.world_size,
            "dataset_len": len(self.train_data),
            "grad_accum": self.cfg.grad_accum,
            "precision": self.precision,  # what train.precision (auto) chose
        }
        ckpt.save_checkpoint(
            self.out, self.step,
            weights={n: m.state_dict() for n, m in self.modules.items()},
            ema={n: e.state_dict() for n, e in self.emas.items()},
            state=state, keep=self.cfg.keep_checkpoints)

    # ---------------------------------------------------------------- small helpers

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def _no_sync(self, last: bool) -> contextlib.AbstractContextManager:
        """Skip DDP's gradient all-reduce on all but the last micro-batch."""
        stack = contextlib.ExitStack()
        if not last:
            for module in self.wrapped.values():
                if isinstance(module, DDP):
                    stack.enter_context(module.no_sync())
        return stack

    def _reduce_window(self, sums: dict[str, torch.Tensor], counts: dict[str, int],
                       tokens: int, seconds: float) -> dict[str, float]:
        """Mean of each logged value over the window's steps and all ranks."""
        keys = sorted(sums)
        values = [sums[k].float().reshape(()) / counts[k] for k in keys]
        packed = torch.stack(values + [torch.tensor(float(tokens), device=self.device)])
        *sums_all, tokens_sum = all_reduce_sum(packed, self.env).tolist()  # one copy to the host
        world = self.env.world_size
        out = {k: v / world for k, v in zip(keys, sums_all, strict=True)}
        out["tokens_per_s"] = tokens_sum / max(seconds, 1e-9)
        out["memory_mb"] = _memory_mb(self.device)
        return out

    def _should_stop(self) -> bool:
        """Did any rank get SIGINT/SIGTERM? (All ranks agree, so none is left waiting.)

        Across ranks the answer takes a collective; on a GPU it waits for the device, so there it
        is asked every STOP_CHECK_EVERY steps only (all ranks are at the same step). On the CPU
        it costs nothing next to a step and is asked at every step."""
        if not self.env.distributed:
            return self._stop_requested
        if self.device.type == "cuda" and self.step % STOP_CHECK_EVERY:
            return False
        flag = torch.tensor([1.0 if self._stop_requested else 0.0], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item() > 0)

    def request_stop(self) -> None:
        """Finish the current step, checkpoint and return from `fit`."""
        self._stop_requested = True

    def _install_signal_handlers(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}

        def handler(signum: int, frame: Any) -> None:
            if self._stop_requested and signum == signal.SIGINT:
                raise KeyboardInterrupt  # a second Ctrl-C: stop without saving
            self.request_stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _add_logs(into: dict[str, torch.Tensor], prefix: str, logs: dict[str, Any],
              weight: float, device: torch.device) -> None:
    """into[prefix_key] += weight * value, keeping values as device tensors (no sync)."""
    for key, value in logs.items():
        name = f"{prefix}_{key}" if prefix else key
        if isinstance(value, torch.Tensor):
            value = value.detach().to(device=device, dtype=torch.float32).reshape(())
        else:  # a fill on the device, not a copy from the host
            value = torch.full((), float(value), dtype=torch.float32, device=device)
        into[name] = into.get(name, 0.0) + value * weight


def _every(step: int, period: int) -> bool:
    return period > 0 and step % period == 0


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=device.type == "cuda")
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _collate(items: list[Any]) -> Any:
    from torch.utils.data import default_collate

    return default_collate(items)


def _memory_mb(device: torch.device) -> float:
    """Peak memory: CUDA allocator on GPU, resident set size of this process on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
