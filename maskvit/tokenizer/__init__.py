"""Per-frame VQ-GAN tokenizer (paper §3.1): frames <-> h×w grids of discrete codes."""

from maskvit.config import TokenizerConfig as VQGANConfig
from maskvit.tokenizer.vqgan import VQGAN

__all__ = ["VQGAN", "VQGANConfig"]
