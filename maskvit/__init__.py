"""MaskViT: masked visual pre-training for video prediction (Gupta et al., CoRL 2022).

The public API; heavier parts are imported on first use.
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
    "Predictor": "maskvit.predictor",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'maskvit' has no attribute {name!r}")


__all__ = ["Config", "MaskViT", "MaskViTConfig", "Predictor", "VQGAN", "VQGANConfig",
           "load_preset", "__version__"]
