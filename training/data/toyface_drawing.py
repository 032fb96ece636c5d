"""How one toy face is drawn: every random choice (the labelled attributes first, then the nuisance factors) and
the cartoon it makes. toyfaces.py turns a seed into a dataset of them."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from training.attributes import Attribute
from training.errors import LatentExplorerError

ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("hair_colour", ("black", "brown", "blonde", "red", "blue")),
    Attribute("eye_colour", ("brown", "blue", "green")),
    Attribute("smiling", ("no", "yes")),
    Attribute("glasses", ("no", "yes")),
    Attribute("beard", ("no", "yes")),
)

MIN_SIZE = 16
# Everything is drawn this many times larger and box-filtered down, which is how we get anti-aliasing from PIL.
SUPERSAMPLE = 4

HAIR_RGB = {
    "black": (28, 24, 24),
    "brown": (96, 54, 22),
    "blonde": (240, 204, 92),
    "red": (204, 64, 26),
    "blue": (40, 92, 224),
}
EYE_RGB = {
    "brown": (116, 62, 18),
    "blue": (36, 112, 236),
    "green": (34, 166, 56),
}
# Skin tones are a straight line between these two ends, so skin is one continuous nuisance factor.
SKIN_LIGHT = np.array([255, 226, 200], dtype=np.float64)
SKIN_DARK = np.array([140, 94, 64], dtype=np.float64)
HAIR_STYLES = ("cap", "long", "bangs", "spiky")
NOSE_STYLES = ("button", "hook", "nostrils")

Colour = tuple[int, int, int]


@dataclass(frozen=True)
class _Face:
    """Every random choice for one face, in unit coordinates (the canvas is [0, 1] x [0, 1])."""

    labels: tuple[int, ...]
    background: tuple[Colour, Colour]
    shirt: Colour
    skin: Colour
    hair: Colour
    hair_style: int
    cx: float
    cy: float
    rx: float
    ry: float
    jaw: float
    scale: float
    brow_tilt: float
    nose_style: int
    nose_size: float
    mouth_width: float
    teeth: bool
    frown: float
    round_glasses: bool
    frame: Colour


def _shade(colour: Sequence[float], factor: float) -> Colour:
    """The colour scaled towards black (factor < 1) or white (factor > 1), clipped to bytes."""
    arr = np.asarray(colour, dtype=np.float64)
    out = arr * factor if factor <= 1 else arr + (255 - arr) * (factor - 1)
    return tuple(int(v) for v in np.clip(np.round(out), 0, 255))  # type: ignore[return-value]


def _jitter(rng: np.random.Generator, colour: Colour, amount: int) -> Colour:
    """A small per-image colour wobble so one label value is a cluster, not a single point."""
    offset = rng.integers(-amount, amount + 1, size=3)
    return tuple(int(v) for v in np.clip(np.array(colour) + offset, 0, 255))  # type: ignore[return-value]


def _muted(rng: np.random.Generator) -> Colour:
    """A random pastel/muted colour: any hue, low saturation, high value."""
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.12, 0.38), rng.uniform(0.72, 0.95))
    return int(r * 255), int(g * 255), int(b * 255)


def _sample_face(rng: np.random.Generator, overrides: dict[str, int | str] | None) -> _Face:
    """Draw every random choice. The attributes come first and are always drawn, so overriding one leaves the rest."""
    labels = [int(rng.integers(len(a.values))) for a in ATTRIBUTES]
    for name, value in (overrides or {}).items():
        labels[_attribute_index(name)] = _value_index(name, value)
    hair_name = ATTRIBUTES[0].values[labels[0]]

    top = _muted(rng)
    bottom = _shade(_muted(rng), rng.uniform(0.8, 1.0))
    t = rng.random()
    skin = _jitter(rng, tuple(int(v) for v in SKIN_LIGHT + (SKIN_DARK - SKIN_LIGHT) * t), 6)  # type: ignore[arg-type]
    scale = rng.uniform(0.9, 1.1)
    rx = rng.uniform(0.25, 0.30) * scale
    ry = rng.uniform(0.29, 0.33) * scale
    cx = 0.5 + rng.uniform(-0.04, 0.04)
    cy = 0.53 + rng.uniform(-0.04, 0.04)
    # Keep the whole head (hair and spikes on top, chin and beard below) inside the frame by nudging, not rejecting.
    cy = float(np.clip(cy, 0.04 + ry * 1.32, 0.97 - ry * 1.06))
    cx = float(np.clip(cx, 0.03 + rx * 1.35, 0.97 - rx * 1.35))
    return _Face(
        labels=tuple(labels),
        background=(top, bottom),
        shirt=_shade(_muted(rng), rng.uniform(0.45, 0.85)),
        skin=skin,
        hair=_jitter(rng, HAIR_RGB[hair_name], 10),
        hair_style=int(rng.integers(len(HAIR_STYLES))),
        cx=cx,
        cy=cy,
        rx=rx,
        ry=ry,
        jaw=rng.uniform(0.0, 1.0),
        scale=scale,
        brow_tilt=rng.uniform(-0.35, 0.35),
        nose_style=int(rng.integers(len(NOSE_STYLES))),
        nose_size=rng.uniform(0.8, 1.25),
        mouth_width=rng.uniform(0.10, 0.14) * scale,
        teeth=bool(rng.random() < 0.6),
        frown=rng.uniform(-0.2, 1.0),
        round_glasses=bool(rng.random() < 0.5),
        frame=_jitter(rng, (24, 22, 26), 10),
    )


def _attribute_index(name: str) -> int:
    for i, attribute in enumerate(ATTRIBUTES):
        if attribute.name == name:
            return i
    raise LatentExplorerError(f"toyfaces has no attribute {name!r}; it has {[a.name for a in ATTRIBUTES]}")


def _value_index(name: str, value: int | str) -> int:
    values = ATTRIBUTES[_attribute_index(name)].values
    if isinstance(value, str):
        if value not in values:
            raise LatentExplorerError(f"toyfaces attribute {name!r} has no value {value!r}; it has {list(values)}")
        return values.index(value)
    if not 0 <= int(value) < len(values):
        raise LatentExplorerError(f"toyfaces attribute {name!r} index {value} is outside 0..{len(values) - 1}")
    return int(value)


def _head_outline(face: _Face, grow: float = 1.0, steps: int = 48) -> np.ndarray:
    """Points (steps, 2) around the head: an ellipse on top, a jaw between round and square-ish below."""
    theta = np.linspace(0.0, 2 * np.pi, steps, endpoint=False)
    c, s = np.cos(theta), np.sin(theta)
    lower = s > 0  # PIL's y axis points down, so sin > 0 is the chin half
    # A superellipse exponent below 1 squares the jaw off; pulling x in near the chin narrows it.
    power = np.where(lower, 1.0 - 0.35 * face.jaw, 1.0)
    x = np.sign(c) * np.abs(c) ** power
    y = np.sign(s) * np.abs(s) ** power
    x = np.where(lower, x * (1.0 - 0.18 * (1 - face.jaw) * s**2), x)
    return np.stack([face.cx + face.rx * grow * x, face.cy + face.ry * grow * y], axis=1)


def _hairline(face: _Face, depth: float, teeth: int, steps: int = 24) -> np.ndarray:
    """Points from the right temple to the left one along the lower edge of the hair cap."""
    u = np.linspace(1.0, -1.0, steps)
    # The hairline sits at the temples on the sides and rises (or with bangs, falls) towards the middle.
    y = face.cy - face.ry * (0.22 + (depth - 0.22) * (1 - u**2))
    if teeth:
        y = y + face.ry * 0.09 * (np.arange(steps) % 2)  # a zigzag fringe
    x = face.cx + face.rx * 1.04 * u * np.sqrt(np.clip(1 - 0.05 * u**2, 0, 1))
    return np.stack([x, y], axis=1)


def _hair_cap(face: _Face) -> np.ndarray:
    """The hair over the top of the head: outer arc (maybe spiky) then back along the hairline."""
    style = HAIR_STYLES[face.hair_style]
    theta = np.linspace(-0.08 * np.pi, -0.92 * np.pi, 25)  # right temple over the top to the left temple
    grow = np.full(theta.shape, 1.12)
    if style == "spiky":
        grow = grow + 0.16 * (np.arange(theta.size) % 2) * (np.abs(np.sin(theta)) > 0.5)
    outer = np.stack(
        [face.cx + face.rx * grow * np.cos(theta), face.cy + face.ry * grow * np.sin(theta)],
        axis=1,
    )
    depth = {"cap": 0.62, "long": 0.58, "bangs": 0.32, "spiky": 0.6}[style]
    inner = _hairline(face, depth, teeth=12 if style == "bangs" else 0)
    return np.concatenate([outer, inner[::-1]])


def _long_hair_back(face: _Face) -> np.ndarray:
    """Hair hanging down both sides of the face to below the chin, drawn behind the head."""
    theta = np.linspace(-np.pi, 0.0, 21)  # left side over the top to the right side
    top = np.stack([face.cx + face.rx * 1.2 * np.cos(theta), face.cy + face.ry * 1.14 * np.sin(theta)], axis=1)
    w, h = face.rx * 1.2, face.ry
    # Straight-ish sides that flare a little, and a gently curved hem under the chin line.
    right = [(face.cx + w * 1.04, face.cy + 0.45 * h), (face.cx + w * 1.0, face.cy + 0.85 * h)]
    hem_u = np.linspace(0.9, -0.9, 9)
    hem = [(face.cx + w * u, face.cy + h * (0.92 - 0.08 * (1 - u**2))) for u in hem_u]
    left = [(face.cx - w * 1.0, face.cy + 0.85 * h), (face.cx - w * 1.04, face.cy + 0.45 * h)]
    return np.concatenate([top, np.array(right + hem + left)])


def _beard(face: _Face) -> np.ndarray:
    """Sideburns down round the chin, with a scooped upper edge between the nose and the mouth."""
    outline = _head_outline(face, grow=1.03, steps=64)
    lower = outline[(outline[:, 1] > face.cy + 0.24 * face.ry)]
    lower = lower[np.argsort(-lower[:, 0])]  # right cheek, round the chin, to the left cheek
    u = np.linspace(-0.9, 0.9, 15)
    inner = np.stack([face.cx + face.rx * u, face.cy + face.ry * (0.26 + 0.14 * (1 - u**2))], axis=1)
    return np.concatenate([lower, inner])


def _background(face: _Face, px: int) -> Image.Image:
    """A vertical gradient between two muted colours."""
    top, bottom = (np.array(c, dtype=np.float32) for c in face.background)
    t = np.linspace(0.0, 1.0, px, dtype=np.float32)[:, None]
    rows = (top * (1 - t) + bottom * t).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(np.broadcast_to(rows[:, None, :], (px, px, 3))))


def _draw_face(face: _Face, px: int) -> Image.Image:
    """Render the face at px x px (the supersampled size)."""
    img = _background(face, px)
    draw = ImageDraw.Draw(img)

    def xy(points: np.ndarray) -> list[tuple[float, float]]:
        return [(float(x) * px, float(y) * px) for x, y in points]

    def box(x: float, y: float, rx: float, ry: float) -> tuple[float, float, float, float]:
        return ((x - rx) * px, (y - ry) * px, (x + rx) * px, (y + ry) * px)

    _, eye_idx, smiling, glasses, beard = face.labels  # hair colour is already baked into face.hair
    line = max(1, round(0.012 * px))  # the cartoon outline, about 0.8 px at 64x64
    skin_line = _shade(face.skin, 0.55)
    hair_line = _shade(face.hair, 0.55)
    style = HAIR_STYLES[face.hair_style]
    cx, cy, rx, ry, s = face.cx, face.cy, face.rx, face.ry, face.scale

    # Shoulders and neck first so the chin overlaps them.
    draw.ellipse(box(cx, cy + ry + 0.30, 0.42, 0.22), fill=face.shirt, outline=_shade(face.shirt, 0.6), width=line)
    draw.rectangle(box(cx, cy + ry * 0.95, rx * 0.38, ry * 0.35), fill=_shade(face.skin, 0.85))
    if style == "long":
        draw.polygon(xy(_long_hair_back(face)), fill=face.hair, outline=hair_line, width=line)
    else:
        for side in (-1, 1):
            draw.ellipse(
                box(cx + side * rx, cy + 0.02, 0.045 * s, 0.065 * s), fill=face.skin, outline=skin_line, width=line
            )
    draw.polygon(xy(_head_outline(face)), fill=face.skin, outline=skin_line, width=line)

    mouth_y = cy + ry * 0.52
    if beard:
        draw.polygon(xy(_beard(face)), fill=face.hair, outline=hair_line, width=line)
        # A bare patch round the mouth so a dark mouth still shows against a dark beard.
        draw.ellipse(box(cx, mouth_y + 0.01, face.mouth_width * 1.15, 0.065 * s), fill=face.skin)

    # Eyes: big white, coloured iris disc, pupil and a highlight, so the iris colour survives 64x64.
    eye_y, eye_dx = cy - ry * 0.06, 0.115 * s
    iris = EYE_RGB[ATTRIBUTES[1].values[eye_idx]]
    for side in (-1, 1):
        ex = cx + side * eye_dx
        draw.ellipse(box(ex, eye_y, 0.066 * s, 0.058 * s), fill=(250, 250, 250), outline=(40, 30, 30), width=line)
        draw.ellipse(box(ex, eye_y + 0.004, 0.044 * s, 0.044 * s), fill=iris)
        draw.ellipse(box(ex, eye_y + 0.004, 0.017 * s, 0.017 * s), fill=(12, 12, 12))
        draw.ellipse(box(ex + 0.014 * s, eye_y - 0.012 * s, 0.008 * s, 0.008 * s), fill=(255, 255, 255))
        # Eyebrows mirror their tilt so the face looks angry/worried rather than lopsided.
        brow_y, half = eye_y - 0.105 * s, 0.055 * s
        lift = face.brow_tilt * half * side
        draw.line(
            xy(np.array([(ex - half, brow_y + lift), (ex + half, brow_y - lift)])),
            fill=_shade(face.hair, 0.7),
            width=max(1, round(0.026 * px)),
        )

    nose_y, n = cy + ry * 0.22, face.nose_size * s
    nose_colour = _shade(face.skin, 0.72)
    if NOSE_STYLES[face.nose_style] == "button":
        draw.ellipse(box(cx, nose_y, 0.026 * n, 0.02 * n), fill=nose_colour)
    elif NOSE_STYLES[face.nose_style] == "hook":
        draw.arc(box(cx, nose_y - 0.01 * n, 0.025 * n, 0.035 * n), 300, 120, fill=nose_colour, width=line * 2)
    else:
        for side in (-1, 1):
            draw.ellipse(box(cx + side * 0.016 * n, nose_y, 0.008 * n, 0.007 * n), fill=nose_colour)

    mw = face.mouth_width
    if smiling:
        # An open, upward-curving mouth: the lower half of an ellipse, dark inside, teeth along the top.
        mh = 0.085 * s
        top = mouth_y - mh * 0.45
        draw.chord(box(cx, top, mw, mh), 0, 180, fill=(96, 18, 32), outline=(60, 12, 20), width=line)
        if face.teeth:
            draw.chord(box(cx, top, mw * 0.82, mh * 0.35), 0, 180, fill=(250, 250, 245))
    else:
        # A flat or slightly down-turned line; frown > 0 bends the corners down.
        half = mw * 0.75
        bend = 0.025 * s * max(face.frown, 0.0)
        pts = [
            (cx - half, mouth_y + bend),
            (cx - half * 0.4, mouth_y),
            (cx + half * 0.4, mouth_y),
            (cx + half, mouth_y + bend),
        ]
        draw.line(xy(np.array(pts)), fill=(90, 30, 34), width=max(1, round(0.024 * px)), joint="curve")

    draw.polygon(xy(_hair_cap(face)), fill=face.hair, outline=hair_line, width=line)

    if glasses:
        frame_w = max(1, round(0.03 * px))
        grx, gry = 0.094 * s, 0.078 * s
        for side in (-1, 1):
            ex = cx + side * eye_dx
            rim = box(ex, eye_y, grx, gry)
            if face.round_glasses:
                draw.ellipse(rim, outline=face.frame, width=frame_w)
            else:
                draw.rounded_rectangle(rim, radius=0.03 * s * px, outline=face.frame, width=frame_w)
            # Arms from the rim to the side of the head.
            outer = ex + side * grx
            draw.line(
                xy(np.array([(outer, eye_y - gry * 0.3), (cx + side * rx * 0.98, eye_y - gry * 0.5)])),
                fill=face.frame,
                width=frame_w,
            )
        bridge = xy(np.array([(cx - eye_dx + grx, eye_y - gry * 0.25), (cx + eye_dx - grx, eye_y - gry * 0.25)]))
        draw.line(bridge, fill=face.frame, width=frame_w)
    return img


def render_face(
    rng: np.random.Generator, size: int = 64, overrides: dict[str, int | str] | None = None
) -> tuple[Image.Image, np.ndarray]:
    """One face and its int64 label row (one entry per ATTRIBUTES). overrides force attribute values by name."""
    check_size(size)
    face = _sample_face(rng, overrides)
    big = _draw_face(face, size * SUPERSAMPLE)
    return big.resize((size, size), Image.Resampling.BOX), np.array(face.labels, dtype=np.int64)


def check_size(size: int) -> None:
    if int(size) < MIN_SIZE:
        raise LatentExplorerError(f"toyfaces image size must be at least {MIN_SIZE} pixels, got {size}")
