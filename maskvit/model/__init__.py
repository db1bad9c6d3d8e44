"""The MaskViT transformer, masking for training, mask schedules and decoding."""

from maskvit.model.decoding import SCHEDULES, DecodingResult, generate, get_schedule
from maskvit.model.masking import mask_for_training, masked_cross_entropy
from maskvit.model.transformer import MaskViT

__all__ = [
    "SCHEDULES", "DecodingResult", "MaskViT", "generate", "get_schedule",
    "mask_for_training", "masked_cross_entropy",
]
