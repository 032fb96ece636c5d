"""Where the app's networks run and in what arithmetic: LATENT_EXPLORER_DEVICE and LATENT_EXPLORER_PRECISION, read
once, refused in one sentence when wrong; a prepared network takes and returns CPU float32 tensors on any device."""

import pytest
import torch

from explorer.core import inference
from explorer.logic.diagnostics import first_layer_shift
from training.bundle import load_bundle
from training.errors import LatentExplorerError
from training.latent import sampling
from training.latent.priors import LatentDistribution, sample_latents

pytestmark = pytest.mark.usefixtures("one_torch_thread")
NO_GPU = "no CUDA GPU on this machine: the device checks run where torch sees one"


def test_the_device_is_cuda_only_where_torch_sees_a_gpu_unless_set():
    assert inference.device_setting({}, cuda_available=False) == torch.device("cpu")
    assert inference.device_setting({}, cuda_available=True) == torch.device("cuda")
    assert inference.device_setting({"LATENT_EXPLORER_DEVICE": "auto"}, cuda_available=True).type == "cuda"
    assert inference.device_setting({"LATENT_EXPLORER_DEVICE": " CPU "}, cuda_available=True).type == "cpu"
    assert inference.device_setting({"LATENT_EXPLORER_DEVICE": "cuda"}, cuda_available=True).type == "cuda"


@pytest.mark.parametrize("value, said", [("gpu", "'gpu' is not one of auto, cpu, cuda"),
                                         ("cuda", "torch sees no CUDA GPU on this machine")])
def test_a_device_that_cannot_be_used_is_refused_in_one_sentence(value, said):
    with pytest.raises(LatentExplorerError, match=said) as refused:
        inference.device_setting({"LATENT_EXPLORER_DEVICE": value}, cuda_available=False)
    message = str(refused.value)
    assert message.startswith("LATENT_EXPLORER_DEVICE=") and message.count(". ") == 0 and message.endswith(".")


def test_precision_is_fp32_unless_set_and_a_bad_value_is_refused():
    assert inference.precision_setting({}) == "fp32"
    assert inference.precision_setting({"LATENT_EXPLORER_PRECISION": "bf16"}) == "bf16"
    assert inference.precision_setting({"LATENT_EXPLORER_PRECISION": "Auto"}) == "auto"
    with pytest.raises(LatentExplorerError, match="'fp16' is not one of fp32, bf16, auto"):
        inference.precision_setting({"LATENT_EXPLORER_PRECISION": "fp16"})


def test_bf16_arithmetic_is_read_from_the_cpu_flags():
    assert inference.cpu_has_bf16("processor: 0\nflags\t: fpu sse avx512f avx512_bf16 amx_tile\n")
    assert inference.cpu_has_bf16("flags : fpu amx_bf16 amx_tile\n")
    assert not inference.cpu_has_bf16("flags : fpu sse avx2 avx512f\n")
    assert not inference.cpu_has_bf16("")


def test_auto_takes_bf16_only_with_bf16_arithmetic_and_a_measured_gain(tiny_bundle, monkeypatch):
    bundle, cpu = load_bundle(tiny_bundle), torch.device("cpu")
    monkeypatch.setattr(inference, "cpu_has_bf16", lambda: False)
    assert inference.generator_precision(bundle, cpu, "auto") == "fp32"
    monkeypatch.setattr(inference, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(inference, "bf16_is_faster", lambda b: (False, 0.9))
    assert inference.generator_precision(bundle, cpu, "auto") == "fp32"  # never silently slower
    monkeypatch.setattr(inference, "bf16_is_faster", lambda b: (True, 2.0))
    assert inference.generator_precision(bundle, cpu, "auto") == "bf16"
    assert inference.generator_precision(bundle, torch.device("cuda"), "auto") == "fp32"
    assert inference.generator_precision(bundle, cpu, "bf16") == "bf16"  # forced, whatever the CPU


def test_the_measurement_compares_the_two_precisions_on_the_model(tiny_bundle):
    faster, speedup = inference.bf16_is_faster(load_bundle(tiny_bundle), rows=4, rounds=1)
    assert speedup > 0 and faster == (speedup >= inference.BF16_MIN_SPEEDUP)


def test_fp32_on_the_cpu_leaves_the_networks_as_loaded(tiny_bundle, monkeypatch):
    monkeypatch.setattr(inference, "device", lambda: torch.device("cpu"))
    bundle = inference.prepare(load_bundle(tiny_bundle))
    assert all(name not in vars(net) for net in bundle.networks.values() for name in inference.ENTRY_POINTS)
    weights = [p for p in bundle.generator.parameters() if p.dim() == 4]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)


def test_a_bf16_generator_returns_float32_images_close_to_fp32(tiny_bundle, monkeypatch):
    reference = load_bundle(tiny_bundle)
    monkeypatch.setattr(inference, "device", lambda: torch.device("cpu"))
    monkeypatch.setenv("LATENT_EXPLORER_PRECISION", "bf16")
    bundle = inference.prepare(load_bundle(tiny_bundle))
    assert "forward" in vars(bundle.generator)
    dist = LatentDistribution.normal(0.0, 1.0)
    ours, theirs = sampling.sample(bundle, dist, 16, 0).images, sampling.sample(reference, dist, 16, 0).images
    assert ours.dtype == torch.float32 and ours.shape == theirs.shape
    levels = ((ours.clamp(-1, 1) - theirs.clamp(-1, 1)).abs() * 127.5).max()
    assert 0 < levels < 16  # bf16 arithmetic: different pixels, but close ones
    z = sample_latents(dist, 8, bundle.latent_dim, seed=1)
    # The diagnostics' first layer stays in float32: the same number as the unprepared generator's.
    assert first_layer_shift(bundle.generator, z) == pytest.approx(first_layer_shift(reference.generator, z))


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
def test_on_a_gpu_the_pages_work_gets_cpu_float32_tensors_back(tiny_bundle, monkeypatch):
    monkeypatch.setattr(inference, "device", lambda: torch.device("cuda"))
    reference, bundle = load_bundle(tiny_bundle), inference.prepare(load_bundle(tiny_bundle))
    assert next(bundle.generator.parameters()).is_cuda
    dist = LatentDistribution.normal(-10.0, 1.0)
    ours, theirs = sampling.sample(bundle, dist, 32, 0).images, sampling.sample(reference, dist, 32, 0).images
    assert ours.device.type == "cpu" and ours.dtype == torch.float32
    assert torch.allclose(ours, theirs, atol=1e-3)
    z = sample_latents(dist, 8, bundle.latent_dim, seed=1)
    assert first_layer_shift(bundle.generator, z) == pytest.approx(first_layer_shift(reference.generator, z), rel=1e-4)
