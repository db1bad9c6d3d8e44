"""The visual planner: CEM or MPPI over action sequences scored through a video prediction model.

Any video model plugs in through `PredictFn`:

    predict_fn(context_frames uint8 (B, Tc, h, w, 3),
               context_actions float (B, Tc-1, A),   # actions taken between context frames
               future_actions float (B, H, A))       # [:, i] is taken after frame Tc-1+i
        -> predicted frames uint8 (B, H, h, w, 3)    # [:, i] is the frame it leads to

`maskvit.plan.predictor_fn.predictor_fn` adapts a `Predictor`; the oracle baseline
(`maskvit.plan.baselines.OraclePolicy`) steps a copy of the simulator instead. All M
samples of an iteration go through the model in chunks of `chunk_size` sequences (0, the
default: in one call, which the `Predictor` splits into batches its device suits), so
memory stays bounded whatever M is; `COSTS` scores their frames against the goal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from maskvit.config import PlanConfig, check_plan
from maskvit.errors import UserError
from maskvit.plan.cem import CEMResult, cem_optimize, step_weights
from maskvit.plan.mppi import mppi_optimize, shift_plan

# ---------------------------------------------------------------- costs
# A cost takes predicted frames (M, H, h, w, 3) uint8, one goal image (h, w, 3) uint8 and the
# per-step weights c_i (H,), and returns one number per sequence (M,), lower is better
# (paper §A.2, the planning objective). Register new costs in `COSTS` so the CLI
# (`--set plan.cost=...`) can name them.

FrameCost = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def observe(cost: FrameCost, frame: np.ndarray) -> None:
    """Show a cost the observed frame (h, w, 3) before a replan scores any sequence, where the
    cost reads it (an `observe` method: the gated reach cost, `plan.progress_gate`)."""
    seen = getattr(cost, "observe", None)
    if seen is not None:
        seen(frame)


def pixel_l2_cost(frames: np.ndarray, goal: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Σ_i c_i ‖frame_i − goal‖²₂ with pixels scaled to [0, 1] (the paper's objective)."""
    diff = frames.astype(np.float32) / 255.0 - goal.astype(np.float32)[None, None] / 255.0
    per_step = np.square(diff).sum(axis=(2, 3, 4))  # (M, H)
    return per_step @ np.asarray(weights, dtype=np.float32)


def final_pixel_l2_cost(frames: np.ndarray, goal: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """‖last frame − goal‖²₂ only (the simpler objective of §4.4's main text)."""
    diff = frames[:, -1].astype(np.float32) / 255.0 - goal.astype(np.float32)[None] / 255.0
    return np.square(diff).sum(axis=(1, 2, 3))


def latent_l2_cost(latents: np.ndarray, goal: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Σ_i c_i ‖z_i − z_goal‖²₂ over code vectors: predicted (M, H, h, w, D), goal (h, w, D).

    pixel_l2's objective in the tokenizer's code space: the model's predicted tokens are
    compared without running the tokenizer's decoder, most of a planning call's time on a CPU.
    """
    diff = np.asarray(latents, np.float32) - np.asarray(goal, np.float32)[None, None]
    per_step = np.square(diff).sum(axis=(2, 3, 4))  # (M, H)
    return per_step @ np.asarray(weights, dtype=np.float32)


COSTS: dict[str, FrameCost] = {
    "pixel_l2": pixel_l2_cost,
    "final_pixel_l2": final_pixel_l2_cost,
    "latent_l2": latent_l2_cost,
}
# Costs that read the model's code vectors instead of frames (a `PredictFn` with
# `predicts_latents`); a simulator has none, so the oracle scores pixel_l2 in their place.
LATENT_COSTS = ("latent_l2",)
# The predicted frames a cost reads, where it reads fewer than all: a `PredictFn` that can
# (`decodes_subsets`) turns only those into pixels, which on a CPU is most of a model call.
COST_READS: dict[str, tuple[int, ...]] = {"final_pixel_l2": (-1,)}
# Costs that also need a net reading frames (`maskvit.plan.success_classifier`), built per task
# by the caller and handed to `ModelPlanner(cost=...)`: VP2's RoboDesk cost (a success
# classifier) and the reach cost (a reach reader, `maskvit.plan.reach_reader`).
REACH_COSTS = ("pixel_l2_reach",)  # they read the task's progress from frames too
CLASSIFIER_COSTS = ("pixel_l2_classifier", *REACH_COSTS)
# The kind of net (`SuccessNet.kind`) each of them reads.
CLASSIFIER_KINDS = {name: "reach" if name in REACH_COSTS else "success" for name in CLASSIFIER_COSTS}
# Costs that read the task's progress from RoboDesk frames (`maskvit.plan.desk_progress_cost`),
# built per task by the caller like the classifier costs.
PROGRESS_COSTS = ("pixel_l2_progress",)
TASK_COSTS = (*CLASSIFIER_COSTS, *PROGRESS_COSTS)  # built per task, never looked up in COSTS


def standing_still_cost(cost: FrameCost, here: np.ndarray, goal: np.ndarray, weights: np.ndarray) -> float:
    """`cost` of a sequence that stays at `here` (a frame, or its latents) for every step:
    the common unit in which the oracle's state cost and the latent cost are put into
    pixel-cost terms, so that MPPI's γ (set for pixel_l2) weighs them alike."""
    return float(cost(np.broadcast_to(here, (1, len(weights), *here.shape)), goal, weights)[0])


def pixel_cost_name(name: str) -> str:
    """`name`, or pixel_l2 where `name` compares latents or is built per task (what frames
    alone can be scored by)."""
    return "pixel_l2" if name in LATENT_COSTS or name in TASK_COSTS else name


def check_cost_name(name: str) -> None:
    """A one-line error listing the valid names, for a cost that does not exist."""
    if name not in COSTS and name not in TASK_COSTS:
        raise UserError(f"unknown planning cost {name!r}; choose one of: "
                        f"{', '.join([*COSTS, *TASK_COSTS])}")


def get_cost(name: str) -> FrameCost:
    """Look a cost up by name; a one-line error lists the valid names."""
    check_cost_name(name)
    if name in CLASSIFIER_COSTS:
        raise UserError(f"plan.cost={name} needs a classifier net, which `maskvit plan --env "
                        "robodesk` supplies (--classifier DIR); here use another plan.cost")
    if name in PROGRESS_COSTS:
        raise UserError(f"plan.cost={name} reads a RoboDesk task's progress from frames: only "
                        "`maskvit plan --env robodesk` can use it; here use another plan.cost")
    return COSTS[name]


# ---------------------------------------------------------------- planners

class PredictFn(Protocol):
    """Also optional: `decodes_subsets = True` and a `decode_frames=` keyword (indices into
    the H predicted frames) returning only those, (B, len(decode_frames), h, w, 3)."""

    def __call__(
        self, context_frames: np.ndarray, context_actions: np.ndarray, future_actions: np.ndarray
    ) -> np.ndarray: ...


@dataclass
class Plan:
    """What a planner hands the MPC loop."""

    actions: np.ndarray  # (H, A) chosen sequence
    predicted: np.ndarray | None  # (H, h, w, 3) uint8 frames the chosen sequence was scored on
    cost: float
    cem: CEMResult | None = None


def check_plan_config(config: PlanConfig, low: np.ndarray, high: np.ndarray) -> None:
    """One-line errors for a plan config that is invalid or does not fit the action space
    [low, high] (`maskvit.config.check_plan`), or names an unknown cost."""
    check_plan(config, low, high)
    check_cost_name(config.cost)


def check_goal(goal: np.ndarray, frame_shape: tuple[int, ...]) -> None:
    """The goal must be one uint8 RGB image of the observations' size."""
    if goal.dtype != np.uint8 or goal.shape != tuple(frame_shape):
        shape = "×".join(map(str, goal.shape))
        want = "×".join(map(str, frame_shape))
        raise UserError(
            f"goal image is {shape} {goal.dtype} but observations are {want} uint8; "
            f"resize the goal to {want}"
        )


ScoreFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


class _SequenceOptimizer:
    """What CEM and MPPI share: a checked plan config over the action space [low, high], the
    per-step cost weights, and the mean the next replan starts from."""

    def __init__(self, config: PlanConfig, low: np.ndarray, high: np.ndarray):
        low, high = np.asarray(low, float), np.asarray(high, float)
        check_plan_config(config, low, high)
        self.config = config
        self.low, self.high = low, high
        self.weights = step_weights(config.horizon, config.last_step_weight)
        self._next_mean: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the previous plan (a new episode starts)."""
        self._next_mean = None


class CEMPlanner(_SequenceOptimizer):
    """CEM with Table 5's settings around any batched evaluation of action sequences.

    `score(actions (B, H, A)) -> (costs (B,), frames (B, H, h, w, 3) uint8 or None)` is
    built per call from the current context (model) or simulator state (oracle); it is
    called on chunks of at most `config.chunk_size` sequences (0: on all of them).
    """

    def initial_mean(self) -> np.ndarray:
        """(H, A) first sampling mean: Table 5's, or with `warm_start` the last plan's
        refit mean shifted by the `replan_every` steps executed since, padded with Table 5's.
        """
        cfg = self.config
        base = np.tile(np.asarray(cfg.init_mean, float), (cfg.horizon, 1))
        if cfg.warm_start and self._next_mean is not None:
            return self._next_mean
        return base

    def optimise(self, score: ScoreFn, rng: np.random.Generator) -> Plan:
        """Run CEM; return the best sequence with the frames it was scored on (if any)."""
        cfg = self.config
        last: dict[str, np.ndarray | None] = {}
        cost_fn = _chunked(score, cfg.chunk_size, last)
        result = cem_optimize(
            cost_fn,
            self.initial_mean(),
            np.tile(np.asarray(cfg.init_std, float), (cfg.horizon, 1)),
            samples=cfg.samples,
            iterations=cfg.iterations,
            elite_fraction=cfg.elite_fraction,
            beta=cfg.noise_correlation,
            rng=rng,
            low=self.low,
            high=self.high,
            round_gripper=cfg.round_gripper,
        )
        shift = min(cfg.replan_every, cfg.horizon)
        base = np.tile(np.asarray(cfg.init_mean, float), (shift, 1))
        self._next_mean = np.concatenate([result.mean[shift:], base])
        frames = last["frames"]
        predicted = None if frames is None else frames[result.index]
        return Plan(result.actions, predicted, result.cost, result)


def _chunked(score: ScoreFn, chunk_size: int, last: dict[str, np.ndarray | None]):
    """A cost function over all M sequences that calls `score` on chunks of them and
    keeps the frames of the last call in `last["frames"]`."""

    def cost_fn(actions: np.ndarray) -> np.ndarray:
        costs, frames = [], []
        size = chunk_size or len(actions)  # 0: one call; the predictor splits by its device
        for i in range(0, len(actions), size):
            chunk_costs, chunk_frames = score(actions[i : i + size])
            costs.append(np.asarray(chunk_costs, dtype=float))
            frames.append(chunk_frames)
        last["frames"] = None if frames[0] is None else np.concatenate(frames)
        return np.concatenate(costs)

    return cost_fn


class MPPIPlanner(_SequenceOptimizer):
    """VP2's MPPI (`maskvit.plan.mppi`) around the same batched evaluation as `CEMPlanner`.

    The plan is the updated mean; its `predicted` frames are the best-scoring sample's (the
    mean itself is never predicted), and each replan starts from the rest of the last mean.
    """

    def initial_mean(self) -> np.ndarray:
        cfg = self.config
        if self._next_mean is not None:
            return self._next_mean
        return np.tile(np.asarray(cfg.init_mean, float), (cfg.horizon, 1))

    def optimise(self, score: ScoreFn, rng: np.random.Generator) -> Plan:
        cfg = self.config
        last: dict[str, np.ndarray | None] = {}
        result = mppi_optimize(
            _chunked(score, cfg.chunk_size, last), self.initial_mean(),
            np.tile(np.asarray(cfg.init_std, float), (cfg.horizon, 1)), samples=cfg.samples,
            gamma=cfg.mppi_gamma, beta=cfg.noise_correlation, rng=rng, low=self.low, high=self.high)
        self._next_mean = shift_plan(result.mean, min(cfg.replan_every, cfg.horizon))
        frames = last["frames"]
        predicted = None if frames is None else frames[result.best]
        return Plan(result.mean, predicted, float(result.costs[result.best]))


def make_optimizer(config: PlanConfig, low: np.ndarray, high: np.ndarray) -> CEMPlanner | MPPIPlanner:
    """The optimizer `plan.optimizer` names, over the action bounds [low, high]."""
    return MPPIPlanner(config, low, high) if config.optimizer == "mppi" else CEMPlanner(config, low, high)


def _over_draws(score: ScoreFn, draws: int, how: str) -> ScoreFn:
    """`score` over `draws` independent model draws of every sequence, their costs combined
    by `how` (`plan.draw_cost`): "max" scores a sequence by its worst draw (and keeps that
    draw's frames), "mean" by the draws' mean (keeping the first draw's frames)."""

    def scored(actions: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        costs, frames = score(np.repeat(actions, draws, axis=0))  # draws of a sequence adjacent
        costs = np.asarray(costs, dtype=float).reshape(len(actions), draws)
        pick = costs.argmax(axis=1) if how == "max" else np.zeros(len(actions), dtype=int)
        combined = costs.max(axis=1) if how == "max" else costs.mean(axis=1)
        if frames is not None:
            frames = frames.reshape(len(actions), draws, *frames.shape[1:])[np.arange(len(actions)), pick]
        return combined, frames

    return scored


class ModelPlanner:
    """Visual MPC's planner: CEM through a video prediction model (`PredictFn`)."""

    def __init__(
        self,
        predict_fn: PredictFn,
        config: PlanConfig,
        low: np.ndarray,
        high: np.ndarray,
        cost: FrameCost | None = None,
        context: int = 2,
    ):
        self.predict_fn = predict_fn
        self.optimizer = make_optimizer(config, low, high)
        self.cost = cost or get_cost(config.cost)
        self.context = context  # frames of context (paper: 2, with 1 context action)
        # The frames to decode for scoring, where the named cost reads a few and the model
        # can decode those alone (None: all of them).
        reads = None if cost is not None else COST_READS.get(config.cost)
        self.decode_frames = list(reads) if reads and getattr(predict_fn, "decodes_subsets", False) else None
        self.latent = cost is None and config.cost in LATENT_COSTS
        if self.latent and not getattr(predict_fn, "predicts_latents", False):
            raise UserError(f"plan.cost={config.cost} compares the model's code vectors, and this model "
                            "gives frames only: use plan.cost=pixel_l2")

    def reset(self) -> None:
        self.optimizer.reset()

    def plan(
        self,
        context_frames: np.ndarray,
        context_actions: np.ndarray,
        goal: np.ndarray,
        rng: np.random.Generator,
    ) -> Plan:
        """context_frames (Tc, h, w, 3) uint8, context_actions (Tc-1, A), goal (h, w, 3)."""
        check_goal(goal, context_frames.shape[1:])
        observe(self.cost, context_frames[-1])
        if self.latent:
            unit, goal_latents = self._latent_units(context_frames[-1], goal)

        def score_draws(actions: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            if self.latent:
                latents = self._predict(context_frames, context_actions, actions, goal.shape, None, latents=True)
                return unit * self.cost(latents, goal_latents, self.optimizer.weights), None
            predicted = self._predict(context_frames, context_actions, actions, goal.shape, self.decode_frames)
            costs = self.cost(predicted, goal, self.optimizer.weights)
            return costs, None if self.decode_frames else predicted

        config = self.optimizer.config
        score = score_draws if config.draws == 1 else _over_draws(score_draws, config.draws, config.draw_cost)
        plan = self.optimizer.optimise(score, rng)
        if plan.predicted is None:  # scored on latents or a few frames: show the plan's frames, all of them
            plan.predicted = self._predict(context_frames, context_actions, plan.actions[None], goal.shape, None)[0]
        return plan

    def _latent_units(self, frame: np.ndarray, goal: np.ndarray) -> tuple[float, np.ndarray]:
        """(pixel cost of standing still here / latent cost of the same, the goal's latents).

        MPPI's γ is set for the pixel cost (`plan.mppi_gamma`); latent costs in these units
        are weighed by it as pixel costs are (the oracle scales its state costs the same
        way). CEM ranks samples, so for CEM the scale changes nothing.
        """
        weights = self.optimizer.weights
        here, goal_latents = self.predict_fn.latents_of(np.stack([frame, goal]))
        pixels = standing_still_cost(pixel_l2_cost, frame, goal, weights)
        latent = standing_still_cost(latent_l2_cost, here, goal_latents, weights)
        return (pixels / latent if pixels > 0 and latent > 0 else 1.0), goal_latents

    def _predict(self, context_frames: np.ndarray, context_actions: np.ndarray, actions: np.ndarray,
                 frame_shape: tuple[int, ...], decode_frames: list[int] | None,
                 latents: bool = False) -> np.ndarray:
        """(B, H or len(decode_frames), h, w, 3) uint8 for the action sequences (B, H, A);
        with `latents`, their code vectors (B, H, h', w', D) float32."""
        batch = len(actions)
        frames = np.broadcast_to(context_frames[None], (batch, *context_frames.shape))
        past = np.broadcast_to(context_actions[None], (batch, *context_actions.shape))
        if latents:
            predicted = np.asarray(self.predict_fn(frames, past, actions, latents=True))
            if predicted.ndim != 5 or predicted.shape[:2] != actions.shape[:2]:
                raise ValueError(f"predict_fn returned latents {predicted.shape} for actions {actions.shape}")
            return predicted
        if decode_frames is None:
            predicted = np.asarray(self.predict_fn(frames, past, actions))
        else:
            predicted = np.asarray(self.predict_fn(frames, past, actions, decode_frames=decode_frames))
        expected = (batch, actions.shape[1] if decode_frames is None else len(decode_frames), *frame_shape)
        if predicted.shape != expected:
            raise ValueError(f"predict_fn returned {predicted.shape} for actions {actions.shape}; expected {expected}")
        return predicted
