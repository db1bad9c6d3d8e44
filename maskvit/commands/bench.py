"""`maskvit bench decode`: MaskViT's iterative decoding against real autoregressive peers.

Wall clock against a KV-cached causal decoder and a factorised (GENIE-style) transformer,
and the paper's Table 3 pass counts beside it (`maskvit.bench.decode`).
"""

from __future__ import annotations

import argparse

from maskvit.config import preset_names

PRECISIONS = ("fp32", "bf16")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="speed benchmarks (decode)")
    kinds = parser.add_subparsers(dest="bench", metavar="KIND", required=True)
    decode = kinds.add_parser(
        "decode", help="iterative decoding vs KV-cached and factorised autoregressive decoders",
        description="For each preset's geometry (random weights), time MaskViT's iterative "
                    "decoding, a KV-cached causal decoder of the same width, layers and size, "
                    "and a factorised spatial/temporal transformer decoding frame by frame "
                    "with per-frame MaskGIT steps; every batch and precision, rounds "
                    "interleaved. Also prints the paper's Table 3 pass counts (the "
                    "bidirectional model, one token per pass, no cache: timed over "
                    "--ar-passes passes and extrapolated to all N). The full idle-machine "
                    "run is `python benchmarks/bench_decode.py`.",
    )
    decode.add_argument("--presets", default="bair64,kitti64,robonet64",
                        help=f"comma-separated presets (shipped: {', '.join(preset_names())})")
    decode.add_argument("--device", default="cpu")
    decode.add_argument("--precision", default="fp32,bf16",
                        help="comma-separated precisions, of fp32 and bf16 (default: both)")
    decode.add_argument("--batches", default="1",
                        help="comma-separated batch sizes, e.g. 1,64 (64: a planning batch)")
    decode.add_argument("--steps", type=int, default=None,
                        help="decoding iterations (default: each preset's eval.decoding.steps)")
    decode.add_argument("--factorised-steps", type=int, default=2,
                        help="MaskGIT steps per frame of the factorised baseline (default 2)")
    decode.add_argument("--ar-passes", type=int, default=2,
                        help="no-cache autoregressive passes to time for the pass-count "
                             "comparison (default 2)")
    decode.add_argument("--rounds", type=int, default=2,
                        help="interleaved rounds; the median counts (default 2)")
    decode.set_defaults(func=run_decode)


def _int_list(text: str, flag: str) -> list[int]:
    from maskvit.errors import UserError

    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{flag} takes comma-separated whole numbers; got {text!r}") from None
    if not values or min(values) < 1:
        raise UserError(f"{flag} needs numbers of at least 1; got {text!r}")
    return values


def check_decode_arguments(args: argparse.Namespace) -> tuple[list[str], str]:
    """The preset names and the resolved device, or a one-line error before any timing."""
    from maskvit.config import load_preset
    from maskvit.devices import resolve_device
    from maskvit.errors import UserError

    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    if not presets:
        raise UserError(f"--presets names no preset; give some of: {', '.join(preset_names())}")
    for preset in presets:
        load_preset(preset)  # one-line error for an unknown name before any work
    for flag, value in (("--ar-passes", args.ar_passes), ("--rounds", args.rounds),
                        ("--factorised-steps", args.factorised_steps)):
        if value < 1:
            raise UserError(f"{flag} must be at least 1, got {value}")
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps must be at least 1, got {args.steps}")
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    if not precisions or any(p not in PRECISIONS for p in precisions):
        raise UserError(f"--precision takes {' and/or '.join(PRECISIONS)}; got {args.precision!r}")
    _int_list(args.batches, "--batches")
    return presets, str(resolve_device(args.device))


def run_decode(args: argparse.Namespace) -> int:
    from maskvit.bench.decode import format_report, time_decoders

    presets, device = check_decode_arguments(args)
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    rows = time_decoders(presets, _int_list(args.batches, "--batches"), precisions, device,
                         args.steps, args.factorised_steps, args.ar_passes, args.rounds,
                         progress=lambda line: print(line, flush=True))
    print()
    print(format_report(rows, device, args.rounds))
    return 0
