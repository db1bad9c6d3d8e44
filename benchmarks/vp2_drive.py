"""Drive VP2's own MPPI planner and squared-error cost against maskvit's VP2 adapter.

    python benchmarks/vp2_drive.py --vp2 PATH/TO/vp2-checkout [--model RUN] [--samples 16]

VP2 (s-tian/vp2) is not a dependency: point --vp2 at a checkout of it (the folder holding
`vp2/mpc/`). Only its planner and cost are imported (`vp2.mpc.mppi.MPPIOptimizer`,
`vp2.mpc.sampler.CorrelatedNoiseSampler`, `vp2.mpc.objectives.SquaredError`); the imports
those modules make for logging and for costs not used here (OpenCV, torchvision, moviepy,
piq, hydra, VP2's classifier) are stubbed, so VP2's environment need not be installed.
Plans are made for one push-world task (the shipped push64 model: 2-D actions) or, with a
RoboDesk model, one RoboDesk test instance, with VP2's RoboDesk settings (γ = 0.05, β = 0.5,
cost weight 0.5, horizon 10), then replanned once from the shifted mean as VP2 does.
Prints the plan's shapes and the predicted frames' cost against copying the context.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np

STUBBED = ["cv2", "moviepy", "moviepy.editor", "piq", "hydra", "hydra.utils", "torchvision",
           "torchvision.transforms", "vp2.util", "vp2.util.conv_predictor"]


class ObservationHistory(dict):
    """The part of VP2's ObservationList its MPPI uses: slicing in time, indexing by modality."""

    def __getitem__(self, key):
        if isinstance(key, slice):
            return ObservationHistory({name: value[key] for name, value in self.items()})
        return dict.__getitem__(self, key)


def import_vp2(checkout: Path):
    """VP2's MPPI, sampler and squared-error cost from a checkout, with logging imports stubbed."""
    if not (checkout / "vp2" / "mpc" / "mppi.py").is_file():
        raise SystemExit(f"{checkout} is not a VP2 checkout (no vp2/mpc/mppi.py); "
                         "clone https://github.com/s-tian/vp2 and pass its folder")
    for name in STUBBED:
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["hydra.utils"].to_absolute_path = lambda path: path
    for module, names in (("torchvision.transforms", ("Resize", "InterpolationMode")), ("piq", ("LPIPS",)),
                          ("vp2.util.conv_predictor", ("ConvPredictor",))):
        for attribute in names:
            setattr(sys.modules[module], attribute, object)
    sys.path.insert(0, str(checkout))
    from vp2.mpc.mppi import MPPIOptimizer
    from vp2.mpc.objectives import SquaredError
    from vp2.mpc.sampler import CorrelatedNoiseSampler

    return MPPIOptimizer, CorrelatedNoiseSampler, SquaredError


def first_observations(model) -> tuple[np.ndarray, np.ndarray]:
    """Two context frames (after one zero action, as VP2 starts) and a goal image, uint8."""
    if model.predictor.config.transformer.action_dim == 5:
        from maskvit.plan.worlds import DeskPlanningWorld

        world = DeskPlanningWorld(task="push_red", split="test")
        first = world.reset(0)
        second = world.step(np.zeros(5))
        goal = world.goal_image()
    else:
        from maskvit.sim import PushEnv, make_push_task

        world = PushEnv()
        first, _ = world.reset(options={"task": make_push_task(7, world.config)})
        goal = world.goal_image()
        second, *_ = world.step(np.zeros(2, np.float32))
    world.close()
    return np.stack([first, second]), goal


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vp2", required=True, type=Path, help="a checkout of s-tian/vp2")
    parser.add_argument("--model", default=None, help="run or bundle (default: the shipped push64)")
    parser.add_argument("--samples", type=int, default=16, help="MPPI samples (VP2: 200; default 16)")
    args = parser.parse_args(argv)

    MPPIOptimizer, CorrelatedNoiseSampler, SquaredError = import_vp2(args.vp2.resolve())
    from maskvit.integrations.vp2 import MaskViTVP2Model

    model = MaskViTVP2Model(args.model)
    a_dim, horizon = model.predictor.config.transformer.action_dim, 10
    context, goal_image = first_observations(model)
    history = ObservationHistory({"rgb": context.astype(np.float64) / 255.0})
    goal = {"rgb": goal_image[None].astype(np.float64) / 255.0}
    cost = SquaredError("rgb", 0.5)
    optimizer = MPPIOptimizer(CorrelatedNoiseSampler(a_dim, 0.5, horizon), model, cost, a_dim, horizon,
                              args.samples, gamma=0.05, init_std=[0.5] * a_dim, log_every=10**9)
    states = [np.zeros(1)] * 2
    plan = optimizer.plan(1, ".", history, states, [np.zeros(a_dim)], goal)
    replan = optimizer.plan(2, ".", history, states, [np.zeros(a_dim)], goal, init_mean=plan[1:])
    print(f"VP2's MPPI + SquaredError on maskvit's adapter: plan {plan.shape}, replan {replan.shape}, "
          f"actions in [{plan.min():.2f}, {plan.max():.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
