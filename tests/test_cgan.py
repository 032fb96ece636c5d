"""The conditional GAN (ACGAN-style): conditions in, classifier heads out, the class weight, and its bundle."""

import pytest
import torch
from safetensors.torch import load_file

from explorer.logic.diagnostics import first_layer_shift
from training.attributes import Attribute
from training.bundle import load_bundle
from training.data.toyfaces import ATTRIBUTES
from training.errors import LatentExplorerError
from training.loops.config import TrainConfig
from training.loops.trainer import train
from training.models import cgan, dcgan

TINY = dict(latent_dim=8, image_size=32, g_width=8, d_width=8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cgan_bundle(tiny_faces, tmp_path_factory):
    out = tmp_path_factory.mktemp("cgan") / "bundle"
    config = cgan.CGANConfig.for_dataset(tiny_faces.attributes, ["hair_colour", "smiling"], **TINY)
    return train("cgan", tiny_faces, config,
                 TrainConfig(steps=4, batch_size=16, snapshot_steps=(0,), checkpoint_every=2), out,
                 source={"name": "toyfaces", "num_images": 48, "seed": 3}, progress=False)


def full_config(**kw):
    return cgan.CGANConfig.for_dataset(ATTRIBUTES, **{**TINY, **kw})


def test_condition_encoding_one_hot_and_binary():
    config = full_config()
    assert config.condition_dim == 5 + 3 + 1 + 1 + 1  # hair one-hot, eyes one-hot, three 0/1 slots
    labels = torch.tensor([[3, 1, 1, 0, 1]])
    assert cgan.encode_conditions(labels, config.attributes()).tolist() == [[0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 1]]
    g = cgan.ConditionalGenerator(config)
    assert g.main[0].weight.shape[0] == 8 + 11


def test_generator_interface_and_default_labels():
    torch.manual_seed(0)
    g = cgan.ConditionalGenerator(full_config()).eval()
    z = torch.randn(30, 8)
    x = g(z)
    assert x.shape == (30, 3, 32, 32) and x.abs().max() <= 1
    default = g.default_labels(30)
    assert torch.equal(g(z, default), x)  # labels=None is the deterministic balanced cycle
    # Mixed radix, first attribute fastest: 5 x 3 x 2 = 30 rows hold every (hair, eyes, smiling) once.
    assert len({tuple(r[:3].tolist()) for r in default}) == 30
    assert default[:, 0].bincount().tolist() == [6] * 5
    smiling = g.condition_index("smiling")
    flipped = default.clone()
    flipped[:, smiling] = 1 - flipped[:, smiling]
    assert not torch.allclose(g(z, flipped), x)  # the condition reaches the image
    assert g.first_layer_preactivation(z).shape == (30, g.first_batchnorm.num_features, 4, 4)
    assert isinstance(g.first_batchnorm, torch.nn.BatchNorm2d)


@pytest.mark.parametrize("labels,message", [
    (torch.zeros(4, 4, dtype=torch.int64), "expected shape \\(4, 5\\)"),
    (torch.zeros(4, 5), "int64"),
    (torch.tensor([[5, 0, 0, 0, 0]] * 4), "out of range"),
    (torch.tensor([[0, 0, 0, 0, -1]] * 4), "out of range"),
])
def test_bad_labels_are_refused(labels, message):
    g = cgan.ConditionalGenerator(full_config())
    with pytest.raises(LatentExplorerError, match=message):
        g(torch.randn(4, 8), labels)


def test_config_errors():
    with pytest.raises(LatentExplorerError, match="no attribute 'hat'"):
        cgan.CGANConfig.for_dataset(ATTRIBUTES, ["hat"], **TINY)
    with pytest.raises(LatentExplorerError, match="no attributes"):
        cgan.CGANConfig.for_dataset((), **TINY)
    with pytest.raises(LatentExplorerError, match="conditions is empty"):
        cgan.CGANConfig(**TINY).validate()
    with pytest.raises(LatentExplorerError, match="two 'values'"):
        cgan.CGANConfig(**TINY, conditions=[{"name": "x", "values": ["a"]}]).validate()


def test_aux_heads_learn_to_classify(tiny_faces):
    torch.manual_seed(0)
    config = full_config()
    d = cgan.ACDiscriminator(config)
    d.apply(dcgan.weights_init)
    x, y = tiny_faces.batch(slice(0, 32))
    logit, aux = d.heads(x)
    assert logit.shape == (32,) and torch.equal(logit, d(x))
    assert [tuple(a.shape) for a in aux] == [(32, 5), (32, 3), (32,), (32,), (32,)]  # softmax vs sigmoid heads
    before = cgan.classification_accuracy(aux, y, config.attributes())
    optimiser = torch.optim.Adam(d.parameters(), lr=2e-3)
    for _ in range(20):
        loss = cgan.classification_loss(d.heads(x)[1], y, config.attributes())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    after = cgan.classification_accuracy(d.heads(x)[1], y, config.attributes())
    assert before < 0.7 and after > 0.95


@pytest.mark.parametrize("classify_fakes,d_terms", [(False, 1), (True, 2)])
def test_classification_weight_scales_both_players_losses(tiny_faces, tmp_path, monkeypatch, classify_fakes,
                                                          d_terms):
    # With the classification loss pinned to 1, both runs make identical updates, so their logged losses
    # differ by exactly the weight: D has a real term (and a fake one with classify_fakes), G one.
    monkeypatch.setattr(cgan, "classification_loss", lambda aux, labels, attributes, weights=None: torch.tensor(1.0))
    histories = {}
    for weight in (0.0, 3.0):
        out = train("cgan", tiny_faces, full_config(),
                    TrainConfig(steps=2, batch_size=16, snapshot_steps=(), class_weight=weight,
                                classify_fakes=classify_fakes),
                    tmp_path / str(weight), progress=False)
        histories[weight] = load_bundle(out).history
    for step in range(2):
        assert histories[3.0]["loss_d"][step] - histories[0.0]["loss_d"][step] == pytest.approx(3.0 * d_terms,
                                                                                                  abs=1e-4)
        assert histories[3.0]["loss_g"][step] - histories[0.0]["loss_g"][step] == pytest.approx(3.0, abs=1e-4)


def test_balancing_weights_give_every_value_the_same_total_weight():
    attributes = (Attribute("glasses", ("no", "yes")), Attribute("hair", ("black", "blond", "brown")))
    labels = torch.tensor([[0, 0]] * 15 + [[1, 1]] * 5 + [[0, 2]] * 0)  # 25% glasses; no brown hair at all
    glasses, hair = cgan.balancing_weights(labels, attributes)
    assert torch.allclose(glasses, torch.tensor([1 / (2 * 0.75), 1 / (2 * 0.25)]))
    # Each value's total weight in the labels is the same: a rare value counts as much as a common one.
    totals = torch.bincount(labels[:, 0], weights=glasses[labels[:, 0]].double())
    assert totals[0] == pytest.approx(totals[1])
    assert hair[2] == 1.0  # absent from the labels: never asked for, left at 1


def test_balanced_classification_loss_weighs_the_rare_value_up():
    attributes = (Attribute("glasses", ("no", "yes")),)
    labels = torch.tensor([[0]] * 9 + [[1]])
    logits = [torch.tensor([-3.0] * 9 + [-3.0])]  # says "no" to everyone: wrong only on the one "yes"
    plain = cgan.classification_loss(logits, labels, attributes)
    balanced = cgan.classification_loss(logits, labels, attributes, cgan.balancing_weights(labels, attributes))
    assert balanced > 4 * plain  # the missed rare value is half of the balanced loss, a tenth of the plain one
    even = torch.tensor([[0], [1]] * 5)  # already balanced labels: weights 1, the same loss
    two = [torch.randn(10)]
    assert cgan.classification_loss(two, even, attributes, cgan.balancing_weights(even, attributes)) == \
        pytest.approx(float(cgan.classification_loss(two, even, attributes)))


def test_balance_classes_is_recorded_and_changes_training(tiny_faces, tmp_path):
    runs = {}
    for balance in (False, True):
        out = train("cgan", tiny_faces, full_config(),
                    TrainConfig(steps=2, batch_size=16, snapshot_steps=(), balance_classes=balance),
                    tmp_path / str(balance), progress=False)
        runs[balance] = load_bundle(out)
    assert runs[True].config["training"]["balance_classes"] is True
    assert runs[False].config["training"]["balance_classes"] is False
    assert runs[True].history["loss_d"] != runs[False].history["loss_d"]


def test_history_and_bundle_round_trip(cgan_bundle):
    bundle = load_bundle(cgan_bundle)
    assert bundle.family == "cgan" and set(bundle.networks) == {"generator"}
    assert [a.name for a in bundle.conditions] == ["hair_colour", "smiling"]
    assert bundle.config["conditions"] == bundle.config["model"]["conditions"]
    assert set(bundle.history) == {"step", "loss_g", "loss_d", "d_real", "d_fake", "class_real", "class_fake",
                                   "acc_real", "acc_fake"}
    assert all(0 <= a <= 1 for a in bundle.history["acc_real"])
    full = load_bundle(cgan_bundle, with_training_networks=True)
    assert isinstance(full.networks["discriminator"], cgan.ACDiscriminator)
    saved = load_file(str(cgan_bundle / "weights.safetensors"))
    assert {k.split(".")[0] for k in saved} == {"generator", "discriminator"}
    for net_name, net in full.networks.items():
        for key, tensor in net.state_dict().items():
            assert torch.equal(tensor, saved[f"{net_name}.{key}"]), key
    g = bundle.generator
    z = torch.randn(10, 8)
    assert g(z).shape == (10, 3, 32, 32) and g(z, torch.tensor([[4, 1]] * 10)).shape == (10, 3, 32, 32)
    assert first_layer_shift(g, z - 10) > first_layer_shift(g, z)


def test_dataset_attributes_must_match_the_conditions(tiny_faces, tmp_path):
    config = cgan.CGANConfig(**TINY, conditions=[Attribute("hair_colour", ("black", "grey")).to_json()])
    with pytest.raises(LatentExplorerError, match="conditioned on 'hair_colour'"):
        train("cgan", tiny_faces, config, TrainConfig(steps=1, batch_size=16), tmp_path / "x", progress=False)
