"""A link to any view: each page's settings live in the URL's query parameters, updated as the controls move, and a
visitor who opens that URL sees the same view.

The entry point calls `begin()` before the page and `publish()` after it (also when the page stops early). A page
declares its linkable settings with `adopt(fields)` before drawing their controls: on the first run of a URL the
link's values go into the controls' session-state keys (a value the control does not offer is refused, and the page
says so in one sentence); on every run the current values are written back to the URL and shown under "Link to this
view" in the sidebar. The model travels by its folder under checkpoints/ (`?model=celeba/dcgan`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import streamlit as st

from explorer.core import bundles
from explorer.logic.links import MODEL_PARAM, Field, query_string, read, refused_sentence, written

RUN_KEY = "_links_run"  # this run's fields, what the link asked and where the sentence and the box go
SEEN_KEY = "_links_seen"  # the last query strings this session wrote: a URL among them is not a new link
PICKER_KEY = "bundle_select"  # the sidebar's model box (explorer/core/bundles.py)
REMEMBERED = 4


def model_token(path: str | Path | None) -> str | None:
    """How a link names the model in this folder: its folder under checkpoints/ (or under the repository, for a
    saved live run); None for a folder a link cannot reach (a model uploaded in one browser tab)."""
    if not path:
        return None
    path = Path(path).resolve()
    for root in (bundles.CHECKPOINTS, bundles.REPO_ROOT):
        try:
            return path.relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            continue
    return None


def _linkable_models() -> dict[str, str]:
    """Link name -> folder of every generator the sidebar offers to any visitor (a session's uploads are not)."""
    session = set(bundles.session_bundles().values())
    found = {}
    for path in bundles.available().values():
        token = model_token(path)
        if token and path not in session:
            found.setdefault(token, path)
    return found


def _incoming() -> dict[str, str]:
    try:
        return dict(st.query_params.to_dict())
    except Exception:  # a query string Streamlit itself could not read: no link
        return {}


def begin() -> None:
    """Start a run: read the URL once, and decide whether it is a new link (one this session did not write)."""
    incoming = _incoming()
    st.session_state[RUN_KEY] = {
        "incoming": incoming,
        "applying": incoming not in st.session_state.get(SEEN_KEY, []),
        "fields": [], "applied": {}, "refused": [], "model": False, "notice": None, "box": None,
    }


def _run() -> dict | None:
    return st.session_state.get(RUN_KEY)


def take_model() -> None:
    """Before the sidebar's model box: a new link's model (by folder) becomes the selected one; the page's link
    names the model from now on."""
    run = _run()
    if run is None:
        return
    run["model"] = True
    token = run["incoming"].get(MODEL_PARAM)
    if not run["applying"] or token is None:
        return
    path = _linkable_models().get(token)
    if path is None:
        run["refused"].append(MODEL_PARAM)
        return
    st.session_state[bundles.SELECTED_KEY] = path
    st.session_state.pop(PICKER_KEY, None)  # the box opens on the selected folder (its index), not its old name


def adopt(fields: Sequence[Field], defaults: Mapping[str, object] | None = None) -> None:
    """Declare linkable settings before their controls are drawn: a new link's values are set now, and the current
    values go into the URL (those equal to `defaults` are left out), now and again at the end of the run."""
    run = _run()
    if run is None:
        return
    if run["notice"] is None:
        run["notice"], run["box"] = st.empty(), st.sidebar.empty()
    run["fields"].extend((field, dict(defaults or {})) for field in fields)
    if run["applying"]:
        reading = read(fields, run["incoming"])
        for key, value in reading.values.items():
            st.session_state[key] = value
        run["applied"].update(reading.values)
        run["refused"].extend(reading.refused)
    # Written now as well as at the end: a page that stops early (st.stop) never reaches the end.
    _sync(run)


def publish(from_fragment: bool = False) -> None:
    """End a run: the settings as the page left them (it may have changed some while drawing) into the URL.

    A page whose controls live in an st.fragment calls this at the end of the fragment on every run of it,
    `from_fragment=True`: a fragment's rerun skips the entry point, and Streamlit lets a fragment's rerun redraw the
    sidebar's box only if the fragment drew it during the last full run. The entry point's call then writes the URL
    alone."""
    run = _run()
    if run is None or (not run["fields"] and not run["model"]):
        return
    if from_fragment:
        run["fragment"] = True
    elif run.get("fragment"):
        _sync(run, draw=False)
        run["settled"] = True
        return
    _sync(run, from_fragment=from_fragment)
    if not from_fragment:
        run["settled"] = True  # the full run is over: later fragment reruns are the visitor's own moves


def _sync(run: dict, draw: bool = True, from_fragment: bool = False) -> None:
    """Write the page's settings into the URL, remember that URL as this session's own, say which of a new link's
    values could not be used, and draw the link."""
    state = st.session_state
    params: dict[str, str] = {}
    token = model_token(state.get(bundles.SELECTED_KEY)) if run["model"] else None
    if token:
        params[MODEL_PARAM] = token
    owned = {MODEL_PARAM} if run["model"] else set()
    refused = list(run["refused"])
    settled = run.get("settled", False)
    for field, defaults in run["fields"]:
        owned.add(field.param)
        params.update(written([field], state, defaults))
        # The page checked the link's value against what it offers (an attribute this model lacks) and replaced it.
        if not settled and field.key in run["applied"] and field.key in state \
                and state[field.key] != run["applied"][field.key]:
            refused.append(field.param)
    _write(params, owned)
    now = _incoming()
    state[SEEN_KEY] = ([q for q in state.get(SEEN_KEY, []) if q != now] + [now])[-REMEMBERED:]
    if not draw:
        return
    if run["applying"] and not settled and refused and run["notice"] is not None:
        run["notice"].warning(refused_sentence(refused), icon=":material/link_off:")
    if run["box"] is not None:
        # A fragment's drawing outside itself goes into a wrapper Streamlit adds: one more container here keeps
        # every element at the same place either way, so a redraw replaces all of the earlier one.
        with run["box"].container():
            if from_fragment:
                link_box(params, uploaded=run["model"] and token is None)
            else:
                with st.container():
                    link_box(params, uploaded=run["model"] and token is None)


def _write(params: Mapping[str, str], owned: set[str]) -> None:
    current = _incoming()
    for name in owned:
        if name in params and current.get(name) != params[name]:
            st.query_params[name] = params[name]
        elif name not in params and name in current:
            del st.query_params[name]


def link_box(params: Mapping[str, str], uploaded: bool = False) -> None:
    """'Link to this view': the settings as a query string to copy and as a link to open or copy."""
    query = query_string(params)
    with st.expander("Link to this view", icon=":material/link:"):
        if query:
            st.markdown(f"[Open this view in a new tab]({query})")
            st.code(query, language=None, wrap_lines=True)
        else:
            st.caption("This page shows its defaults: its address alone opens this view.")
        st.caption("The address bar keeps these settings as the controls move: copy it (or right-click the link and "
                   "copy its address) for the slides or the class. Whoever opens it sees this view, with the same "
                   "pictures for the same seed.")
        if uploaded:
            st.caption("The model on this page lives in this browser tab only (an upload, or a live run kept for the "
                       "tab): the link opens the app's default model instead.")
