"""Your photo's code on the other pages: small, self-contained pieces the sampling, interpolation and attribute
pages call with one line each. Each draws nothing unless a photo was placed in this model on the "Your photo in
the latent space" page (see explorer.logic.your_photo for where the codes are kept)."""

from __future__ import annotations

import streamlit as st
import torch

from explorer.core import torch_worker
from explorer.logic.directions import walk
from explorer.logic.figures import labelled_rows
from explorer.logic.your_photo import codes_for
from training.latent.priors import STANDARD_NORMAL, sample_latents
from training.latent.sampling import decode

PHOTO_PREFIX = "your photo: "


def photo_codes(bundle) -> dict[str, torch.Tensor]:
    return codes_for(st.session_state, str(bundle.path), bundle.latent_dim)


def endpoint(bundle, code: torch.Tensor, label: str, *, key: str, prompt: str, where=st) -> tuple[torch.Tensor, str]:
    """(code, label) for one end of a path: the seed's code, or a photo's when the user picks one."""
    codes = photo_codes(bundle)
    if not codes:
        return code, label
    options = [label] + [PHOTO_PREFIX + name for name in codes]
    if st.session_state.get(key) not in options:
        st.session_state[key] = options[0]
    chosen = where.selectbox(prompt, options, key=key)
    if chosen == label:
        return code, label
    return codes[chosen[len(PHOTO_PREFIX):]].to(code.dtype), chosen


def walk_photos(bundle, direction, positions: list[float], name: str) -> None:
    """One row per photo: its code walked to each position along the attribute direction."""
    codes = photo_codes(bundle)
    if not codes:
        return
    rows = [torch_worker.run(decode, bundle, torch.stack([walk(code[None], direction, t)[0] for t in positions]))
            for code in codes.values()]
    st.image(labelled_rows([PHOTO_PREFIX + n for n in codes], rows), width="stretch",
             caption=f"your photo's code walked along the direction of {name}, at t = "
             + ", ".join(f"{t:+g}" for t in positions))


def near_photo(bundle) -> None:
    """Codes around a photo's: the photo's code plus noise of a chosen size, to see how far its face reaches."""
    codes = photo_codes(bundle)
    if not codes:
        return
    with st.expander("Samples around your photo's code"):
        left, right = st.columns(2)
        name = left.selectbox("photo", list(codes), key="sample_photo")
        spread = right.slider("noise added (standard deviation)", 0.0, 1.5, value=0.5, step=0.1,
                              key="sample_photo_spread")
        code = codes[name]
        noise = sample_latents(STANDARD_NORMAL, 7, code.numel(), seed=0) * spread
        images = torch_worker.run(decode, bundle, torch.cat([code[None], code[None] + noise]))
        st.image(labelled_rows(["photo's code, then + noise"], [images]), width="stretch",
                 caption=f"the first image is the code of {name}; the others add N(0, {spread:g}²) noise to it")
