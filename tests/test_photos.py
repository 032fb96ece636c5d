"""Uploaded photos: prepared exactly like a bundle's training images, and every bad upload refused in one sentence."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from training.data.prepare import Preprocessing, decode_file
from training.data.registry import load_dataset
from training.data.toyfaces import generate_toyfaces
from training.errors import LatentExplorerError
from training.untrusted.photos import (
    MAX_PHOTO_PIXELS,
    content_check,
    read_photo,
    read_photo_bytes,
    training_preprocessing,
)

PREP = Preprocessing(32, 0.0, "RGB")


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    return generate_toyfaces(4, seed=11, size=96, workers=1)[0]


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def portrait(face: np.ndarray) -> Image.Image:
    """A face on a taller-than-wide canvas, as a phone portrait photo is."""
    canvas = Image.new("RGB", (96, 130), (40, 90, 160))
    canvas.paste(Image.fromarray(face), (0, 17))
    return canvas


def test_the_crop_comes_from_the_bundles_config():
    config = {"model": {"image_size": 64, "channels": 3},
              "dataset": {"name": "lfw", "source": {"preprocessing": {"image_size": 64, "face_margin": 0.25}}}}
    prep, how = training_preprocessing(config)
    assert prep == Preprocessing(64, 0.25, "RGB")
    assert "as its config records" in how and "centre square of (1 - 2 x 0.25)" in how
    prep, how = training_preprocessing({"model": {"image_size": 32, "channels": 1},
                                        "dataset": {"name": "toyfaces", "source": {"name": "toyfaces"}}})
    assert prep == Preprocessing(32, 0.0, "L")
    assert "config records no crop; toyfaces images were made at 32x32" in how


@pytest.mark.parametrize("margin", [0.0, 0.15])
def test_a_training_file_comes_out_exactly_as_the_training_array(tmp_path, faces, margin):
    # A folder dataset of portrait PNGs and JPEGs (one big enough for JPEG draft decoding), prepared by the real
    # dataset code; each file read as a photo with the crop its source records must give the same bytes.
    folder = tmp_path / "photos"
    folder.mkdir()
    portrait(faces[0]).save(folder / "a.png")
    portrait(faces[1]).save(folder / "b.jpg", quality=90)
    portrait(faces[2]).resize((960, 1300)).save(folder / "c.jpg", quality=90)
    Image.fromarray(faces[3]).convert("L").save(folder / "d.png")
    dataset, source = load_dataset("folder", image_size=32, path=str(folder), face_margin=margin or None,
                                   progress=False)
    prep, _ = training_preprocessing({"model": {"image_size": 32, "channels": 3},
                                      "dataset": {"name": "folder", "source": source}})
    for k, name in enumerate(["a.png", "b.jpg", "c.jpg", "d.png"]):
        photo = read_photo(folder / name, prep)
        assert photo.image.dtype == np.uint8 and photo.image.shape == (32, 32, 3)
        assert np.array_equal(photo.image, dataset.images[k]), name
    assert read_photo(folder / "c.jpg", prep).decoded_size == (120, 163)  # 1/8 scale: at least twice 32 px


def test_a_big_jpeg_is_decoded_at_a_reduced_scale_like_training(tmp_path):
    gradient = np.linspace(0, 255, 4000, dtype=np.uint8)[None, :, None].repeat(3000, 0).repeat(3, 2)
    path = tmp_path / "phone.jpg"
    Image.fromarray(gradient).save(path, quality=85)
    photo = read_photo(path, PREP)
    assert np.array_equal(photo.image, decode_file(path, PREP))
    assert photo.decoded_size[0] < 4000  # draft decoding: never the full 12 megapixels


def test_greyscale_and_transparent_photos_are_converted_and_said(faces):
    grey = read_photo_bytes(encoded(Image.fromarray(faces[0]).convert("L"), "PNG"), "grey.png", PREP)
    assert np.array_equal(grey.image[..., 0], grey.image[..., 2])
    assert any("greyscale" in note for note in grey.notes)
    cut_out = Image.fromarray(faces[0]).convert("RGBA")
    alpha = np.zeros((96, 96), np.uint8)
    alpha[20:76, 20:76] = 255  # the face is opaque, the rest transparent (and black underneath)
    cut_out.putalpha(Image.fromarray(alpha))
    photo = read_photo_bytes(encoded(cut_out, "PNG"), "cut-out.png", PREP)
    assert (photo.image[:3, :3] == 255).all()  # white where it was transparent, not the black underneath
    assert any("transparent" in note for note in photo.notes)
    colour_for_grey_model = read_photo_bytes(encoded(Image.fromarray(faces[0]), "PNG"), "c.png",
                                             Preprocessing(32, 0.0, "L"))
    assert colour_for_grey_model.image.shape == (32, 32, 1)
    assert any("works in grey" in note for note in colour_for_grey_model.notes)


def test_the_exif_rotation_of_a_phone_photo_is_applied(faces):
    upright = portrait(faces[0])
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # how the sensor wrote it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    photo = read_photo_bytes(encoded(stored, "JPEG", quality=95, exif=exif), "phone.jpg", PREP)
    assert photo.decoded_size == (96, 130)
    assert any("EXIF" in note for note in photo.notes)
    expected = read_photo_bytes(encoded(upright, "JPEG", quality=95), "upright.jpg", PREP).image
    assert np.abs(photo.image.astype(int) - expected).mean() < 4


def test_a_small_photo_is_enlarged_with_a_note_and_a_tiny_one_refused(faces):
    small = read_photo_bytes(encoded(Image.fromarray(faces[0]).resize((24, 24)), "PNG"), "small.png", PREP)
    assert any("enlarged to 32" in note for note in small.notes)
    with pytest.raises(LatentExplorerError, match=r"^icon.png: the photo is only 10x10 pixels; upload one at least "
                                                  r"32 pixels"):
        read_photo_bytes(encoded(Image.fromarray(faces[0]).resize((10, 10)), "PNG"), "icon.png", PREP)


def _bad_uploads(faces) -> dict:
    from crafted_images import png_claiming

    jpeg = encoded(Image.fromarray(faces[0]), "JPEG", quality=90)
    return {
        "notes.txt": (b"my face is on the other file\n", "cannot read the photo as an image"),
        "netG.pth": (b"PK\x03\x04" + bytes(200), "cannot read the photo as an image"),
        "cut.jpg": (jpeg[: len(jpeg) // 2], "cannot read the photo as an image"),
        "empty.png": (b"", "cannot read the photo as an image"),
        "bomb.png": (png_claiming(13_000, 13_000), "the photo is 13000x13000 pixels, more than the 16 M pixels we "
                                                   "decode"),
        # Past PIL's own limit, refused by PIL at open: the same sentence with its count.
        "giant.png": (png_claiming(20_000, 20_000), "the photo has 381 M pixels, more than the 16 M pixels we decode"),
    }


@pytest.mark.parametrize("name", ["notes.txt", "netG.pth", "cut.jpg", "empty.png", "bomb.png", "giant.png"])
def test_every_bad_upload_gets_one_sentence_naming_it(faces, name):
    content, message = _bad_uploads(faces)[name]
    with pytest.raises(LatentExplorerError) as info:
        read_photo_bytes(content, name, PREP)
    text = str(info.value)
    assert text.startswith(f"{name}: ") and message in text, text
    assert text.endswith("Upload a JPEG or PNG photo of a face.")
    assert "/tmp" not in text and "latent-explorer-photo" not in text  # the private temporary name never shows


def test_an_upload_over_the_byte_limit_is_refused_before_writing(monkeypatch):
    import training.untrusted.photos as photos

    monkeypatch.setattr(photos, "MAX_PHOTO_BYTES", 1000)
    with pytest.raises(LatentExplorerError, match=r"^huge.jpg: the photo is 0 MB, more than the 0 MB"):
        read_photo_bytes(bytes(2000), "huge.jpg", PREP)
    assert MAX_PHOTO_PIXELS == 16 << 20


def test_content_check_refuses_a_flat_picture_and_warns_about_noise(faces):
    flat = read_photo_bytes(encoded(Image.new("RGB", (80, 80), (200, 180, 160)), "PNG"), "wall.png", PREP)
    with pytest.raises(LatentExplorerError, match="almost one flat colour .* no face to place"):
        content_check(flat)
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    check = content_check(read_photo_bytes(encoded(Image.fromarray(noise), "PNG"), "static.png", PREP))
    assert check.low_share < 0.3 and "looks like noise or a fine texture" in check.warning
    face = content_check(read_photo_bytes(encoded(portrait(faces[0]), "PNG"), "face.png", PREP))
    assert face.warning is None and face.low_share > 0.5 and face.spread > 0.2
