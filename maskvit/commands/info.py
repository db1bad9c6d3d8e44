"""`maskvit info`: a preset's configuration, token layout and parameter counts."""

from __future__ import annotations

import argparse

import torch
import yaml

from maskvit.config import config_to_dict, load_preset, preset_names
from maskvit.model.attention import resolve_window


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info", help="show a preset's configuration, token layout and parameter counts",
        description="Print the resolved configuration of a preset, the token layout of a "
                    "clip and the transformer's parameter count per component.",
    )
    parser.add_argument("--preset", default="push64",
                        help=f"preset name or YAML path (default push64; shipped: "
                             f"{', '.join(preset_names())})")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config field, e.g. transformer.depth=4")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from maskvit.model.transformer import MaskViT

    config = load_preset(args.preset, args.overrides)
    t = config.transformer
    grid = (t.num_frames, t.tokens_h, t.tokens_w)
    spatial = resolve_window(t.spatial_window, grid)
    spatiotemporal = resolve_window(t.spatiotemporal_window, grid)
    print(f"# preset: {config.name}")
    print(yaml.safe_dump(config_to_dict(config), sort_keys=False).rstrip())
    print("\n# token layout")
    print(f"frames {config.tokenizer.resolution}x{config.tokenizer.resolution}x3 -> "
          f"{config.tokenizer.token_grid}x{config.tokenizer.token_grid} codes "
          f"(downsample {config.tokenizer.downsample}, K={config.tokenizer.codebook_size})")
    print(f"clip: {t.num_frames} frames = {t.context_frames} context + {t.predicted_frames} "
          f"predicted; {t.num_frames * t.tokens_per_frame} tokens, "
          f"{t.predicted_frames * t.tokens_per_frame} to predict")
    print(f"spatial window {'x'.join(map(str, spatial))}: "
          f"{t.num_frames * t.tokens_per_frame // (spatial[0] * spatial[1] * spatial[2])} windows "
          f"of {spatial[0] * spatial[1] * spatial[2]} tokens")
    print(f"spatiotemporal window {'x'.join(map(str, spatiotemporal))}: "
          f"{t.num_frames * t.tokens_per_frame // (spatiotemporal[0] * spatiotemporal[1] * spatiotemporal[2])} "
          f"windows of {spatiotemporal[0] * spatiotemporal[1] * spatiotemporal[2]} tokens")
    with torch.device("meta"):
        model = MaskViT(t)
    print("\n# transformer parameters")
    for name, count in model.num_parameters().items():
        print(f"{name:24s} {count:>14,d}")
    return 0
