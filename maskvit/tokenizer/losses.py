"""VQ-GAN losses as pure functions: reconstruction, hinge GAN, adaptive GAN weight.

Kept free of state so the training task composes them and tests check each on its own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_loss(
    x: torch.Tensor, x_hat: torch.Tensor, l1_weight: float, l2_weight: float
) -> torch.Tensor:
    """Weighted L1 + L2 pixel loss between frames in [-1, 1] (B, 3, H, W)."""
    loss = x.new_zeros(())
    if l1_weight:
        loss = loss + l1_weight * F.l1_loss(x_hat, x)
    if l2_weight:
        loss = loss + l2_weight * F.mse_loss(x_hat, x)
    return loss


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: push real logits above +1 and fake ones below -1."""
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def hinge_g_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Generator side of the hinge GAN: raise the discriminator's score of fakes."""
    return -logits_fake.mean()


def adaptive_gan_weight(
    nll_loss: torch.Tensor,
    g_loss: torch.Tensor,
    last_layer: torch.Tensor,
    max_weight: float = 1e4,
) -> torch.Tensor:
    """Balance GAN and reconstruction gradients at the decoder's last layer (VQ-GAN eq. 7).

    λ = ||∇_L nll|| / (||∇_L g|| + 1e-4), so the adversarial term can never swamp the
    reconstruction term, whatever the scale of the discriminator's logits. Detached: λ
    is a weight, not something to optimise.
    """
    nll_grad = torch.autograd.grad(nll_loss, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    weight = nll_grad.float().norm() / (g_grad.float().norm() + 1e-4)
    return weight.clamp(0.0, max_weight).detach()
