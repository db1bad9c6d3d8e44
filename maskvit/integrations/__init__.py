"""Adapters that let other projects' benchmarks and planners use a MaskViT model.

`maskvit.integrations.vp2.MaskViTVP2Model`: the video-model interface of VP2 (Tian et
al., "A Control-Centric Benchmark for Video Prediction", ICLR 2023).
"""
