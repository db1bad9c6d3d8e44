"""MaskViT: masked visual pre-training for video prediction (Gupta et al., CoRL 2022).

The public API; heavier parts are imported on first use.

Where things are (each layer imports only the ones below it):

    commands/, cli.py    the `maskvit` command line: parse, call the library, print
    serve/               `maskvit serve`: HTTP transports, dynamic batcher, playground
    integrations/        other projects' contracts (VP2's video model)
    demo_*.py            the stages of `maskvit demo`
    plan/                CEM / MPPI visual MPC, the World and Policy contracts, baselines
    prediction_eval.py   `maskvit evaluate`: a Predictor scored on held-out clips
    inference/           the Predictor and load_predictor, the model's spec, and
                         requests.py: the rules of a valid request, written once
                         (server requests and CLI --set flags alike)
    model/, tokenizer/   the MaskViT transformer and decoding; the VQ-GAN
    train/               one training engine for both stages
    metrics/, report/    PSNR, SSIM, LPIPS, FVD, object fidelity; HTML reports
    data/, sim/          episode stores, token caches, converters; the simulated worlds
    config.py            one dataclass per component, presets, ranges (config.Range)
    run_dir.py, atomic.py, locking.py, errors.py   files, writes, locks, one-line errors
"""

from importlib import import_module
from typing import Any

from maskvit.config import (
    Config,
    load_preset,
)
from maskvit.config import TokenizerConfig as VQGANConfig
from maskvit.config import TransformerConfig as MaskViTConfig

__version__ = "0.1.0"

_LAZY = {
    "MaskViT": "maskvit.model.transformer",
    "VQGAN": "maskvit.tokenizer",
    "Predictor": "maskvit.inference.predictor",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'maskvit' has no attribute {name!r}")


__all__ = ["Config", "MaskViT", "MaskViTConfig", "Predictor", "VQGAN", "VQGANConfig",
           "load_preset", "__version__"]
