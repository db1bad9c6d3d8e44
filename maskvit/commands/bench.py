"""`maskvit bench decode`: the paper's Table 3 (iterative vs autoregressive decoding)."""

from __future__ import annotations

import argparse

from maskvit.config import preset_names


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="speed benchmarks (decode)")
    kinds = parser.add_subparsers(dest="bench", metavar="KIND", required=True)
    decode = kinds.add_parser(
        "decode", help="iterative vs autoregressive decoding: forward passes and wall-clock",
        description="For each preset's geometry, count forward passes and time iterative "
                    "decoding against one-token-per-pass autoregressive decoding (timed over "
                    "--ar-passes passes and extrapolated to all N).",
    )
    decode.add_argument("--presets", default="bair64,kitti64,robonet64",
                        help=f"comma-separated presets (shipped: {', '.join(preset_names())})")
    decode.add_argument("--device", default="cpu")
    decode.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    decode.add_argument("--steps", type=int, default=None,
                        help="decoding iterations (default: each preset's eval.decoding_steps)")
    decode.add_argument("--ar-passes", type=int, default=8,
                        help="autoregressive passes to time (default 8)")
    decode.set_defaults(func=run_decode)


def check_decode_arguments(args: argparse.Namespace) -> tuple[list[str], str]:
    """The preset names and the resolved device, or a one-line error before any timing."""
    from maskvit.config import load_preset
    from maskvit.errors import UserError
    from maskvit.train.distributed import resolve_device

    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    if not presets:
        raise UserError(f"--presets names no preset; give some of: {', '.join(preset_names())}")
    for preset in presets:
        load_preset(preset)  # one-line error for an unknown name before any work
    if args.ar_passes < 1:
        raise UserError(f"--ar-passes must be at least 1, got {args.ar_passes}")
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps must be at least 1, got {args.steps}")
    return presets, str(resolve_device(args.device))


def run_decode(args: argparse.Namespace) -> int:
    from maskvit.bench_decode import format_table, time_decoding

    presets, device = check_decode_arguments(args)
    rows = []
    for preset in presets:
        rows.append(time_decoding(preset, device, args.precision, args.steps, args.ar_passes))
        print(format_table(rows, device, args.precision).splitlines()[-1], flush=True)
    print(format_table(rows, device, args.precision))
    return 0
