"""The planner and the closed loop, driven by a stand-in video model on a toy world."""

import dataclasses

import numpy as np
import pytest
from stand_ins import PointWorld, locate_point, point_predictor, render_point

from maskvit.config import PlanConfig
from maskvit.errors import UserError
from maskvit.plan.baselines import RandomPolicy
from maskvit.plan.mpc import run_episode
from maskvit.plan.planner import ModelPlanner, latent_l2_cost, pixel_l2_cost


def _config(**changes) -> PlanConfig:
    base = PlanConfig(init_mean=(0.0, 0.0), init_std=(0.05, 0.05), round_gripper=False)
    return dataclasses.replace(base, **changes)


def test_model_planner_moves_the_predicted_blob_onto_the_goal():
    world = PointWorld()
    first = world.reset(3)
    context = np.stack([first, first])
    goal = world.goal_image()
    planner = ModelPlanner(point_predictor, _config(), world.action_low, world.action_high)
    plan = planner.plan(context, np.zeros((1, 2)), goal, np.random.default_rng(0))
    assert plan.actions.shape == (10, 2) and plan.predicted.shape == (10, 16, 16, 3)
    end = locate_point(plan.predicted[-1])
    assert np.linalg.norm(end - world.goal) < 0.05  # from 0.3 away
    # the predicted frames are the ones for the chosen actions, and the cost matches them
    np.testing.assert_array_equal(plan.predicted, point_predictor(context[None], np.zeros((1, 1, 2)), plan.actions[None])[0])
    assert plan.cem.best_costs[-1] == pytest.approx(plan.cost)


def test_several_draws_score_a_sequence_by_its_worst_draw():
    """A model whose every third draw shows the goal reached, whatever the actions (a phantom):
    one draw a sequence lets the planner pick a phantom; the worst of three never does."""
    world = PointWorld()
    first = world.reset(3)
    context, goal, past = np.stack([first, first]), world.goal_image(), np.zeros((1, 2))

    def phantom_every_third(frames, past, future):
        drawn = point_predictor(frames, past, future).copy()
        drawn[::3] = goal
        return drawn

    def plan(**changes):
        planner = ModelPlanner(phantom_every_third, _config(samples=48, iterations=2, chunk_size=16, **changes),
                               world.action_low, world.action_high)
        return planner, planner.plan(context, past, goal, np.random.default_rng(0))

    _, lured = plan()
    assert lured.cost == 0.0
    planner, worst = plan(draws=3)
    honest = point_predictor(context[None], past[None], worst.actions[None])[0]
    np.testing.assert_array_equal(worst.predicted, honest)  # the worst draw's frames, kept
    assert worst.cost == pytest.approx(float(pixel_l2_cost(honest[None], goal, planner.optimizer.weights)[0]), rel=1e-5)
    assert worst.cost > 0.0
    planner, mean = plan(draws=3, draw_cost="mean")
    honest = point_predictor(context[None], past[None], mean.actions[None])[0]
    expected = 2 / 3 * float(pixel_l2_cost(honest[None], goal, planner.optimizer.weights)[0])
    assert mean.cost == pytest.approx(expected, rel=1e-5)


def test_draw_settings_out_of_range_are_one_line_errors():
    world = PointWorld()
    with pytest.raises(UserError, match="plan.draws must be"):
        ModelPlanner(point_predictor, _config(draws=0), world.action_low, world.action_high)
    with pytest.raises(UserError, match="plan.draw_cost must be one of max, mean; got 'median'"):
        ModelPlanner(point_predictor, _config(draw_cost="median"), world.action_low, world.action_high)


def test_predictions_are_requested_in_chunks_with_the_context_broadcast():
    calls = []

    def recording(frames, past, future):
        calls.append((frames.shape, past.shape, future.shape))
        return point_predictor(frames, past, future)

    world = PointWorld()
    first = world.reset(0)
    planner = ModelPlanner(recording, _config(samples=40, iterations=2, chunk_size=16),
                           world.action_low, world.action_high)
    planner.plan(np.stack([first, first]), np.zeros((1, 2)), world.goal_image(), np.random.default_rng(0))
    assert [c[2][0] for c in calls] == [16, 16, 8, 16, 16, 8]
    assert calls[0][0] == (16, 2, 16, 16, 3) and calls[0][1] == (16, 1, 2)


def test_mpc_loop_with_the_stand_in_model_solves_short_episodes():
    world = PointWorld()
    cfg = _config(samples=128, episode_steps=7, replan_every=3)
    planner = ModelPlanner(point_predictor, cfg, world.action_low, world.action_high)
    results = [run_episode(world, planner, seed, cfg, np.random.default_rng(seed)) for seed in (1, 2)]
    for result in results:
        assert result.frames.shape == (8, 16, 16, 3) and result.actions.shape == (7, 2)
        assert [p.step for p in result.plans] == [1, 4]  # after the initial action, every 3
        np.testing.assert_array_equal(result.actions[0], [0, 0])  # the initial action
        np.testing.assert_array_equal(result.actions[1:4], result.plans[0].actions[:3])
        assert result.final_distance < result.start_distance
    assert all(r.success for r in results)


def test_random_policy_rarely_reaches_the_goal_in_the_toy_world():
    world = PointWorld()
    cfg = _config(episode_steps=7)
    policy = RandomPolicy(cfg, world.action_low, world.action_high)
    wins = sum(run_episode(world, policy, s, cfg, np.random.default_rng(s)).success for s in range(20))
    assert wins <= 3


def test_goal_image_of_the_wrong_size_is_a_one_line_error():
    world = PointWorld()
    first = world.reset(0)
    planner = ModelPlanner(point_predictor, _config(), world.action_low, world.action_high)
    with pytest.raises(UserError, match="goal image is 32×32×3 uint8 but observations are 16×16×3"):
        planner.plan(np.stack([first, first]), np.zeros((1, 2)), np.zeros((32, 32, 3), np.uint8),
                     np.random.default_rng(0))


def test_plan_config_outside_the_action_bounds_is_a_one_line_error():
    low, high = np.full(2, -0.1), np.full(2, 0.1)
    with pytest.raises(UserError, match="outside the action bounds"):
        ModelPlanner(point_predictor, _config(init_mean=(0.5, 0.0)), low, high)
    with pytest.raises(UserError, match="plan.init_std has 5 entries"):
        ModelPlanner(point_predictor, PlanConfig(init_mean=(0.0, 0.0)), low, high)


def test_an_action_outside_the_bounds_stops_the_loop_with_a_one_line_error():
    class Reckless(RandomPolicy):
        def plan(self, *args):
            plan = super().plan(*args)
            plan.actions[:] = 0.5
            return plan

    world = PointWorld()
    cfg = _config(episode_steps=4)
    with pytest.raises(UserError, match=r"action \[0.5, 0.5\] is outside the bounds"):
        run_episode(world, Reckless(cfg, world.action_low, world.action_high), 0, cfg, np.random.default_rng(0))
    with pytest.raises(UserError, match="initial_action"):
        RandomPolicy(_config(initial_action=(0.0,)), world.action_low, world.action_high)


class LastFrameDecoder:
    """The stand-in model, able to turn only some predicted frames into pixels (as
    `SeededPredictFn` does), recording what each call asked for."""

    decodes_subsets = True

    def __init__(self):
        self.asked = []

    def __call__(self, frames, past, future, decode_frames=None):
        self.asked.append((len(future), decode_frames))
        predicted = point_predictor(frames, past, future)
        return predicted if decode_frames is None else predicted[:, decode_frames]


@pytest.mark.parametrize("optimizer", ["cem", "mppi"])
def test_a_cost_that_reads_the_last_frame_has_only_that_frame_decoded(optimizer):
    world = PointWorld()
    first = world.reset(3)
    context, goal = np.stack([first, first]), world.goal_image()
    cfg = _config(cost="final_pixel_l2", optimizer=optimizer, samples=32, iterations=2)
    decoder = LastFrameDecoder()
    plan = ModelPlanner(decoder, cfg, world.action_low, world.action_high).plan(
        context, np.zeros((1, 2)), goal, np.random.default_rng(0))
    whole = ModelPlanner(point_predictor, cfg, world.action_low, world.action_high).plan(
        context, np.zeros((1, 2)), goal, np.random.default_rng(0))
    scored = [asked for asked in decoder.asked if asked[0] == 32]
    assert scored and all(frames == [-1] for _, frames in scored)
    # the same plan as scoring all decoded frames (the cost reads the last one only) ...
    np.testing.assert_array_equal(plan.actions, whole.actions)
    assert plan.cost == pytest.approx(whole.cost)
    # ... and the plan's frames, for the GIFs, are all of what its actions lead to
    assert decoder.asked[-1] == (1, None)
    np.testing.assert_array_equal(plan.predicted, point_predictor(context[None], np.zeros((1, 1, 2)), plan.actions[None])[0])


class PooledLatents:
    """The stand-in model with a latent space: 2×2 mean-pooled frames (8×8×3 code vectors),
    as `SeededPredictFn` gives a Predictor's; it records what each call asked for."""

    predicts_latents = True

    def __init__(self):
        self.asked = []

    @staticmethod
    def pool(frames: np.ndarray) -> np.ndarray:
        f = frames.astype(np.float32) / 255.0
        return f.reshape(*f.shape[:-3], 8, 2, 8, 2, 3).mean(axis=(-4, -2))

    def __call__(self, frames, past, future, latents=False):
        self.asked.append((len(future), latents))
        predicted = point_predictor(frames, past, future)
        return self.pool(predicted) if latents else predicted

    def latents_of(self, frames):
        return self.pool(frames)


@pytest.mark.parametrize("optimizer", ["cem", "mppi"])
def test_a_latent_cost_plans_on_code_vectors_and_shows_the_plans_frames(optimizer):
    world = PointWorld()
    first = world.reset(3)
    context, goal = np.stack([first, first]), world.goal_image()
    model = PooledLatents()
    planner = ModelPlanner(model, _config(cost="latent_l2", optimizer=optimizer, samples=64, iterations=3),
                           world.action_low, world.action_high)
    plan = planner.plan(context, np.zeros((1, 2)), goal, np.random.default_rng(0))
    assert np.linalg.norm(locate_point(plan.predicted[-1]) - world.goal) < 0.08  # from 0.3 away
    assert all(latents for n, latents in model.asked if n == 64)  # scored without pixels
    assert model.asked[-1] == (1, False)  # the chosen plan's frames, for the GIFs
    np.testing.assert_array_equal(plan.predicted, point_predictor(context[None], np.zeros((1, 1, 2)), plan.actions[None])[0])
    # latent costs come in pixel units (MPPI's γ is set for pixels): standing still costs the same
    unit, goal_latents = planner._latent_units(first, goal)
    weights = planner.optimizer.weights
    still_pixels = pixel_l2_cost(np.broadcast_to(first, (1, 10, *first.shape)), goal, weights)[0]
    still_latents = latent_l2_cost(np.broadcast_to(model.pool(first), (1, 10, 8, 8, 3)), goal_latents, weights)[0]
    assert unit * still_latents == pytest.approx(still_pixels, rel=1e-5)


def test_a_latent_cost_needs_a_model_with_latents_and_the_oracle_scores_pixels_instead():
    from maskvit.plan.baselines import OraclePolicy

    world = PointWorld()
    with pytest.raises(UserError, match="latent_l2 compares the model's code vectors"):
        ModelPlanner(point_predictor, _config(cost="latent_l2"), world.action_low, world.action_high)
    class Simulable(PointWorld):
        def scratch(self):  # the oracle's copy; only built here, never stepped
            return self

    oracle = OraclePolicy(Simulable(), _config(cost="latent_l2"), cost="pixel")
    assert oracle.frame_cost is pixel_l2_cost


def test_render_and_locate_round_trip():
    xy = np.array([[0.25, 0.6], [0.7, 0.3]])
    np.testing.assert_allclose(locate_point(render_point(xy)), xy, atol=0.01)


def test_predictor_adapter_passes_clip_actions_and_fresh_seeds():
    from maskvit.config import DecodingConfig
    from maskvit.plan.predictor_fn import predictor_fn

    seen = []

    class FakePredictor:
        def predict(self, context_frames, actions, num_frames, decoding, seed):
            seen.append((context_frames.shape, actions.shape, num_frames, decoding.steps,
                         decoding.schedule, seed))
            return np.zeros((len(context_frames), num_frames, 16, 16, 3), np.uint8)

    predict = predictor_fn(FakePredictor(), DecodingConfig(steps=5), seed=7)
    frames = np.zeros((3, 2, 16, 16, 3), np.uint8)
    out = predict(frames, np.zeros((3, 1, 2)), np.zeros((3, 10, 2)))
    predict(frames, np.zeros((3, 1, 2)), np.zeros((3, 10, 2)))
    assert out.shape == (3, 10, 16, 16, 3) and out.dtype == np.uint8
    assert seen[0] == ((3, 2, 16, 16, 3), (3, 12, 2), 10, 5, "cosine", 7)
    assert seen[1][-1] == 8  # every call samples afresh


def test_warm_start_begins_the_next_plan_from_the_shifted_refit_mean():
    world = PointWorld()
    first = world.reset(0)
    context, goal = np.stack([first, first]), world.goal_image()
    for warm in (False, True):
        planner = ModelPlanner(point_predictor, _config(samples=32, iterations=2, warm_start=warm),
                               world.action_low, world.action_high)
        assert np.array_equal(planner.optimizer.initial_mean(), np.zeros((10, 2)))
        plan = planner.plan(context, np.zeros((1, 2)), goal, np.random.default_rng(0))
        expected = np.concatenate([plan.cem.mean[3:], np.zeros((3, 2))]) if warm else np.zeros((10, 2))
        np.testing.assert_array_equal(planner.optimizer.initial_mean(), expected)
        planner.reset()
        assert np.array_equal(planner.optimizer.initial_mean(), np.zeros((10, 2)))


class _SolvedAfter(PointWorld):
    """The point world whose success latches after `solved_at` steps."""

    def __init__(self, solved_at: int, kept: bool):
        super().__init__()
        self.solved_at, self.steps = solved_at, 0
        if kept:
            self.success_is_kept = True

    def reset(self, task_seed):
        self.steps = 0
        return super().reset(task_seed)

    def step(self, action):
        self.steps += 1
        return super().step(action)

    def success(self):
        return self.steps >= self.solved_at


def test_a_world_whose_success_is_kept_ends_the_episode_at_the_first_solved_step():
    cfg = _config(samples=8, iterations=1, episode_steps=9, replan_every=3)
    policy = RandomPolicy(cfg, np.array([-0.05, -0.05]), np.array([0.05, 0.05]))
    kept = run_episode(_SolvedAfter(5, kept=True), policy, 0, cfg, np.random.default_rng(0))
    assert kept.success and kept.actions.shape == (5, 2) and len(kept.frames) == 6
    judged_at_the_end = run_episode(_SolvedAfter(5, kept=False), policy, 0, cfg, np.random.default_rng(0))
    assert judged_at_the_end.success and judged_at_the_end.actions.shape == (9, 2)
