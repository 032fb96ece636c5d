"""Fashion-MNIST from IDX files written by the test: gzipped and plain, the usual folders, sizes and bad files."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from training.data import fashion_mnist
from training.data.fashion_mnist import CLASSES, load_fashion_mnist, read_idx
from training.errors import LatentExplorerError

N_TRAIN, N_TEST = 7, 3


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LATENT_EXPLORER_CACHE", str(tmp_path / "cache"))


def write_idx(path, array: np.ndarray, gz: bool) -> None:
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def fixture_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "train-images-idx3-ubyte": rng.integers(1, 256, size=(N_TRAIN, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(N_TRAIN, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(1, 256, size=(N_TEST, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.array([9, 8, 7], dtype=np.uint8),
    }


def make_fashion(folder, gz: bool = True) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = fixture_arrays()
    for name, array in arrays.items():
        write_idx(folder / (name + (".gz" if gz else "")), array, gz)
    return arrays


def test_gzipped_files_in_the_root(tmp_path) -> None:
    arrays = make_fashion(tmp_path)
    dataset, source = load_fashion_mnist(tmp_path, image_size=28, progress=False)
    assert dataset.images.shape == (N_TRAIN, 28, 28, 1) and dataset.channels == 1
    assert np.array_equal(dataset.images[..., 0], arrays["train-images-idx3-ubyte"])
    assert dataset.labels[:, 0].tolist() == list(range(N_TRAIN))
    assert dataset.attributes[0].name == "class" and dataset.attributes[0].values == CLASSES
    assert source["name"] == "fashion-mnist" and source["split"] == "train" and source["channels"] == 1
    assert source["root"] == str(tmp_path.resolve()) and source["attributes"] == ["class"]


def test_plain_files_in_torchvisions_layout(tmp_path) -> None:
    arrays = make_fashion(tmp_path / "FashionMNIST" / "raw", gz=False)
    dataset, source = load_fashion_mnist(tmp_path, image_size=28, split="test", progress=False)
    assert np.array_equal(dataset.images[..., 0], arrays["t10k-images-idx3-ubyte"])
    assert dataset.labels[:, 0].tolist() == [9, 8, 7]
    assert all("FashionMNIST/raw" in p for p in source["files"].values())


def test_default_locations_when_no_root_is_given(tmp_path, monkeypatch) -> None:
    make_fashion(tmp_path / "debian")
    monkeypatch.setattr(fashion_mnist, "DEFAULT_ROOTS", (tmp_path / "absent", tmp_path / "debian"))
    dataset, source = load_fashion_mnist(None, image_size=28, progress=False)
    assert len(dataset) == N_TRAIN and source["root"] == str((tmp_path / "debian").resolve())
    monkeypatch.setattr(fashion_mnist, "DEFAULT_ROOTS", (tmp_path / "absent",))
    with pytest.raises(LatentExplorerError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(None, progress=False)


def test_padding_to_32_and_resizing_to_64(tmp_path) -> None:
    arrays = make_fashion(tmp_path)
    padded, source = load_fashion_mnist(tmp_path, image_size=32, progress=False)
    assert padded.images.shape == (N_TRAIN, 32, 32, 1)
    assert np.array_equal(padded.images[:, 2:30, 2:30, 0], arrays["train-images-idx3-ubyte"])
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    assert not np.asarray(padded.images)[:, border].any()  # black frame
    assert "padded" in source["preprocessing"]["crop"]
    big, _ = load_fashion_mnist(tmp_path, image_size=64, progress=False)
    assert big.images.shape == (N_TRAIN, 64, 64, 1)
    assert not np.asarray(big.images)[:, :3].any()  # the padding scales with the picture


def test_all_split_and_num_images(tmp_path) -> None:
    make_fashion(tmp_path)
    both, _ = load_fashion_mnist(tmp_path, image_size=28, split="all", progress=False)
    assert both.labels[:, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 9, 8, 7]
    few, source = load_fashion_mnist(tmp_path, image_size=28, num_images=3, progress=False)
    assert few.labels[:, 0].tolist() == [0, 1, 2] and source["num_images"] == 3
    with pytest.raises(LatentExplorerError, match="split must be one of"):
        load_fashion_mnist(tmp_path, split="valid", progress=False)


def test_second_load_reads_the_cache(tmp_path, monkeypatch) -> None:
    make_fashion(tmp_path)
    first, source = load_fashion_mnist(tmp_path, image_size=32, progress=False)

    def no_decoding(*args, **kwargs):
        raise AssertionError("the images were decoded again")

    monkeypatch.setattr(fashion_mnist, "fit_to_size", no_decoding)
    second, again = load_fashion_mnist(tmp_path, image_size=32, progress=False)
    assert isinstance(second.images, np.memmap) and again["cache_file"] == source["cache_file"]
    assert np.array_equal(np.asarray(first.images), np.asarray(second.images))


def test_missing_folder_and_missing_file(tmp_path) -> None:
    with pytest.raises(LatentExplorerError, match="no such folder"):
        load_fashion_mnist(tmp_path / "nope", progress=False)
    make_fashion(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(LatentExplorerError, match="lacks some of"):
        load_fashion_mnist(tmp_path, progress=False)
    assert len(load_fashion_mnist(tmp_path, image_size=28, split="test", progress=False)[0]) == N_TEST


@pytest.mark.parametrize("damage,message", [
    (lambda b: b[: len(b) // 2], "damaged or truncated"),  # truncated gzip stream
    (lambda b: gzip.compress(gzip.decompress(b)[:-5]), "truncated or damaged"),  # truncated IDX payload
    (lambda b: gzip.compress(b"\x00\x00\x0d\x03" + gzip.decompress(b)[4:]), "not an IDX file of unsigned bytes"),
    (lambda b: b"", "not an IDX file"),
])
def test_damaged_idx_files(tmp_path, damage, message: str) -> None:
    make_fashion(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(LatentExplorerError, match=message) as info:
        load_fashion_mnist(tmp_path, progress=False)
    assert str(path) in str(info.value)


def test_labels_that_do_not_fit(tmp_path) -> None:
    make_fashion(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([0, 1, 12] + [0] * (N_TRAIN - 3)), gz=False)
    with pytest.raises(LatentExplorerError, match="class 12"):
        load_fashion_mnist(tmp_path, progress=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(N_TRAIN + 1), gz=False)
    with pytest.raises(LatentExplorerError, match="do not belong together"):
        load_fashion_mnist(tmp_path, progress=False)


def test_read_idx_plain_and_gzip_agree(tmp_path) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", array, gz=False)
    write_idx(tmp_path / "b.gz", array, gz=True)
    assert np.array_equal(read_idx(tmp_path / "a"), array) and np.array_equal(read_idx(tmp_path / "b.gz"), array)


def test_unknown_attribute(tmp_path) -> None:
    make_fashion(tmp_path)
    with pytest.raises(LatentExplorerError, match="no attribute 'label'"):
        load_fashion_mnist(tmp_path, attributes=["label"], progress=False)
