"""Visual model-predictive control with CEM (paper §4.4, Appendix A.2, Table 5) or VP2's MPPI.

- `cem`: pure sampling (time-correlated noise), elite selection and refit, `cem_optimize`.
- `planner`: frame costs against a goal image (default: weighted ℓ2 pixel distance), and
  `ModelPlanner` = CEM or MPPI whose samples are scored through any `PredictFn`.
- `mppi`: VP2's MPPI update and warm start.
- `mpc`: `run_episode`, the closed loop (plan, execute `replan_every` actions, replan).
- `baselines`: `RandomPolicy` and `OraclePolicy` (the same optimizer on a simulator copy).
- `worlds`: `make_world("push" | "robodesk")` behind the loop's `World` interface.
- `predictor_fn`: a `Predictor` (`maskvit.inference`) as a `PredictFn`.
- `closed_loop` / `plan_report`: several policies on the same tasks, sharded over processes;
  results.json, GIFs, HTML.
"""

from maskvit.plan.baselines import OraclePolicy, RandomPolicy
from maskvit.plan.cem import CEMResult, cem_optimize, correlated_noise, lag1_correlation
from maskvit.plan.closed_loop import play_policies
from maskvit.plan.mpc import EpisodeResult, run_episode
from maskvit.plan.planner import COSTS, CEMPlanner, ModelPlanner, Plan, PredictFn, pixel_l2_cost
from maskvit.plan.predictor_fn import predictor_fn
from maskvit.plan.worlds import make_world

__all__ = [
    "COSTS", "CEMPlanner", "CEMResult", "EpisodeResult", "ModelPlanner", "OraclePolicy", "Plan",
    "PredictFn", "RandomPolicy", "cem_optimize", "correlated_noise", "play_policies",
    "lag1_correlation", "make_world", "pixel_l2_cost",
    "predictor_fn", "run_episode",
]
