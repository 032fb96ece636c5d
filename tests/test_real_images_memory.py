"""The server remembers the folder a real dataset was last read from, so a reload does not lose the originals."""

import numpy as np
import pytest
import torch

from explorer.logic import real_images as module
from training.errors import LatentExplorerError


class _Data:
    def __len__(self):
        return 4

    def batch(self, index):
        return torch.zeros(len(index), 3, 8, 8), None


@pytest.fixture
def fake_dataset(monkeypatch, tmp_path):
    """load_arguments sees which folder it is given; only tmp_path/good holds the 'dataset'."""
    import training.data.location as location

    seen = []

    def load_arguments(source, explicit, ask):
        seen.append(explicit)
        if explicit is None or not str(explicit).endswith("good"):
            raise LatentExplorerError("no celeba here")
        return {"name": "celeba", "path": explicit}

    monkeypatch.setattr(location, "load_arguments", load_arguments)
    monkeypatch.setattr(module, "load_recorded", lambda args, size: _Data())
    monkeypatch.setattr(module, "_READ_FROM", {})
    return seen, tmp_path


def test_a_folder_that_gave_the_images_is_used_again_when_nothing_is_typed(fake_dataset):
    seen, tmp = fake_dataset
    dataset = {"name": "celeba", "source": {"name": "celeba", "folder": "celeba64"}, "image_size": 8}
    with pytest.raises(LatentExplorerError):
        module.real_images(dataset, 2)  # nothing typed, nothing remembered: the page asks for the folder
    with pytest.raises(LatentExplorerError):
        module.real_images(dataset, 2, str(tmp / "wrong"))  # a wrong folder is not remembered
    assert module.remembered_data_root("celeba") is None
    assert module.real_images(dataset, 2, str(tmp / "good")).shape == (2, 3, 8, 8)
    assert module.remembered_data_root("celeba") == str(tmp / "good")
    assert module.real_images(dataset, 2, None, indices=np.array([1, 3])).shape == (2, 3, 8, 8)  # a reload
    assert seen[-1] == str(tmp / "good")
    assert module.remembered_data_root("anime") is None  # per dataset
