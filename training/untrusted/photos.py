"""A photo someone uploads becomes a model input made exactly as the bundle's training images were made.

The crop and resize come from the bundle's config (`dataset.source.preprocessing`, written when the dataset was
prepared) and run through the same function as training (`prepare.preprocess_image`), JPEG draft decoding
included, so a training image's own file comes out bit for bit as the training array. Only what a phone or an
editor adds and no training file has is undone first: the EXIF rotation is applied, 16-bit grey is scaled to 8
bits, and transparent parts are laid on white.

Reading goes through `untrusted.open_image`: a regular file of at most MAX_PHOTO_BYTES, read as a JPEG, PNG or
WebP whatever its name says, and what it declares checked before anything is decoded: its pixel count, and for a
JPEG the memory and work its frame and scans ask for (`decode_cost`). The steps here keep at most two copies of
the picture alive. Every refusal is a LatentExplorerError that names the upload and says what to do.

There is no face detector here (none ships with our dependencies, and the feature networks are attribute
classifiers trained on faces only, which score a noise image like a face). `content_check` refuses an image with
(almost) no content, a flat colour, and warns about one that is mostly pixel-level noise or fine texture; whether
the rest looks like a face to the model is what the pages show with the model's own numbers (reconstruction error,
inversion distance, how typical the code is).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from training.data.base import images_to_tensor
from training.data.prepare import Preprocessing, preprocess_image
from training.errors import LatentExplorerError
from training.untrusted.checks import open_image

# Phone photos are 12 to 50 megapixels; big JPEGs decode at a reduced scale (see open_image), so this caps PNGs,
# which cannot, at 48 MB of RGB.
MAX_PHOTO_PIXELS = 16 << 20
MAX_PHOTO_BYTES = 50 << 20  # the server's upload limit (.streamlit/config.toml)
MIN_PHOTO_SIDE = 16
# What PIL may open an upload as, whatever its name says: what phones, cameras and browsers save photos as ("JPEG"
# includes MPO, a phone's JPEG with a second picture in it). Each is decoded in C within limits checked first
# (decode_cost). PIL's BMP run-length and GIF block readers step through a file in Python (a crafted 8 MB BMP or
# 20 MB GIF takes 6 to 8 s), and a TIFF may hold JPEG data that libtiff decodes where those checks cannot see it:
# all three are refused, as are the formats PIL knows beyond these (EPS even runs Ghostscript).
PHOTO_FORMATS = ("JPEG", "PNG", "WEBP")
# The checks of content_check, in [-1, 1] pixel units. Calibrated on 2,000 CelebA, 2,000 anime and 1,000 toyfaces
# training-size images: their per-channel spatial std is at least 0.21 and at least 60% of their variance survives
# a 4x4 average pool; uniform noise keeps 6% and a flat colour has std 0.
FLAT_STD = 0.04  # about 5 grey levels of 255
NOISE_LOW_SHARE = 0.3
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class PreparedPhoto:
    """An upload as the model sees it."""

    name: str
    image: np.ndarray  # uint8 (S, S, C), exactly as a training image of this bundle was stored
    decoded_size: tuple[int, int]  # (width, height) upright; a big JPEG is decoded at 1/2 to 1/8 scale
    notes: tuple[str, ...]  # what was done beyond the training crop (rotation, transparency, grey, enlarged)

    @property
    def tensor(self) -> torch.Tensor:
        """(1, C, S, S) float in [-1, 1], the model's input range."""
        return images_to_tensor(self.image[None])


def training_preprocessing(config: dict) -> tuple[Preprocessing, str]:
    """The bundle's crop and resize, and words for "each photo is cropped and resized ..." saying where from."""
    model = config.get("model", {})
    dataset = config.get("dataset", {})
    size = int(model.get("image_size") or dataset.get("image_size") or 64)
    mode = "L" if int(model.get("channels") or dataset.get("channels") or 3) == 1 else "RGB"
    recorded = (dataset.get("source") or {}).get("preprocessing")
    if isinstance(recorded, dict) and int(recorded.get("image_size", size)) == size:
        margin = float(recorded.get("face_margin") or 0.0)
        prep = Preprocessing(size, margin, mode)
        return prep, f"like this model's training images, as its config records: {prep.to_json()['crop']}"
    prep = Preprocessing(size, 0.0, mode)
    name = dataset.get("name") or "its dataset"
    return prep, (f"the DCGAN tutorial's way (this model's config records no crop; {name} images were made at "
                  f"{size}x{size}): {prep.to_json()['crop']}")


GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")  # PIL's modes for a 16-bit grey PNG
# EXIF orientations 2..8 mirror or turn the picture (1 is upright); any other value means nothing and is ignored.
TURNING_ORIENTATIONS = range(2, 9)


def _eight_bit(img):
    """A 16-bit grey picture scaled to 8 bits (0..65535 onto 0..255; PIL's convert("L") would clip at 255)."""
    from PIL import Image

    if img.mode not in SIXTEEN_BIT_MODES:
        return img
    levels = np.asarray(img)
    nearest = ((np.arange(65536) + 128) // 257).astype(np.uint8)  # round(v / 257): 65535 is white, 257 is 1
    grey = np.empty(levels.shape, np.uint8)
    flat_levels, flat_grey = levels.reshape(-1), grey.reshape(-1)
    for start in range(0, flat_levels.size, 1 << 20):  # a million at a time: an index array costs 8 bytes each
        flat_grey[start:start + (1 << 20)] = nearest[np.clip(flat_levels[start:start + (1 << 20)], 0, 65535)]
    return Image.fromarray(grey, "L")


def _replaced(old, new):
    """`new`, with `old`'s pixels freed at once when it is another picture: a 16-megapixel RGBA photo holds 64 MB,
    and each step below would otherwise keep one more copy alive until the photo is read."""
    if new is not old:
        old.close()
    return new


def _upright_on_white(img, prep: Preprocessing, notes: list[str]):
    """The EXIF rotation applied, 16-bit grey made 8-bit, transparency laid on white, and the picture in the
    model's mode (as preprocess_image would convert it); what that changed is said in notes."""
    from PIL import Image, ImageOps

    if img.getexif().get(0x0112, 1) in TURNING_ORIENTATIONS:
        notes.append("turned upright as its EXIF orientation says")
        img = _replaced(img, ImageOps.exif_transpose(img))
    img = _replaced(img, _eight_bit(img))
    grey = img.mode in GREY_MODES or (img.mode == "P" and _palette_is_grey(img))
    if grey and prep.mode == "RGB":
        notes.append("greyscale: the colour model sees it as a grey picture")
    elif not grey and prep.mode == "L":
        notes.append("in colour: this model works in grey, so the colours are dropped as in its training images")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img if img.mode == "RGBA" else _replaced(img, img.convert("RGBA"))
        img = Image.new("RGB", rgba.size, WHITE)
        img.paste(rgba, mask=rgba)  # its alpha band is the mask
        rgba.close()
        notes.append("had transparent parts: they are laid on white")
    return img if img.mode == prep.mode else _replaced(img, img.convert(prep.mode))


def _palette_is_grey(img) -> bool:
    """Whether every colour a palette picture uses is a grey, read from the palette (no converted copy)."""
    palette = img.getpalette("RGB") or []
    used = [index for _, index in img.getcolors(256) or []]
    return all(palette[3 * i] == palette[3 * i + 1] == palette[3 * i + 2] for i in used if 3 * i + 2 < len(palette))


def _with_hint(message: str) -> str:
    return f"{message.rstrip('.')}. Upload a JPEG or PNG photo of a face."


def read_photo(file: str | Path, prep: Preprocessing, name: str | None = None) -> PreparedPhoto:
    """A photo file cropped and resized like the bundle's training images (see training_preprocessing)."""
    file = Path(file)
    name = name or file.name
    notes: list[str] = []
    try:
        with open_image(file, "photo", MAX_PHOTO_PIXELS, MAX_PHOTO_BYTES, draft=(prep.mode, prep.draft_size),
                        formats=PHOTO_FORMATS) as img:
            img.load()  # decode fully here, so a truncated file fails inside the reader's checks
            img = _upright_on_white(img, prep, notes)
            width, height = img.size
            if min(width, height) < MIN_PHOTO_SIDE:
                raise LatentExplorerError(f"{file}: the photo is only {width}x{height} pixels; upload one at least "
                                          f"{prep.size} pixels on its shorter side")
            array = np.array(preprocess_image(img, prep))  # writable, so torch can wrap it without a copy warning
    except LatentExplorerError as exc:
        raise LatentExplorerError(_with_hint(str(exc).replace(str(file), name))) from None
    if min(width, height) < prep.size:
        notes.append(f"only {min(width, height)} pixels on its shorter side: enlarged to {prep.size}, so it is "
                     "blurrier than the training images")
    return PreparedPhoto(name, array, (width, height), tuple(notes))


def read_photo_bytes(data: bytes, name: str, prep: Preprocessing) -> PreparedPhoto:
    """An upload held in memory, read through the same file checks under a private temporary name."""
    if len(data) > MAX_PHOTO_BYTES:
        raise LatentExplorerError(f"{name}: the photo is {len(data) / 2**20:.0f} MB, more than the "
                                  f"{MAX_PHOTO_BYTES / 2**20:.0f} MB we read. Upload a smaller JPEG or PNG.")
    with tempfile.TemporaryDirectory(prefix="latent-explorer-photo-") as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        return read_photo(path, prep, name)


@dataclass(frozen=True)
class ContentCheck:
    """The two numbers of content_check and its verdict."""

    spread: float  # mean per-channel standard deviation of the pixels, in [-1, 1] units
    low_share: float  # share of the pixel variance left after a 4x4 average pool (photos: mostly coarse shapes)
    warning: str | None


def content_check(photo: PreparedPhoto) -> ContentCheck:
    """Refuse a photo with (almost) nothing in it; warn about one that is mostly noise or fine texture."""
    x = photo.tensor.double()
    spread = float(x.std(dim=(2, 3), unbiased=False).mean())
    if spread < FLAT_STD:
        raise LatentExplorerError(f"{photo.name}: after the crop the picture is almost one flat colour (pixel spread "
                                  f"{spread:.3f}; photos of faces have 0.2 or more), so there is no face to place. "
                                  "Upload a photo in which the face fills most of the frame.")
    centred = x - x.mean(dim=(2, 3), keepdim=True)
    coarse = F.avg_pool2d(centred, 4) if min(x.shape[-2:]) >= 8 else centred
    low_share = float(coarse.pow(2).mean() / centred.pow(2).mean().clamp_min(1e-12))
    warning = None
    if low_share < NOISE_LOW_SHARE:
        warning = (f"{photo.name} looks like noise or a fine texture, not a photo: only {low_share:.0%} of its "
                   "variation is in shapes larger than 4 pixels (face photos: 60% or more). The model will still "
                   "try, but what it finds will not be a face.")
    return ContentCheck(spread, low_share, warning)
