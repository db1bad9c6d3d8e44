"""Settings of the push world: geometry, physics rate, camera, task difficulty."""

from __future__ import annotations

from dataclasses import dataclass

# RGBA colours of the boxes, in order (box i has colour i): saturated hues far from the
# wooden table's and the grey arm's, so boxes can be found in pictures by colour alone
# (`maskvit.metrics.objects`).
BOX_COLOURS = [(0.9, 0.1, 0.1, 1), (0.1, 0.75, 0.15, 1), (0.15, 0.3, 0.95, 1), (0.95, 0.85, 0.1, 1),
               (0.8, 0.2, 0.85, 1), (0.1, 0.85, 0.85, 1)]


@dataclass(frozen=True)
class PushConfig:
    """One place for every number of the push world (lengths in metres, masses in kg).

    The arm's pusher moves in a horizontal plane at `push_height`; an action (dx, dy) moves
    its target by at most `max_step` per axis per step (larger actions are clipped), and the
    target never leaves the workspace rectangle.
    """

    image_size: int = 64  # observations are image_size × image_size × 3 uint8
    num_boxes: int = 2
    box_half_extent: float = 0.05  # 10 cm cubes: about 8 pixels wide at 64×64 (one token)
    box_mass: float = 0.3
    box_friction: float = 0.6
    max_step: float = 0.05  # action bound per axis, metres per step
    workspace_x: tuple[float, float] = (0.38, 0.78)  # where the pusher may go (boxes pushed
    # past its edges stay inside the camera view)
    workspace_y: tuple[float, float] = (-0.24, 0.24)
    push_height: float = 0.012  # gap between the pusher's tip and the table
    time_step: float = 1.0 / 120.0  # physics step (s)
    substeps: int = 24  # physics steps per action: 0.2 s per action
    waypoints: int = 4  # pusher targets per action (steady motion, no jerks)
    solver_iterations: int = 20
    # Tasks: the object must end within `success_threshold` of a goal placed
    # `goal_distance` away from where it starts. Every scene starts with the pusher
    # `pusher_gap` behind one box (the "object"), on the far side from a push direction
    # that points away from the arm's base or sideways (within `push_angle` of +x): the
    # arm then never hides the object from the camera.
    goal_distance: tuple[float, float] = (0.12, 0.20)
    success_threshold: float = 0.04
    pusher_gap: float = 0.10
    pusher_radius: float = 0.06  # measured: a box starts to move when its centre is
    # box_half_extent + pusher_radius from the pusher's
    push_angle: float = 1.75  # radians (about 100 degrees)
    # Camera: looks down steeply at the workspace from the side opposite the arm's base
    # (the arm enters from the top of the image).
    camera_eye: tuple[float, float, float] = (0.78, 0.0, 1.2)
    camera_target: tuple[float, float, float] = (0.58, 0.0, 0.0)
    camera_fov: float = 25.0  # the workspace fills the image

    @property
    def pusher_contact(self) -> float:
        """Distance from a box centre to the pusher's centre when they touch face on."""
        return self.box_half_extent + self.pusher_radius

    @property
    def object_radius(self) -> float:
        """Distance from a box centre to its corner: keeps boxes apart when placing them."""
        return self.box_half_extent * 2**0.5
