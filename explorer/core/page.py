"""The start every model page shares: its settings' defaults, the title and one sentence of why, then the sidebar's
model, checked against the page (the model's capabilities list the pages that apply to it)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import streamlit as st

from explorer.core import bundles, links, torch_worker
from explorer.logic.links import Field
from training.bundle import Bundle
from training.errors import LatentExplorerError
from training.models import registry

# A wait for the torch worker this long is still mentioned where the picture appears once it has arrived.
QUEUE_NOTE_AFTER = 2.0
# What a page needs, for the sentence that says why it does not apply: (what the model lacks, so ... and; what to
# pick). The --model that trains one is the first family whose registry record lists the page.
NEEDS = {
    "vae_map": ("has no encoder, so there is no map of encoded images and", "a VAE"),
    "conditions": ("takes no conditions, so there are no attributes to ask for and", "a conditional GAN"),
    "codes": ("has no InfoGAN codes, so there are no codes to turn and", "an InfoGAN"),
    "directions": ("takes a condition or extra codes beside z, so its attributes are set on the other attribute "
                   "pages and", "a VAE or an unconditional GAN"),
}


def queue_text(state: torch_worker.QueueState) -> str:
    """What a session waiting for the server reads: its place in the queue and the expected wait."""
    if state.ahead == 0:
        return f"⏳ Computing your pictures (about {max(1, round(state.expected_s))} s)."
    requests = "request" if state.ahead == 1 else "requests"
    return (f"⏳ The server is busy with the class: {state.ahead} {requests} ahead of yours, about "
            f"{max(1, round(state.expected_s))} s to wait.")


def say_when_queued() -> None:
    """For this script run: while its torch work waits behind other sessions' requests, say where it stands, at
    the place on the page where the waiting pictures will appear (instead of a silent spinner); a long wait behind
    other requests is still mentioned there afterwards."""
    placeholder, longest = None, 0.0

    def listener(state: torch_worker.QueueState | None) -> None:
        nonlocal placeholder, longest
        if _inside_cached_function():  # Streamlit would replay the message with every later cache hit
            return
        if state is None:
            if placeholder is not None and longest >= QUEUE_NOTE_AFTER:
                placeholder.caption(f"⏳ These pictures waited {longest:.1f} s for the server: many sessions are "
                                    "asking it for pictures at once.")
            elif placeholder is not None:
                placeholder.empty()
            placeholder, longest = None, 0.0
            return
        if state.ahead > 0:  # waiting behind other requests, not for its own computation
            longest = max(longest, state.waited_s)
        if placeholder is None:
            placeholder = st.empty()
        placeholder.info(queue_text(state))

    torch_worker.set_wait_listener(listener)


def rerun_alone() -> bool:
    """Whether this script run reruns st.fragment bodies alone (a control inside one moved): the entry point and
    the page's preamble did not run."""
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx
    except ImportError:  # moved in another Streamlit version: a full run is the safe answer
        return False
    context = get_script_run_ctx()
    return bool(context is not None and context.fragment_ids_this_run)


def page_fragment(body: Callable[..., None]) -> Callable[..., None]:
    """st.fragment for the part of a page that its controls change: moving one reruns `body` alone, not the title,
    the sidebar's model listing and the rest. On such a rerun it does what the entry point does around a full run:
    say where its requests wait in the queue, and put the settings in the URL."""

    @st.fragment
    @functools.wraps(body)
    def run(*args, **kwargs) -> None:
        alone = rerun_alone()
        if alone:
            say_when_queued()
        try:
            body(*args, **kwargs)
        finally:
            # On full runs too: a fragment may redraw the sidebar's link box on its reruns only if it drew it in
            # the last full run.
            links.publish(from_fragment=True)

    return run


def _inside_cached_function() -> bool:
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import in_cached_function
    except ImportError:  # moved in another Streamlit version: say nothing rather than risk a replayed message
        return True
    return bool(in_cached_function.get())


def latent_caption(bundle: Bundle) -> str:
    return f"Latent dimension {bundle.latent_dim}; trained on codes from {bundle.prior.label}."


def page_problem(bundle: Bundle, page: str) -> str | None:
    """Why the page does not apply to this bundle (said on the page), or None when it does."""
    capabilities = bundle.capabilities
    if page in registry.Z_ONLY_PAGES and page not in NEEDS:
        if not capabilities.generates:
            return (f"**{bundle.name}** is a {bundle.family} bundle, not a generator, so this page does not apply to "
                    "it. Pick a DCGAN or a VAE in the sidebar.")
        # A config may describe extra generator inputs that the family itself does not take.
        if page not in capabilities.pages or int(bundle.config["model"].get("condition_dim", 0) or 0) > 0:
            return (f"**{bundle.name}** is a {bundle.family} model: its generator also takes a condition or extra "
                    "codes, and this page varies z alone, so it does not apply here. Pick an unconditional model (a "
                    "DCGAN or a VAE) in the sidebar.")
        return None
    if page in capabilities.pages:
        return None
    lacks, kind = NEEDS.get(page, ("has no generator for it, so", "a generator"))
    model = registry.first_family_for(page)
    names = list(bundles.applicable(page))
    return (f"**{bundle.name}** ({bundle.family}) {lacks} this page does not apply to it. "
            + (f"Pick {kind} in the sidebar: {', '.join(names)}." if names else
               f"Train one with `python -m training train --model {model} --out checkpoints/<dataset>/{model}`."))


def preamble(title: str, intro: str, page: str, defaults: Mapping[str, object] | None = None,
             caption: Callable[[Bundle], str] | None = latent_caption, linked: Sequence[Field] = ()) -> Bundle:
    """Set the page's defaults, draw its title and intro, and return the sidebar's model; the run stops with a
    message when there is no model or the page does not apply to it. `caption` (None: none) goes under the
    sidebar's picker. The model and the `linked` settings travel in the URL (explorer/core/links.py)."""
    for key, value in (defaults or {}).items():
        st.session_state.setdefault(key, value)
    st.title(title)
    st.write(intro)
    links.take_model()
    bundle = bundles.sidebar_picker()
    if bundle is None:
        st.stop()
    problem = page_problem(bundle, page)
    if caption is not None and not problem:
        st.sidebar.caption(caption(bundle))
    # Before the page's controls, and before a stop: the link keeps the model even where the page does not apply.
    links.adopt(linked, defaults)
    if problem:
        st.info(problem)
        st.stop()
    return bundle


def said_on_error(body: Callable[..., None], *args) -> None:
    """Run a page's body; a problem the user can fix (LatentExplorerError) is said on the page, not raised."""
    try:
        body(*args)
    except LatentExplorerError as exc:
        st.error(f"{exc}")
