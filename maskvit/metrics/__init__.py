"""Video-prediction metrics (paper §4.1): PSNR, SSIM, LPIPS, FVD and the best-of-N protocol.

Pretrained weights (LPIPS, I3D) are never downloaded; see `maskvit.metrics.weights`.
"""

from maskvit.metrics.fvd import frechet_distance, fvd, fvd_from_features, i3d_features
from maskvit.metrics.i3d import I3D, load_i3d
from maskvit.metrics.lpips import LPIPS, load_lpips, lpips
from maskvit.metrics.pixel import psnr, ssim
from maskvit.metrics.protocol import (
    MetricNetworks,
    Protocol,
    VideoPredictionEvaluator,
    best_of_n,
    copy_last_frame,
    evaluate_batches,
    evaluate_copy_last_baseline,
    evaluate_predictions,
    protocol_for_preset,
)
from maskvit.metrics.weights import WEIGHTS_ENV, MissingWeightsError

__all__ = [
    "I3D",
    "LPIPS",
    "WEIGHTS_ENV",
    "MetricNetworks",
    "MissingWeightsError",
    "Protocol",
    "VideoPredictionEvaluator",
    "best_of_n",
    "copy_last_frame",
    "evaluate_batches",
    "evaluate_copy_last_baseline",
    "evaluate_predictions",
    "frechet_distance",
    "fvd",
    "fvd_from_features",
    "i3d_features",
    "load_i3d",
    "load_lpips",
    "lpips",
    "protocol_for_preset",
    "psnr",
    "ssim",
]
