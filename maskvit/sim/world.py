"""The PyBullet scene of the push world: a Kuka iiwa arm, a table, coloured boxes, a camera.

Each `PushWorld` owns its own headless PyBullet client, so several worlds can live in one
process (e.g. a planner's scratch copy). Images come from the CPU TinyRenderer. PyBullet's
C code prints banners straight to file descriptors 1 and 2 (`quiet_native_output` silences
them), where our own one-line errors must stay alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from maskvit.sim.push_config import BOX_COLOURS, PushConfig
from maskvit.sim.scenes import SceneLayout


def _flush_c_stdio() -> None:
    """Flush C's stdio buffers, so what C code printed leaves while it is redirected."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def quiet_native_output() -> Iterator[None]:
    """Send fds 1 and 2 to /dev/null for the block: C code's banners bypass `sys.stdout`.

    Our own errors must stay one line on stderr; pybullet prints "pybullet build time: ..."
    when imported and "argv[0]=" when a client connects.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
    except (OSError, ValueError, AttributeError):  # no real fds (e.g. captured by a harness)
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                _flush_c_stdio()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        for fd in saved:
            os.close(fd)


with quiet_native_output():  # pybullet's C code prints a build banner on import
    import pybullet
    import pybullet_data
    from pybullet_utils import bullet_client

ARM_LINK = 6  # the last link of the iiwa: its flat end is the pusher
ARM_FLANGE_TO_TIP = 0.048  # metres from that link's frame down to its lowest point
_DOWN = pybullet.getQuaternionFromEuler([0.0, np.pi, 0.0])
# Null-space IK keeps the arm in one elbow-up family inside its joint limits.
_LOWER = [-2.96, -2.09, -2.96, -2.09, -2.96, -2.09, -3.05]
_UPPER = [2.96, 2.09, 2.96, 2.09, 2.96, 2.09, 3.05]
_RANGES = [u - lo for lo, u in zip(_LOWER, _UPPER, strict=True)]
_REST = [0.0, 0.7, 0.0, -1.4, 0.0, 1.05, 0.0]


@dataclass
class PushState:
    """Everything that decides the future of the world (plain arrays: picklable, copyable)."""

    joint_positions: np.ndarray  # (7,)
    joint_velocities: np.ndarray  # (7,)
    box_poses: np.ndarray  # (n, 7): x, y, z, quaternion xyzw
    box_velocities: np.ndarray  # (n, 6): linear, angular
    target_xy: np.ndarray  # (2,) where the pusher is being driven
    steps: int


class PushWorld:
    """Builds the scene once; `place` and `set_state` reposition it without reloading."""

    def __init__(self, config: PushConfig):
        self.config = config
        with quiet_native_output():  # "argv[0]=" on every connection
            self.client = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
        c = self.client
        c.setAdditionalSearchPath(pybullet_data.getDataPath())
        c.setGravity(0, 0, -9.81)
        c.setPhysicsEngineParameter(fixedTimeStep=config.time_step, numSolverIterations=config.solver_iterations,
                                    deterministicOverlappingPairs=1)
        self.table = self._box_body([0.6, 0.8, 0.02], [0.62, 0.0, -0.02], (0.66, 0.56, 0.44, 1), mass=0.0)  # wooden
        c.changeDynamics(self.table, -1, lateralFriction=config.box_friction)
        self.arm = c.loadURDF("kuka_iiwa/model.urdf", [0, 0, 0], useFixedBase=True)
        self.num_joints = c.getNumJoints(self.arm)
        self._arm_proxies = self._make_arm_proxies()
        h = config.box_half_extent
        self._box_collision = c.createCollisionShape(pybullet.GEOM_BOX, halfExtents=[h, h, h])
        self._box_visuals = [
            c.createVisualShape(pybullet.GEOM_BOX, halfExtents=[h, h, h], rgbaColor=BOX_COLOURS[i % len(BOX_COLOURS)])
            for i in range(config.num_boxes)
        ]
        self.boxes: list[int] = []
        self.target_xy = np.zeros(2)
        self.steps = 0
        self._view = c.computeViewMatrix(config.camera_eye, config.camera_target, [-1, 0, 0])  # arm base at the top
        self._projection = c.computeProjectionMatrixFOV(config.camera_fov, 1.0, 0.05, 3.0)

    def _spawn_boxes(self, poses: np.ndarray, velocities: np.ndarray | None = None) -> None:
        """(Re)create the boxes at `poses` (n, 7).

        New bodies start with no cached contacts, so what happens next depends only on the
        given state, not on the history of this world: that makes `reset(seed)` and
        `set_state` exactly reproducible.
        """
        c = self.client
        for box in self.boxes:
            c.removeBody(box)
        self.boxes = []
        for i, pose in enumerate(poses):
            # Inertia comes from the collision box and the mass (m(b² + c²)/12 about each axis).
            box = c.createMultiBody(self.config.box_mass, self._box_collision, self._box_visuals[i],
                                    list(pose[:3]), list(pose[3:]))
            c.changeDynamics(box, -1, lateralFriction=self.config.box_friction, spinningFriction=0.001,
                             rollingFriction=0.0)
            if velocities is not None:
                c.resetBaseVelocity(box, list(velocities[i][:3]), list(velocities[i][3:]))
            self.boxes.append(box)

    def _box_body(self, half: list[float], position: list[float], colour, mass: float) -> int:
        c = self.client
        collision = c.createCollisionShape(pybullet.GEOM_BOX, halfExtents=half)
        visual = c.createVisualShape(pybullet.GEOM_BOX, halfExtents=half, rgbaColor=colour)
        # Inertia comes from the collision box and the mass (m(b² + c²)/12 about each axis).
        return c.createMultiBody(mass, collision, visual, position)

    def _make_arm_proxies(self) -> list[tuple[int, int, int]]:
        """Low-polygon stand-ins for the arm's meshes, which would cost 80% of render time.

        The iiwa's detailed meshes are hidden (fully transparent: the TinyRenderer skips
        them) and four capsules, one per rigid segment between the shoulder, elbow and
        wrist joints and the tip, are drawn in their place; they do not collide.
        Returns (body, from point, to point) with points indexed as in `_arm_points`.
        """
        c = self.client
        for link in range(-1, self.num_joints):
            c.changeVisualShape(self.arm, link, rgbaColor=(1, 1, 1, 0))
        points = self._arm_points()
        proxies = []
        segments = [(0, 1, 0.075, 0.35), (1, 2, 0.065, 0.9), (2, 3, 0.045, 0.75), (3, 4, 0.036, 0.12)]
        for a, b, radius, shade in segments:
            length = float(np.linalg.norm(points[b] - points[a]))
            visual = c.createVisualShape(pybullet.GEOM_CAPSULE, radius=radius, length=length,
                                         rgbaColor=(shade, shade, shade, 1))
            proxies.append((c.createMultiBody(0.0, -1, visual, [0, 0, -1]), a, b))
        return proxies

    def _arm_points(self) -> np.ndarray:
        """Base, shoulder, elbow, wrist and tip positions (5, 3), from the link frames."""
        states = self.client.getLinkStates(self.arm, [1, 3, 5, ARM_LINK])
        shoulder, elbow, wrist = (np.array(s[4]) for s in states[:3])
        flange_position, flange_orientation = states[3][4], states[3][5]
        rotation = np.array(self.client.getMatrixFromQuaternion(flange_orientation)).reshape(3, 3)
        tip = np.array(flange_position) + rotation @ np.array([0.0, 0.0, ARM_FLANGE_TO_TIP - 0.045])
        return np.stack([np.zeros(3), shoulder, elbow, wrist, tip])

    def _sync_arm_proxies(self) -> None:
        points = self._arm_points()
        for body, a, b in self._arm_proxies:
            direction = points[b] - points[a]
            direction /= np.linalg.norm(direction)
            axis = np.array([-direction[1], direction[0], 0.0])  # z × direction
            sin, cos = np.hypot(direction[0], direction[1]), direction[2]
            axis = axis / sin if sin > 1e-9 else np.array([1.0, 0.0, 0.0])
            angle = np.arctan2(sin, cos)
            quaternion = [*(axis * np.sin(angle / 2)), np.cos(angle / 2)]
            self.client.resetBasePositionAndOrientation(body, (points[a] + points[b]) / 2, quaternion)

    # -- placement and state
    def place(self, layout: SceneLayout) -> None:
        """Put the boxes and the pusher where `layout` says, at rest."""
        c = self.client
        h = self.config.box_half_extent
        self._spawn_boxes(np.array([[xy[0], xy[1], h, *c.getQuaternionFromEuler([0, 0, yaw])]
                                    for xy, yaw in zip(layout.box_xy, layout.box_yaw, strict=True)]))
        for j, q in enumerate(_REST):  # IK starts from the current joints: make them fixed
            c.resetJointState(self.arm, j, q, 0.0)
        joints = self._solve_ik(np.asarray(layout.pusher_xy), iterations=12)
        for j, q in enumerate(joints):
            c.resetJointState(self.arm, j, q, 0.0)
        self.target_xy = np.array(layout.pusher_xy, dtype=np.float64)
        self._drive(joints)
        self.steps = 0

    def get_state(self) -> PushState:
        c = self.client
        joint_states = c.getJointStates(self.arm, range(self.num_joints))
        poses, velocities = [], []
        for box in self.boxes:
            position, orientation = c.getBasePositionAndOrientation(box)
            linear, angular = c.getBaseVelocity(box)
            poses.append([*position, *orientation])
            velocities.append([*linear, *angular])
        return PushState(
            joint_positions=np.array([s[0] for s in joint_states]),
            joint_velocities=np.array([s[1] for s in joint_states]),
            box_poses=np.array(poses),
            box_velocities=np.array(velocities),
            target_xy=self.target_xy.copy(),
            steps=self.steps,
        )

    def set_state(self, state: PushState) -> None:
        """Restore a state from `get_state` (of this world or another with the same config)."""
        c = self.client
        self._spawn_boxes(state.box_poses, state.box_velocities)
        for j in range(self.num_joints):
            c.resetJointState(self.arm, j, state.joint_positions[j], state.joint_velocities[j])
        self.target_xy = state.target_xy.copy()
        self._drive(self._solve_ik(self.target_xy))
        self.steps = state.steps

    # -- motion
    def move(self, delta_xy: np.ndarray) -> None:
        """Shift the pusher's target by `delta_xy` (clipped) and simulate one action period."""
        cfg = self.config
        delta = np.clip(np.asarray(delta_xy, dtype=np.float64), -cfg.max_step, cfg.max_step)
        target = self.target_xy + delta
        target[0] = np.clip(target[0], *cfg.workspace_x)
        target[1] = np.clip(target[1], *cfg.workspace_y)
        # Drive through evenly spaced waypoints: a steady pusher speed instead of a jerk
        # that would launch the boxes.
        # (joint-space interpolation to one IK solution: a 5 cm step is short enough
        # for the tip to stay close to the straight line)
        start = np.array(self._joint_targets)
        goal = np.array(self._solve_ik(target))
        for i in range(1, cfg.waypoints + 1):
            self._drive(list(start + (goal - start) * i / cfg.waypoints))
            for _ in range(cfg.substeps // cfg.waypoints):
                self.client.stepSimulation()
        self.target_xy = target
        self.steps += 1

    def _solve_ik(self, xy: np.ndarray, iterations: int = 1) -> list[float]:
        c = self.client
        position = [float(xy[0]), float(xy[1]), ARM_FLANGE_TO_TIP + self.config.push_height]
        for i in range(iterations):
            joints = c.calculateInverseKinematics(
                self.arm, ARM_LINK, position, _DOWN, lowerLimits=_LOWER, upperLimits=_UPPER,
                jointRanges=_RANGES, restPoses=_REST, maxNumIterations=50, residualThreshold=1e-4,
            )
            if i + 1 < iterations:  # refine from the new configuration
                for j, q in enumerate(joints):
                    c.resetJointState(self.arm, j, q, 0.0)
        return list(joints)

    def _drive(self, joints: list[float]) -> None:
        self._joint_targets = list(joints)
        self.client.setJointMotorControlArray(
            self.arm, list(range(self.num_joints)), pybullet.POSITION_CONTROL, targetPositions=joints,
            forces=[300.0] * self.num_joints, positionGains=[0.2] * self.num_joints,
        )

    # -- reading
    def pusher_position(self) -> np.ndarray:
        """(x, y, z) of the pusher's tip."""
        position = np.array(self.client.getLinkState(self.arm, ARM_LINK)[4])
        position[2] -= ARM_FLANGE_TO_TIP
        return position

    def box_positions(self) -> np.ndarray:
        """(n, 2) box centres on the table."""
        return np.array([self.client.getBasePositionAndOrientation(b)[0][:2] for b in self.boxes])

    def box_yaws(self) -> np.ndarray:
        c = self.client
        return np.array([c.getEulerFromQuaternion(c.getBasePositionAndOrientation(b)[1])[2] for b in self.boxes])

    def render(self, size: int | None = None) -> np.ndarray:
        """uint8 (size, size, 3) image from the fixed camera."""
        size = size or self.config.image_size
        self._sync_arm_proxies()
        _, _, rgba, _, _ = self.client.getCameraImage(
            size, size, self._view, self._projection, renderer=pybullet.ER_TINY_RENDERER,
            shadow=0, lightDirection=[0.4, -0.3, 1.0], flags=pybullet.ER_NO_SEGMENTATION_MASK,
        )
        return np.asarray(rgba, dtype=np.uint8).reshape(size, size, 4)[..., :3].copy()

    def render_box_masks(self, size: int | None = None) -> np.ndarray:
        """bool (n_boxes, size, size): where each box is visible, from the renderer itself.

        The ground truth that colour segmentation (`maskvit.metrics.objects`) is checked
        against; predicted frames have no such masks, so the metrics segment by colour.
        """
        size = size or self.config.image_size
        self._sync_arm_proxies()
        _, _, _, _, seg = self.client.getCameraImage(
            size, size, self._view, self._projection, renderer=pybullet.ER_TINY_RENDERER,
            shadow=0, lightDirection=[0.4, -0.3, 1.0],
        )
        seg = np.asarray(seg).reshape(size, size)
        return np.stack([seg == box for box in self.boxes])

    def project(self, xyz) -> tuple[float, float]:
        """(row, column) in the rendered image of a world point: to find things in pictures."""
        view = np.array(self._view).reshape(4, 4).T
        projection = np.array(self._projection).reshape(4, 4).T
        clip = projection @ view @ np.array([*xyz, 1.0])
        x, y = clip[:2] / clip[3]
        size = self.config.image_size
        return (1 - y) / 2 * size, (x + 1) / 2 * size

    def render_with_box_at(self, index: int, xy: tuple[float, float], yaw: float) -> np.ndarray:
        """An image with box `index` moved to (xy, yaw); the world is left unchanged."""
        c = self.client
        box = self.boxes[index]
        position, orientation = c.getBasePositionAndOrientation(box)
        linear, angular = c.getBaseVelocity(box)
        h = self.config.box_half_extent
        c.resetBasePositionAndOrientation(box, [xy[0], xy[1], h], c.getQuaternionFromEuler([0, 0, yaw]))
        image = self.render()
        c.resetBasePositionAndOrientation(box, position, orientation)
        c.resetBaseVelocity(box, linear, angular)
        return image

    def close(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client = None
