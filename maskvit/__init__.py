"""MaskViT: masked visual pre-training for video prediction."""
