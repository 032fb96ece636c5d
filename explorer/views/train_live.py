"""Page: train a small GAN or VAE live in front of the class: start, pause, one step, change a knob, resume, stop."""

import json
import uuid
from pathlib import Path

import streamlit as st

from explorer.core import bundles, torch_worker
from explorer.core import links as page_links
from explorer.core.widgets import data_root_setting
from explorer.logic import links
from explorer.logic.figures import grid_jpeg
from explorer.logic.train_live import (
    curves_figure,
    describe_change,
    diversity_ratio,
    health,
    knob_label,
    state_line,
    time_left,
    to_tensor,
)
from training.errors import LatentExplorerError
from training.live import protocol
from training.live.manager import NAME_LENGTH, manager, runs_folder
from training.live.settings import ACTIVATIONS, D_RATIOS, LiveSettings, fashion_mnist_missing
from training.models import registry

DATASET_LABELS = {"toyfaces": "toy faces (drawn by the app)", "fashion-mnist": "Fashion-MNIST",
                  "celeba": "CelebA faces (your copy)", "anime": "anime faces (your copy)"}
LEARNING_RATES = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 5e-2]
NOISES = ["N(0,1)", "U(-1,1)", "U(0,1)", "N(0,0.5)", "N(0,2)"]
CLASS_WEIGHTS = [0.0, 0.5, 1.0, 2.0, 5.0, 10.0]
KL_WEIGHTS = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
ACTIVE = ("loading", "running", "paused", "saving")  # states in which the fixed settings cannot change
TICKING = ("loading", "running", "saving")  # states in which the panel refreshes itself
KEEP_TEMPORARY, KEEP_FOLDER = "only in this browser tab, until the server stops", "in the server's runs folder"
DEFAULTS = {"live_dataset": "toyfaces", "live_family": registry.LIVE[0], "live_image_size": 32, "live_latent_dim": 100,
            "live_g_activation": "relu", "live_width": 32, "live_batch_size": 64, "live_num_images": 4096,
            "live_seed": 0, "live_lr_g": 2e-4, "live_lr_d": 2e-4, "live_d_ratio": "1", "live_label_smoothing": 0.0,
            "live_label_flip": 0.0, "live_class_weight": 1.0, "live_noise": "N(0,1)", "live_kl_weight": 1e-4,
            "live_keep": KEEP_TEMPORARY, "live_run_name": ""}
IMAGE_SIZES, LATENT_SIZES, WIDTHS = [32, 64], [8, 16, 32, 64, 100, 128, 200], [8, 16, 32, 64]
BATCH_SIZES, IMAGE_COUNTS = [16, 32, 64, 128], [256, 1024, 4096, 10000, 30000]
SMOOTHING, FLIPPING = (0.0, 0.4, 0.05), (0.0, 0.3, 0.01)
# The settings a link carries (?family=vae&kl_weight=0.01); where a run is kept and its name stay the visitor's.
LINKED = [links.choice("live_dataset", list(DATASET_LABELS), name="dataset"),
          links.choice("live_family", list(registry.LIVE), name="family"),
          links.choice("live_image_size", IMAGE_SIZES, name="image_size"),
          links.choice("live_latent_dim", LATENT_SIZES, name="latent_dim"),
          links.choice("live_g_activation", list(ACTIVATIONS), name="g_activation"),
          links.choice("live_width", WIDTHS, name="width"),
          links.choice("live_batch_size", BATCH_SIZES, name="batch_size"),
          links.choice("live_num_images", IMAGE_COUNTS, name="num_images"), links.seed("live_seed", name="seed"),
          links.choice("live_lr_g", LEARNING_RATES, name="lr_g"),
          links.choice("live_lr_d", LEARNING_RATES, name="lr_d"),
          links.choice("live_d_ratio", list(D_RATIOS), name="d_ratio"),
          links.number("live_label_smoothing", *SMOOTHING, name="label_smoothing"),
          links.number("live_label_flip", *FLIPPING, name="label_flip"),
          links.choice("live_class_weight", CLASS_WEIGHTS, name="class_weight"),
          links.choice("live_noise", NOISES, name="noise"),
          links.choice("live_kl_weight", KL_WEIGHTS, name="kl_weight")]

for key, value in DEFAULTS.items():
    st.session_state.setdefault(key, value)
state = st.session_state
state.setdefault("live_owner", uuid.uuid4().hex)  # one run per browser tab
st.title("Train live")
st.write("Watch a GAN or a VAE learn from scratch: the same fixed codes drawn again every second, the two players' "
         "scores, and a verdict on the run's health. Pause it, change a knob, and see what the change does.")
page_links.adopt(LINKED, DEFAULTS)
try:
    runs = manager()
except LatentExplorerError as exc:  # a bad LATENT_EXPLORER_LIVE_* setting on the server
    st.error(f"Live training is not available on this server: {exc}")
    st.stop()
owner = state["live_owner"]


def session_alive():
    """A function telling the server whether this browser tab is still connected (its run ends a while after)."""
    from streamlit import runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not runtime.exists():
        return lambda: True
    server, session = runtime.get_instance(), ctx.session_id
    return lambda: server.is_active_session(session)


def chosen_settings() -> LiveSettings:
    fields = ("dataset", "family", "image_size", "latent_dim", "g_activation", "width", "batch_size", "num_images",
              "seed", "lr_g", "lr_d", "d_ratio", "label_smoothing", "label_flip", "class_weight", "noise", "kl_weight")
    # A knob the family does not show has no widget, so Streamlit forgot its value: its default stands in.
    settings = LiveSettings(**{name: state.get(f"live_{name}", DEFAULTS[f"live_{name}"]) for name in fields},
                            data_root=state.get("data_root_kept", ""))
    if registry.trains_as_vae(settings.family):
        settings.noise = "N(0,1)"
    return settings


def knob_values(settings: LiveSettings) -> dict:
    """The knobs on screen that differ from the run's: what Resume or One step sends first."""
    chosen = chosen_settings()
    knobs = registry.family(settings.family).live_knobs
    return {k: getattr(chosen, k) for k in knobs if getattr(chosen, k) != getattr(settings, k)}


# -- actions (button callbacks: they run before the page is drawn again) ---------------------------------------

def start() -> None:
    state.pop("live_saved", None)
    try:
        # The server's own folder: a visitor chooses whether to keep the run and its name, never where it goes.
        folder = runs_folder() if state["live_keep"] == KEEP_FOLDER else None
        runs.submit(owner, chosen_settings(), session_alive(), runs_folder=folder, name=state["live_run_name"])
        state["live_error"] = ""
    except LatentExplorerError as exc:
        state["live_error"] = str(exc)


def send(command: str) -> None:
    status = runs.status(owner) or {}
    settings = LiveSettings.from_json(status.get("settings") or {})
    if command in ("run", "step") and status.get("settings"):
        changes = knob_values(settings)
        if changes:
            message = (runs.command(owner, "set", knobs=changes) or {}).get("message", "")
            state["live_error"] = message if message.startswith("that change was refused") else ""
            if state["live_error"]:
                return
    runs.command(owner, command)


def leave_queue() -> None:
    runs.stop(owner)


def new_run() -> None:
    runs.forget(owner)
    state.pop("live_saved", None)


# -- the page ------------------------------------------------------------------------------------------------

def current_state() -> str:
    """none (no run), queued, loading, running, paused, saving, or an end (done, failed, abandoned)."""
    run, position = runs.get(owner), runs.position(owner)
    if run is None:
        return "none"
    if position:
        return "queued"
    seen = (runs.status(owner) or {}).get("state", "loading")
    return "failed" if run.ended and seen not in protocol.ENDED else seen  # a process killed without a word


def run_settings(disabled: bool) -> None:
    """The data and the model: fixed once a run starts."""
    c1, c2, c3 = st.columns(3)
    c1.selectbox("Dataset", list(DATASET_LABELS), format_func=DATASET_LABELS.get, key="live_dataset",
                 disabled=disabled)
    c2.radio("Model", list(registry.LIVE), format_func=lambda name: registry.family(name).display, key="live_family",
             horizontal=True,
             disabled=disabled)
    c3.radio("Image size", IMAGE_SIZES, format_func=lambda s: f"{s} px", key="live_image_size", horizontal=True,
             disabled=disabled)
    c1.select_slider("Latent size (nz)", LATENT_SIZES, key="live_latent_dim", disabled=disabled)
    c2.radio("Generator activation", list(ACTIVATIONS), key="live_g_activation", horizontal=True,
             disabled=disabled)
    s1, s2, s3, s4 = st.columns(4)
    s1.select_slider("Network width (ngf = ndf)", WIDTHS, key="live_width", disabled=disabled,
                     help="Narrower networks train faster and draw rougher pictures.")
    s2.select_slider("Batch size", BATCH_SIZES, key="live_batch_size", disabled=disabled)
    s3.select_slider("Training images", IMAGE_COUNTS, key="live_num_images",
                     disabled=disabled, help="Toy faces are drawn once and kept for later runs.")
    s4.number_input("Seed", 0, 2**31 - 1, step=1, key="live_seed", disabled=disabled)
    data_root_setting(state["live_dataset"])  # the sidebar's "Folder of your datasets", for the real datasets
    if state["live_dataset"] == "fashion-mnist" and not disabled:
        missing = fashion_mnist_missing(state.get("data_root_kept", ""))
        if missing:
            st.warning(missing)
    st.radio("Keep the finished run", [KEEP_TEMPORARY, KEEP_FOLDER], key="live_keep", horizontal=True,
             disabled=disabled)
    if state["live_keep"] == KEEP_FOLDER:
        st.text_input("Name of the run (optional)", key="live_run_name", max_chars=NAME_LENGTH, disabled=disabled,
                      help="Stopped runs are saved on the server as model bundles that every page lists, for every "
                           "visitor, as “live · your name · the time”. Letters, digits, spaces and - . , ( ) ' "
                           "are kept.")


def knobs(disabled: bool) -> None:
    """What a paused run may change (the family's own knobs only)."""
    family = state["live_family"]
    k1, k2, k3 = st.columns(3)
    for knob, column in (("lr_g", k1), ("lr_d", k1)):
        column.select_slider(knob_label(knob, family), LEARNING_RATES, format_func=lambda v: f"{v:g}",
                             key=f"live_{knob}", disabled=disabled)
    if registry.trains_as_vae(family):
        k2.select_slider("KL weight", KL_WEIGHTS, format_func=lambda v: f"{v:g}", key="live_kl_weight",
                         disabled=disabled)
        return
    k2.select_slider("D updates per G update", list(D_RATIOS), key="live_d_ratio", disabled=disabled,
                     help="1/2: D learns on every other step only; 2: D learns twice, on two batches, per G step.")
    k2.selectbox("Training noise z", NOISES, key="live_noise", disabled=disabled)
    k3.slider("Label smoothing (D's target for real images is 1 − this)", *SMOOTHING[:2], step=SMOOTHING[2],
              key="live_label_smoothing", disabled=disabled)
    k3.slider("Label flipping (chance each of D's targets is swapped)", *FLIPPING[:2], step=FLIPPING[2],
              key="live_label_flip",
              disabled=disabled)
    if registry.capabilities(family).conditional:
        k2.select_slider("Classification weight", CLASS_WEIGHTS, format_func=lambda v: f"{v:g}",
                         key="live_class_weight", disabled=disabled)


def buttons(current: str) -> None:
    b1, b2, _, b4 = st.columns(4)
    if current in ("none", *protocol.ENDED):
        b1.button("▶ Start", on_click=start, type="primary", key="live_start", use_container_width=True)
        if current in protocol.ENDED:
            b2.button("Clear", on_click=new_run, key="live_clear", use_container_width=True)
        return
    if current == "queued":
        b1.button("Leave the queue", on_click=leave_queue, key="live_leave", use_container_width=True)
        return
    if current == "paused":
        b1.button("▶ Resume", on_click=send, args=("run",), type="primary", key="live_resume",
                  use_container_width=True)
        b2.button("⏭ One step", on_click=send, args=("step",), key="live_step", use_container_width=True)
    elif current == "running":
        b1.button("⏸ Pause", on_click=send, args=("pause",), key="live_pause", use_container_width=True)
    if b4.button("⏹ Stop and save", key="live_stop", use_container_width=True):
        with st.spinner("Saving the run as a model bundle…"):
            runs.stop(owner)
        st.rerun()


def show_result(run, status: dict) -> None:
    """A stopped run's bundle, made selectable on every page (this tab's, or the runs folder's for everyone)."""
    path = status.get("bundle")
    if not path:
        if status.get("state") == "done":
            st.info(status.get("message") or "Nothing was saved.")
        return
    if state.get("live_saved") != path:
        if not run.keep:
            bundles.add_session_bundle(status.get("name") or Path(path).name, path, select=False)
        state["live_saved"] = path
    st.success(f"Saved as the model bundle **{status.get('name')}** (`{path}`): pick it in the sidebar of any page.")
    o1, o2 = st.columns(2)
    if o1.button("Open it on the sampling page", key="live_open_sample"):
        state[bundles.SELECTED_KEY] = path
        st.switch_page("views/sample.py")
    if o2.button("Open it in the training replay", key="live_open_replay"):
        state[bundles.SELECTED_KEY] = path
        st.switch_page("views/replay.py")


def file_version(path: Path) -> tuple:
    try:
        info = path.stat()
    except OSError:
        return (str(path), None, None)
    return (str(path), info.st_mtime_ns, info.st_size)


@st.cache_data(max_entries=8, show_spinner=False)
def live_curves(version: tuple, changes: str, family: str, _history: dict):
    """The curves, once per version of the run's history file (path, time, size): a paused or stopped run is drawn
    again on every click, and its history can be long."""
    return curves_figure(_history, json.loads(changes), family)


def panel(current: str) -> None:
    """What the run shows now: state, speed, health, the fixed-noise grid and the curves."""
    if current_state() != current:
        st.rerun()  # the buttons and knobs depend on the state: draw the whole page again
    run, status, position = runs.get(owner), runs.status(owner) or {}, runs.position(owner)
    if position:
        st.info(f"Another live run is training on this server (it allows {runs.limit} at a time, so sliders stay "
                f"quick for everyone). This run is number {position} in the queue and starts by itself when its "
                "turn comes; keep this tab open.")
        return
    if not status:
        st.info("Starting the training process…")
        return
    history_file = run.folder / protocol.HISTORY
    version = file_version(history_file)  # taken before reading: a newer file never hides under an older key
    history = protocol.read_json_file(history_file, "live history") or {}
    samples = protocol.read_array(run.folder / protocol.SAMPLES)
    real = protocol.read_array(run.folder / protocol.REAL)
    family = LiveSettings.from_json(status.get("settings") or {}).family
    step = int(status.get("step", 0))
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("step", step)
    m2.metric("steps/s", f"{status.get('steps_per_second', 0):.1f}")
    m3.metric("state", current)
    m4.metric("time left", "–" if current in protocol.ENDED else f"{time_left(status) / 60:.1f} min")
    st.caption(state_line(status))
    if samples is None:
        return
    verdict = health(history, torch_worker.run(diversity_ratio, samples, real), status.get("event"),
                     status.get("message", ""))
    shown = {"ok": st.success, "warning": st.warning, "error": st.error}[verdict.level]
    shown(f"**Health: {verdict.verdict}.** {verdict.sentence}")
    picture, curves = st.columns([2, 3])
    picture.image(torch_worker.run(grid_jpeg, to_tensor(samples)), output_format="JPEG", width="stretch",
                  caption=f"the same {len(samples)} fixed codes after {step} steps")
    figure = live_curves(version, json.dumps(status.get("changes") or []), family, history)
    if figure is not None:
        curves.plotly_chart(figure, key="live_curves")
    for change in status.get("changes") or []:
        st.caption(f"After step {change['step']}: {describe_change(change, family)}.")


current = current_state()
if current == "none":
    st.header("The run")
    run_settings(disabled=False)
    st.header("Knobs")
    knobs(disabled=False)
    buttons(current)
    if not state.get("live_error"):
        st.info("Pick a dataset and a model, then press Start. The first toy-face run draws its images once (a few "
                "seconds); the picture then refreshes about once a second.")
else:
    st.header("Live")
    if current in protocol.ENDED:
        show_result(runs.get(owner), runs.status(owner) or {})
    # Refreshes itself about once a second while something changes; paused or ended, it waits for a click.
    st.fragment(panel, run_every=1.0 if current in TICKING or current == "queued" else None)(current)
    buttons(current)
    st.header("Knobs" + (" (pause to change them)" if current == "running" else ""))
    knobs(disabled=current in ("loading", "running", "saving", "queued"))
    with st.expander("The run's data and model" + ("" if current in protocol.ENDED else " (fixed until it stops)"),
                     expanded=current in protocol.ENDED):
        run_settings(disabled=current in ACTIVE or current == "queued")
if state.get("live_error"):
    st.error(state["live_error"])
