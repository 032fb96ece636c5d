"""Pictures for the pages: image grids and plotly figures, built by pure functions (no Streamlit)."""

from __future__ import annotations

import functools
import io

import numpy as np
import plotly.graph_objects as go
import torch

from explorer.logic.curves import DRAWN_POINTS, minmax_downsample
from explorer.logic.diagnostics import NormReference, nonfinite_rows

# Blow 64x64 samples up so the back of the classroom sees them; nearest keeps pixels honest.
DISPLAY_SCALE = 3

# Chart text read from the back of a classroom at 150% zoom: nothing under 16 px. Streamlit's chart theme draws
# ticks at 12 px unless a figure says otherwise, so every figure says so (readable, below).
TEXT_PX = 16
AXIS_TITLE_PX = 18
TITLE_PX = 20
# Legends sit under the plot, in the figure's bottom margin: above it they ran into the titles of the panels.
LEGEND_BELOW = dict(orientation="h", xref="container", x=0.01, xanchor="left", yref="container", y=0.01,
                    yanchor="bottom")
LEGEND_ROOM_PX = 90  # bottom margin for the x axis's title and one or two rows of legend


def readable(fig: go.Figure) -> go.Figure:
    """Every text of the figure at least TEXT_PX (ticks, axis titles, legend, hover labels, annotations such as
    panel titles): the one place the charts' text sizes are set."""
    fig.update_layout(font_size=TEXT_PX, title_font_size=TITLE_PX, legend_font_size=TEXT_PX,
                      hoverlabel_font_size=TEXT_PX)
    fig.update_xaxes(tickfont_size=TEXT_PX, title_font_size=AXIS_TITLE_PX)
    fig.update_yaxes(tickfont_size=TEXT_PX, title_font_size=AXIS_TITLE_PX)
    axis = dict(tickfont_size=TEXT_PX, title_font_size=AXIS_TITLE_PX)
    fig.update_scenes(xaxis=axis, yaxis=axis, zaxis=axis)  # a 3-D map's axes
    fig.for_each_annotation(lambda note: note.update(font_size=max(note.font.size or 0, TEXT_PX)))
    return fig


def image_grid(images: torch.Tensor, nrow: int = 8, scale: int = DISPLAY_SCALE, padding: int = 2) -> np.ndarray:
    """(B, C, H, W) in [-1, 1] -> one uint8 RGB grid (H', W', 3) on a white background, upscaled with nearest
    neighbour. Laid out like torchvision's make_grid, written out here because importing torchvision (and the
    compiler stack it pulls in) took longer than everything else on the app's first page."""
    # To bytes first (in place: one buffer), then lay out bytes: the same values as make_grid's normalise-then-
    # scale, in a quarter of the memory traffic.
    x = cross_out_nonfinite(images.detach().float().cpu())
    # (x + 1) * 127.5 is (x + 1) / 2 * 255 to the bit (halving is exact): one pass fewer over the batch.
    x = x.clamp(-1, 1).add_(1).mul_(127.5).round_().to(torch.uint8)
    if x.shape[1] == 1:  # grey -> RGB
        x = x.expand(-1, 3, -1, -1)
    count, _, h, w = x.shape
    columns = max(1, min(nrow, count))
    rows = -(-count // columns)
    # Every image gets a white border on its top and left; the last row is filled with white tiles; one more
    # border closes the right and bottom edges. Done as one reshape rather than a loop over images.
    tiles = torch.full((rows * columns, 3, h + padding, w + padding), 255, dtype=torch.uint8)
    tiles[:count, :, padding:, padding:] = x[:, :3]
    grid = tiles.reshape(rows, columns, 3, h + padding, w + padding).permute(0, 3, 1, 4, 2)
    grid = grid.reshape(rows * (h + padding), columns * (w + padding), 3).numpy()
    grid = np.pad(grid, ((0, padding), (0, padding), (0, 0)), constant_values=255)
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    return np.ascontiguousarray(grid)


def cross_out_nonfinite(images: torch.Tensor) -> torch.Tensor:
    """Every sample holding a NaN or infinite pixel replaced by a grey tile crossed out in black. Cast to bytes,
    NaN becomes black and infinity white, which would pass a broken model's output off as a dark or light
    picture; the page's caption (crossed_out_note) says what the crosses mean."""
    broken = nonfinite_rows(images)
    if not broken.any():
        return images
    h, w = images.shape[-2:]
    tile = torch.zeros(images.shape[1:], dtype=images.dtype)  # 0 is mid-grey in [-1, 1]
    rows = torch.arange(h)
    cols = (rows * (w - 1) / max(h - 1, 1)).round().long()
    for thickness in range(max(1, min(h, w) // 16)):
        shifted = (cols + thickness).clamp(max=w - 1)
        tile[:, rows, shifted] = -1
        tile[:, rows, w - 1 - shifted] = -1
    out = images.clone()
    out[broken] = tile
    return out


def crossed_out_note(count: int, total: int, what: str = "samples") -> str | None:
    """The caption under a picture in which cross_out_nonfinite crossed samples out (None when it did not)."""
    if not count:
        return None
    if count >= total:
        return f"No picture: all {total} {what} hold NaN or infinite pixel values, so none is a real image."
    return (f"{count} of {total} {what} are crossed out: they hold NaN or infinite pixel values, so they are not "
            "real images.")


def grid_jpeg(images: torch.Tensor, nrow: int = 8, padding: int = 2) -> bytes:
    """(B, C, H, W) in [-1, 1] -> the grid as JPEG bytes at its native size; show with output_format="JPEG".

    Handing Streamlit a ready-made picture at native size is what keeps a slider move fast: given a big array,
    Streamlit shrinks anything wider than its page with a bilinear resize and re-encodes it, which cost more than
    the generator itself. The browser enlarges the picture instead, nearest-neighbour (see PIXELATED_CSS).
    Quality 95 without chroma subsampling is visually lossless at a fifteenth of the time of PNG (whose zlib
    gains little on noisy samples); every number on the pages is computed from the tensors, never from this."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image_grid(images, nrow=nrow, scale=1, padding=padding)).save(buffer, "JPEG", quality=95,
                                                                                  subsampling=0)
    return buffer.getvalue()


# Injected once by the app: samples are enlarged by the browser, and nearest-neighbour keeps pixels honest.
PIXELATED_CSS = "<style>[data-testid='stImage'] img, [data-testid='stFullScreenFrame'] img " \
                "{image-rendering: pixelated;}</style>"


def norm_histogram(norms: np.ndarray, prior_norms: np.ndarray, reference: NormReference, label: str,
                   prior_label: str) -> go.Figure:
    """Code norms of the batch against the training prior's norms (the prior's typical set).

    Built for a slider: densities are binned here with numpy (sending 4,096 raw norms for plotly to bin cost more
    than the generator), the traces go straight into the constructor and the layout is made once per model
    (plotly validates every property it is handed, which made this figure the slowest part of a rerun)."""
    bars = []
    for values, name, colour, bins, opacity in ((prior_norms, f"training prior {prior_label}", "#8f8f8f", 40, 0.6),
                                               (norms, f"this batch {label}", "#e4572e", 30, 0.75)):
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        if not len(values):
            continue
        if np.ptp(values) > 0:
            density, edges = np.histogram(values, bins=bins, density=True)
        else:  # every code has the same norm (std 0): one thin bar
            edges, density = np.array([values[0] - 0.05, values[0] + 0.05]), np.array([10.0])
        bars.append(dict(type="bar", x=(edges[:-1] + edges[1:]) / 2, y=density, width=np.diff(edges), name=name,
                         opacity=opacity, marker=dict(color=colour, line_width=0)))  # validated once, by Figure
    # _validate=False: the traces are plain numbers built just above and the layout was validated when it was
    # cached; re-checking every property on each slider move cost a third of this function. The cached layout has
    # no template: copying one (hundreds of trace defaults) was nine tenths of the rest, and the figure takes
    # plotly's default template (Streamlit's, in the app) without a copy, as a figure built from scratch does.
    return go.Figure(data=bars, layout=_norm_layout(float(reference.mean)), _validate=False)


@functools.lru_cache(maxsize=64)
def _norm_layout(prior_mean: float) -> dict:
    """The histogram's layout, validated once per prior mean, as a plain dict without its template."""
    layout = _validated_norm_layout(prior_mean).to_plotly_json()
    layout.pop("template", None)
    return layout


def _validated_norm_layout(prior_mean: float) -> go.Layout:
    layout = go.Layout(barmode="overlay", xaxis_title="code norm ||z||", yaxis_title="density", height=360,
                       margin=dict(l=10, r=10, t=40, b=LEGEND_ROOM_PX), legend=LEGEND_BELOW,
                       shapes=[dict(type="line", xref="x", yref="paper", x0=prior_mean, x1=prior_mean, y0=0, y1=1,
                                    line=dict(dash="dash", color="#444"))],
                       # Above the plot, where no bar can hide it.
                       annotations=[dict(x=prior_mean, xref="x", y=1, yref="paper", showarrow=False,
                                         xanchor="center", yanchor="bottom", text=f"prior mean {prior_mean:.1f}")])
    return readable(go.Figure(layout=layout)).layout


def upscale(array: np.ndarray, scale: int = DISPLAY_SCALE) -> np.ndarray:
    """Nearest-neighbour enlargement of an (H, W[, C]) uint8 picture, e.g. a saved snapshot grid."""
    if scale <= 1:
        return array
    return array.repeat(scale, axis=0).repeat(scale, axis=1)


def grid_corner(grid: np.ndarray, faces: int, per_row: int = 8, padding: int = 2) -> np.ndarray:
    """The top-left `faces` x `faces` images of a saved grid of `per_row` images a row, laid out as make_grid does
    (a border before every image, one after the last); the whole grid when it is not laid out that way."""
    height, width = grid.shape[:2]
    tile, rest = divmod(width - padding, per_row)
    side = faces * tile + padding
    if rest or tile <= padding or faces >= per_row or side > height:
        return grid
    return grid[:side, :side]


def labelled_rows(labels: list[str], rows: list[torch.Tensor], scale: int = DISPLAY_SCALE, padding: int = 2,
                  font_size: int | None = None) -> np.ndarray:
    """One picture with a text label left of each row of images (a sweep, an interpolation): (H', W', 3) uint8."""
    from PIL import Image, ImageDraw, ImageFont

    if not rows:
        raise ValueError("labelled_rows needs at least one row")
    width = max(r.shape[0] for r in rows)
    grids = [image_grid(r, nrow=width, scale=scale, padding=padding) for r in rows]
    row_h = max(g.shape[0] for g in grids)
    grid_w = max(g.shape[1] for g in grids)
    font = ImageFont.load_default(size=font_size or max(14, row_h // 5))
    label_w = int(max(font.getbbox(text)[2] for text in labels)) + 24
    canvas = Image.new("RGB", (label_w + grid_w, row_h * len(rows)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (text, grid) in enumerate(zip(labels, grids)):
        canvas.paste(Image.fromarray(grid), (label_w, i * row_h))
        box = font.getbbox(text)
        draw.text((label_w - 12 - box[2], i * row_h + (row_h - box[3]) // 2), text, fill="#222", font=font)
    return np.asarray(canvas)


def sweep_figure(means: np.ndarray, columns: dict[str, np.ndarray], varied: tuple[float, float] | None,
                 prior_label: str) -> go.Figure:
    """The collapse diagnostics against the mean, one panel each, sharing the x axis; the band marks the
    means whose samples stay varied."""
    from plotly.subplots import make_subplots

    panels = [
        ("diversity_ratio", f"output diversity vs {prior_label}", "#e4572e", 1.0),
        ("cosine", "mean pairwise cosine of codes", "#2e86ab", None),
        ("saturated", "saturated pixels", "#6c3483", None),
        ("first_layer_shift", "first-layer shift (BN std)", "#1e8449", None),
        ("norm_zscore", "code norm vs prior (std devs)", "#7f8c8d", 0.0),
    ]
    panels = [p for p in panels if p[0] in columns and np.isfinite(columns[p[0]]).any()]
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.03,
                        subplot_titles=[p[1] for p in panels])
    for i, (key, title, colour, reference) in enumerate(panels, start=1):
        y = columns[key]
        fig.add_scatter(x=means, y=y, mode="lines+markers", name=title, line=dict(color=colour, width=3),
                        marker=dict(size=8), row=i, col=1, showlegend=False,
                        hovertemplate="mean %{x:g}: %{y:.3g}<extra>" + title + "</extra>")
        if reference is not None:
            fig.add_hline(y=reference, line_dash="dot", line_color="#999", row=i, col=1)
        if key in ("diversity_ratio", "saturated"):
            fig.update_yaxes(tickformat=".0%", row=i, col=1)
        if varied is not None:
            fig.add_vrect(x0=varied[0] - 0.25, x1=varied[1] + 0.25, fillcolor="#2ecc71", opacity=0.12,
                          line_width=0, row=i, col=1)
    fig.update_xaxes(title_text="mean m of z ~ N(m, std)", row=len(panels), col=1)
    fig.update_layout(height=180 * len(panels) + 80, margin=dict(l=10, r=10, t=40, b=10))
    return readable(fig)


def path_norms_figure(t: np.ndarray, linear: np.ndarray, spherical: np.ndarray, reference: NormReference,
                      prior_label: str) -> go.Figure:
    """||z|| along the linear and spherical paths, over the band where the prior's norms live."""
    fig = go.Figure()
    fig.add_hrect(y0=reference.mean - 2 * reference.std, y1=reference.mean + 2 * reference.std,
                  fillcolor="#8f8f8f", opacity=0.2, line_width=0,
                  annotation_text=f"{prior_label} norms (mean ± 2 std)", annotation_position="top left")
    fig.add_scatter(x=t, y=linear, name="linear", line=dict(color="#e4572e", width=4))
    fig.add_scatter(x=t, y=spherical, name="spherical (slerp)", line=dict(color="#2e86ab", width=4))
    low = min(float(linear.min()), reference.mean - 3 * reference.std)
    high = max(float(max(linear.max(), spherical.max())), reference.mean + 3 * reference.std)
    fig.update_layout(xaxis_title="position along the path t", yaxis_title="code norm ||z||", height=400,
                      yaxis_range=[0.9 * low, 1.05 * high], margin=dict(l=10, r=10, t=30, b=LEGEND_ROOM_PX),
                      legend=LEGEND_BELOW)
    return readable(fig)


# Curves one loss chart draws: every curve our training loops record (13 names) fits; a history holding thousands
# of curves would otherwise make a chart of hundreds of megabytes out of a file the reader accepts.
MAX_CURVES = 16
NAME_CHARACTERS = 60  # a curve's name in the legend (a history's keys are whatever the file says)


def shortened(text: str, limit: int = NAME_CHARACTERS) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def loss_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], labels: dict[str, str],
                marker_step: int | None = None, equilibrium: dict[str, float] | None = None,
                probability_keys: tuple[str, ...] = ("d_real", "d_fake")) -> go.Figure:
    """Training curves, each given as (steps, values): losses on top, D's outputs (probabilities) below when present;
    a line at the viewed step and one at each curve's equilibrium value. A curve longer than DRAWN_POINTS is cut
    down (lowest and highest point per stretch of steps), and at most MAX_CURVES curves are drawn (the first ones),
    so the chart stays small whatever the history holds."""
    from plotly.subplots import make_subplots

    curves = dict(list(curves.items())[:MAX_CURVES])
    colours = {"loss_g": "#e4572e", "loss_d": "#2e86ab", "d_real": "#1e8449", "d_fake": "#6c3483",
               "recon": "#e4572e", "kl": "#2e86ab", "loss": "#7f8c8d"}
    probabilities = [k for k in curves if k in probability_keys]
    losses = [k for k in curves if k not in probabilities]
    rows = 2 if probabilities and losses else 1
    titles = (["losses", "discriminator outputs (probability)"] if rows == 2
              else ["discriminator outputs (probability)" if probabilities else "losses"])
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.1, subplot_titles=titles)

    def row_of(key: str) -> int:
        return 2 if rows == 2 and key in probabilities else 1

    for key in losses + probabilities:
        steps, values = minmax_downsample(*curves[key], DRAWN_POINTS)
        fig.add_scatter(x=steps, y=values, name=shortened(labels.get(key, key)), mode="lines",
                        line=dict(color=colours.get(key), width=2), row=row_of(key), col=1)
    # Two equilibrium lines can lie close together (D's 1.39 and G's 0.69 on a loss axis reaching 10): their labels
    # go to opposite ends of the panel, so they never overlap whatever the axis range.
    ends = ("top right", "bottom left")
    labelled_in_row: dict[int, int] = {}
    for key, value in (equilibrium or {}).items():
        if key in curves:
            row = row_of(key)
            place = ends[labelled_in_row.get(row, 0) % len(ends)]
            labelled_in_row[row] = labelled_in_row.get(row, 0) + 1
            fig.add_hline(y=value, line_dash="dot", line_color=colours.get(key, "#999"), row=row, col=1,
                          annotation_text=f"{shortened(labels.get(key, key))} equilibrium {value:.2f}",
                          annotation_position=place, annotation_font_color=colours.get(key, "#555"))
    if marker_step is not None:
        for row in range(1, rows + 1):
            fig.add_vline(x=marker_step, line_dash="dash", line_color="#444", row=row, col=1)
    fig.update_xaxes(title_text="training step", row=rows, col=1)
    fig.update_layout(height=300 * rows + 120, margin=dict(l=10, r=10, t=40, b=LEGEND_ROOM_PX), legend=LEGEND_BELOW)
    return readable(fig)


# One colour per run of an experiment group; the baseline (first) is black.
RUN_COLOURS = ("#222222", "#e4572e", "#2e86ab", "#1e8449", "#6c3483", "#f1c40f", "#d35400", "#16a085")


def overlay_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str,
                   marker_step: int | None = None) -> go.Figure:
    """One training curve of several runs, overlaid: run label -> (steps, values), the first drawn thicker. Long
    curves are cut down as in loss_figure."""
    fig = go.Figure()
    for i, (name, (steps, values)) in enumerate(curves.items()):
        steps, values = minmax_downsample(steps, values, DRAWN_POINTS)
        fig.add_scatter(x=steps, y=values, name=name, mode="lines",
                        line=dict(color=RUN_COLOURS[i % len(RUN_COLOURS)], width=3 if i == 0 else 2))
    if marker_step is not None:
        fig.add_vline(x=marker_step, line_dash="dash", line_color="#444")
    legend_px = 28 * len(curves)  # run labels are long: one a row, under the plot
    fig.update_layout(height=440 + legend_px, margin=dict(l=10, r=10, t=50, b=80 + legend_px),
                      title=title, xaxis_title="training step", legend=LEGEND_BELOW)
    return readable(fig)


# A qualitative palette readable on a projector; the overlay is always black crosses.
MAP_COLOURS = ("#2e86ab", "#e4572e", "#1e8449", "#f1c40f", "#6c3483", "#7f8c8d", "#d35400", "#16a085", "#c0392b",
               "#34495e", "#e84393", "#00b894")


# When an attribute's values are colour names (hair colour, eye colour), draw them in those colours.
NAMED_COLOURS = {"black": "#222222", "brown": "#8b4a1c", "blonde": "#e8c04a", "red": "#d8432a", "blue": "#2e6fd8",
                 "green": "#23a043", "grey": "#8f8f8f", "gray": "#8f8f8f", "white": "#d9d9d9", "orange": "#f08c1a",
                 "pink": "#f07ab4", "purple": "#7d3cb5", "yellow": "#f5d90a", "aqua": "#19c3c3"}


def latent_scatter(xy: np.ndarray, groups: np.ndarray, index: np.ndarray, title: str,
                   axis_titles: tuple[str, str] = ("1", "2"), overlay: np.ndarray | None = None,
                   overlay_label: str | None = None, selected: int | None = None,
                   order: tuple[str, ...] | None = None) -> go.Figure:
    """Codes as points coloured by group (one legend entry per value, in `order` when given); each point carries
    its code index as customdata, so a selection event says which code was picked. Optional overlay of other
    codes (crosses) and a ring around the selected code. Three columns in xy (and axis titles) draw it in 3-D,
    which a click selects from too."""
    fig = go.Figure()
    three_d = xy.shape[1] == 3

    def points(where: np.ndarray, **trace) -> None:
        p = np.asarray(where)
        if three_d:
            marker = dict(trace.pop("marker"))
            marker["size"] = max(3, int(marker.get("size", 7) * 0.6))  # 3-D markers draw larger
            fig.add_scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2], marker=marker, **trace)
        else:
            fig.add_scatter(x=p[:, 0], y=p[:, 1], **trace)

    groups = np.asarray(groups).astype(str)
    present = set(groups.tolist())
    values = [v for v in (order or ()) if v in present] + sorted(present - set(order or ()))
    named = all(v.lower() in NAMED_COLOURS for v in values)
    for k, value in enumerate(values):
        mask = groups == value
        colour = NAMED_COLOURS[value.lower()] if named else MAP_COLOURS[k % len(MAP_COLOURS)]
        points(xy[mask], mode="markers", name=value, marker=dict(size=7, color=colour, opacity=0.75),
               customdata=np.asarray(index)[mask], hovertemplate="code %{customdata}<extra>" + value + "</extra>")
    if overlay is not None and len(overlay):
        points(overlay, mode="markers", name=overlay_label or "overlay", marker=dict(size=9, symbol="x", color="#111"),
               hoverinfo="skip")
    if selected is not None:
        where = np.flatnonzero(np.asarray(index) == selected)
        if len(where):
            points(xy[where[:1]], mode="markers", name=f"code {selected}", hoverinfo="skip",
                   marker=dict(size=20, symbol="circle-open", color="#111", line=dict(width=3)))
    fig.update_layout(title=title, height=520, margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(itemsizing="constant"))
    if three_d:
        fig.update_layout(scene=dict(xaxis_title=axis_titles[0], yaxis_title=axis_titles[1],
                                     zaxis_title=axis_titles[2] if len(axis_titles) > 2 else "3"))
    else:
        fig.update_layout(xaxis_title=axis_titles[0], yaxis_title=axis_titles[1])
    readable(fig)
    # No clickmode / dragmode here: st.plotly_chart(on_select=...) sets click-to-select itself, and only when the
    # layout leaves them unset.
    return fig


def walk_figure(ts: list[float], recognised: list[float], norms: list[float], label: str,
                prior_norm: float | None = None) -> go.Figure:
    """Along an attribute walk: how often the feature network sees the attribute, and the codes' norm."""
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_scatter(x=ts, y=recognised, name=f"recognised as {label}", mode="lines+markers",
                    line=dict(color="#e4572e", width=4), marker=dict(size=9), secondary_y=False)
    fig.add_scatter(x=ts, y=norms, name="mean code norm", mode="lines+markers", line=dict(color="#7f8c8d", dash="dot"),
                    secondary_y=True)
    if prior_norm:
        fig.add_hline(y=prior_norm, line_dash="dash", line_color="#bbb", secondary_y=True,
                      annotation_text="training codes' norm", annotation_position="bottom right")
    fig.update_yaxes(title_text="share recognised", tickformat=".0%", range=[0, 1.05], secondary_y=False)
    fig.update_yaxes(title_text="code norm", secondary_y=True)
    fig.update_xaxes(title_text="position t along the direction (in gaps between the groups)")
    fig.update_layout(height=400, margin=dict(l=10, r=10, t=30, b=LEGEND_ROOM_PX), legend=LEGEND_BELOW)
    return readable(fig)
