"""The model registry's capability records: one answer to "what can this family do"."""

import pytest

from training.errors import LatentExplorerError
from training.models import registry


def test_every_family_has_one_record_that_says_everything():
    for family in registry.FAMILIES:
        record = registry.family(family)
        caps = record.capabilities
        assert record.name == family and record.display
        assert caps.generates == (record.generator is not None)
        assert caps.trainable == (record.steps is not None) == caps.generates
        assert caps.adversarial == (record.game is not None)
        if caps.trainable:
            assert record.steps_class().__name__ in ("AdversarialSteps", "VAESteps")
            assert record.history_keys(record.config())
        if caps.adversarial:
            assert record.game_class().__name__.endswith("Game")
    assert registry.LIVE == ("dcgan", "vae", "cgan")
    assert "class_weight" in registry.family("cgan").live_knobs
    assert "class_weight" not in registry.family("dcgan").live_knobs


def test_capabilities_say_what_each_family_takes():
    assert registry.capabilities("cgan").conditional and not registry.capabilities("dcgan").conditional
    assert registry.capabilities("infogan").info_codes
    assert registry.capabilities("vae").has_encoder and "vae_map" in registry.capabilities("vae").pages
    assert "vae_map" not in registry.capabilities("dcgan").pages


def test_unknown_family_is_refused():
    with pytest.raises(LatentExplorerError, match="unknown model family"):
        registry.capabilities("stylegan")


def test_the_train_command_offers_every_trainable_family():
    from training.cli.train import TRAINABLE_FAMILIES

    assert tuple(TRAINABLE_FAMILIES) == registry.TRAINABLE == ("dcgan", "vae", "cgan", "infogan")
    assert registry.capabilities("cgan").generator_input == "labels"
    assert registry.capabilities("infogan").generator_input == "codes"
    assert registry.capabilities("dcgan").generator_input is None


def test_each_attribute_page_applies_to_the_families_it_can_drive():
    pages = {family: registry.capabilities(family).pages for family in registry.FAMILIES}
    assert [f for f in registry.FAMILIES if "conditions" in pages[f]] == ["cgan"]
    assert [f for f in registry.FAMILIES if "codes" in pages[f]] == ["infogan"]
    for page in ("directions", "sweep", "interpolate"):  # they feed the generator z alone
        assert [f for f in registry.FAMILIES if page in pages[f]] == ["dcgan", "vae"]
    assert not pages["featurenet"]
