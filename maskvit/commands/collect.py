"""`maskvit collect`: episodes from a simulated world into an episode store.

`--env push` (the PyBullet push world): random pushes. `--env robodesk` (RoboDesk, as VP2
renders it): noisy scripted policies for each task of `--tasks`, and random exploration.

Example: ``maskvit collect --env push --episodes 2000 --out data/push``;
``maskvit collect --env robodesk --episodes 500 --workers 2 --out data/robodesk``. Rerunning an
interrupted command with the same arguments resumes it; the store is complete (has its
manifest.json) only when every episode is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import os

import yaml

from maskvit.commands import command_parser
from maskvit.config import number_from_text
from maskvit.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = command_parser(subparsers, "collect", "collect episodes in a simulated world (push, robodesk)", __doc__)
    p.add_argument("--env", default="push", choices=["push", "robodesk"], help="simulated world (default push)")
    p.add_argument("--tasks", default=None, metavar="T1,T2",
                   help="robodesk: the tasks whose scripted policies make the data (default: all seven)")
    p.add_argument("--noise", default=None, metavar="STD[,STD...]",
                   help="robodesk: std of the Gaussian noise on the scripted policies' actions "
                        "(default 0.4, VP2's); several levels: each scripted episode draws one")
    p.add_argument("--play", type=float, default=0.0, metavar="SHARE",
                   help="robodesk: share of the scripted episodes made play at the task's handle "
                        "(the controller for a while, then the push the other way or a random "
                        "walk), so the data shows the slide and drawer shut too (default 0, VP2's mix)")
    p.add_argument("--panel-slide", type=float, default=0.0, metavar="SHARE",
                   help="robodesk: share of the scripted open_slide episodes that push the slide's "
                        "panel fast (often open in 6-10 steps) instead of its bar (18-28 steps) (default 0)")
    p.add_argument("--drawer-pullback", type=float, default=0.0, metavar="SHARE",
                   help="robodesk: share of the scripted open_drawer episodes that take the hand near "
                        "the drawer's inside and pull it back towards the arm at random, touching the "
                        "drawer or not (what a planner tries) (default 0)")
    p.add_argument("--episodes", type=int, required=True, help="number of episodes")
    p.add_argument("--out", required=True, help="episode store directory (resumed if it exists)")
    p.add_argument("--steps", type=int, default=30, help="frames per episode (default 30)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="parallel worker processes (default: min(2, CPUs))")
    p.add_argument("--seed", type=int, default=0, help="run seed; episode i is a function of (seed, i)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="push: override a push-world setting, e.g. --set num_boxes=3 --set image_size=128")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def push_config_from_overrides(overrides: list[str]):
    """A `PushConfig` with `key=value` overrides (values parsed as YAML)."""
    from maskvit.sim.push_config import PushConfig

    fields = {f.name: f for f in dataclasses.fields(PushConfig)}
    changes = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or key not in fields:
            raise UserError(f"bad --set {item!r}: use KEY=VALUE with KEY one of {', '.join(fields)}")
        value = yaml.safe_load(text)
        default = getattr(PushConfig, key)
        if isinstance(default, tuple):
            if not isinstance(value, list) or len(value) != len(default):
                raise UserError(f"--set {key} needs a list of {len(default)} numbers, like [{', '.join(map(str, default))}]")
            value = tuple(float(v) for v in value)
        elif isinstance(default, float) and isinstance(number := number_from_text(value), int | float):
            value = float(number)
        elif type(value) is not type(default):
            raise UserError(f"--set {key} needs a {type(default).__name__}, got {text!r}")
        changes[key] = value
    return PushConfig(**changes)


def noisy_mix_from_text(text: str | None, play: float = 0.0, panel_slide: float = 0.0,
                        drawer_pullback: float = 0.0):
    """The RoboDesk data mix for `--noise` ("0.4" or "0.1,0.2,0.4"), `--play`,
    `--panel-slide` and `--drawer-pullback`; one line if they are not numbers or shares."""
    from maskvit.sim.desk_policies import NoisyMix

    for flag, share in (("--play", play), ("--panel-slide", panel_slide), ("--drawer-pullback", drawer_pullback)):
        if not 0.0 <= share <= 1.0:  # also NaN
            raise UserError(f"{flag} needs a share of the scripted episodes in [0, 1], like 0.6; got {share!r}")
    shares = {"play_fraction": play, "panel_slide_fraction": panel_slide,
              "drawer_pullback_fraction": drawer_pullback}
    if text is None:
        return NoisyMix(**shares)
    try:
        levels = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise UserError(f"--noise needs one or more numbers separated by commas, like 0.1,0.2,0.4; got {text!r}") from None
    return NoisyMix(noise_std=levels[0] if len(levels) == 1 else levels, **shares)


def run(args: argparse.Namespace) -> int:
    from maskvit.locking import output_lock

    if args.env == "robodesk":
        if args.set:
            raise UserError("--set changes push-world settings; the robodesk world follows VP2's and has none")
        from maskvit.sim.desk_collect import collect_desk_dataset
        from maskvit.sim.desk_world import TASKS

        tasks = tuple(t.strip() for t in args.tasks.split(",")) if args.tasks else TASKS
        mix = noisy_mix_from_text(args.noise, args.play, args.panel_slide, args.drawer_pullback)
        with output_lock(args.out, "episode store"):
            store = collect_desk_dataset(args.out, args.episodes, tasks=tasks, steps=args.steps,
                                         workers=args.workers, seed=args.seed, mix=mix,
                                         progress=not args.no_progress)
    else:
        if args.noise is not None or args.play or args.panel_slide or args.drawer_pullback:
            raise UserError("--noise, --play, --panel-slide and --drawer-pullback are for --env robodesk's "
                            "scripted policies; the push world's pushes are random")
        if args.tasks:
            raise UserError("--tasks is for --env robodesk; the push world has one kind of task")
        from maskvit.sim.collection import collect_push_dataset

        config = push_config_from_overrides(args.set)
        with output_lock(args.out, "episode store"):  # a second collect into --out stops at once
            store = collect_push_dataset(args.out, args.episodes, steps=args.steps, workers=args.workers,
                                         seed=args.seed, config=config, progress=not args.no_progress)
    splits = ", ".join(f"{n} {s}" for s, n in store.manifest["splits"].items())
    print(f"wrote {len(store)} episodes ({store.manifest['num_frames']} frames; {splits}) to {args.out}")
    return 0
