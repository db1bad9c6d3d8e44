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


def run_decode(args: argparse.Namespace) -> int:
    from maskvit.bench_decode import format_table, time_decoding
    from maskvit.config import load_preset

    rows = []
    for preset in [p.strip() for p in args.presets.split(",") if p.strip()]:
        load_preset(preset)  # one-line error for an unknown name before any work
        rows.append(time_decoding(preset, args.device, args.precision, args.steps, args.ar_passes))
        print(format_table(rows, args.device, args.precision).splitlines()[-1], flush=True)
    print(format_table(rows, args.device, args.precision))
    return 0
