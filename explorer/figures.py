"""Pictures for the pages: image grids and plotly figures, built by pure functions (no Streamlit)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
import torchvision.utils as vutils

from explorer.diagnostics import NormReference

# Blow 64x64 samples up so the back of the classroom sees them; nearest keeps pixels honest.
DISPLAY_SCALE = 3


def image_grid(images: torch.Tensor, nrow: int = 8, scale: int = DISPLAY_SCALE, padding: int = 2) -> np.ndarray:
    """(B, C, H, W) in [-1, 1] -> one uint8 RGB grid (H', W', 3), upscaled with nearest neighbour."""
    grid = vutils.make_grid(images.detach().float().cpu().clamp(-1, 1), nrow=min(nrow, images.shape[0]),
                            padding=padding, normalize=True, value_range=(-1, 1), pad_value=1.0)
    if scale > 1:
        grid = grid.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    array = grid.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return array


def norm_histogram(norms: np.ndarray, prior_norms: np.ndarray, reference: NormReference, label: str,
                   prior_label: str) -> go.Figure:
    """Code norms of the batch against the training prior's norms (the prior's typical set)."""
    fig = go.Figure()
    fig.add_histogram(x=prior_norms, name=f"training prior {prior_label}", opacity=0.6, histnorm="probability density",
                      marker_color="#8f8f8f", nbinsx=40)
    fig.add_histogram(x=norms, name=f"this batch {label}", opacity=0.75, histnorm="probability density",
                      marker_color="#e4572e", nbinsx=30)
    fig.add_vline(x=reference.mean, line_dash="dash", line_color="#444",
                  annotation_text=f"prior mean {reference.mean:.1f}", annotation_position="top left")
    fig.update_layout(barmode="overlay", xaxis_title="code norm ||z||", yaxis_title="density", height=320,
                      margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.15))
    return fig
