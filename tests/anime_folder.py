"""A tiny anime-faces folder made on the fly, laid out as the dataset ships: images/ and a tags.csv of hair and eye
colours (for the anime dataset's reader and for finding a dataset's folder)."""

from __future__ import annotations

from PIL import Image

TAGS = ["aqua hair aqua eyes", "pink hair blue eyes", "Blonde hair red eyes", "aqua hair blue eyes",
        "pink hair aqua eyes"]


def make_anime(root, tags=TAGS, images_dir: str = "images", extra_images: int = 0) -> None:
    """One 20x20 JPEG per tag row (red channel = 40 x id), plus `extra_images` untagged ones."""
    folder = root / images_dir if images_dir else root
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(len(tags) + extra_images):
        Image.new("RGB", (20, 20), (i * 40, 80, 160)).save(folder / f"{i}.jpg", quality=95)
    (root / "tags.csv").write_text("".join(f"{i},{t}\n" for i, t in enumerate(tags)))
