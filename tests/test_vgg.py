"""VGG19 feature extractor: torchvision-compatible keys, and every way its weights arrive.

The real file cannot be downloaded here, so a fake with torchvision's keys and shapes (random
tensors) stands in, named ``vgg19-<first 8 hex of its SHA-256>.pth`` like torchvision's. The
"official URL" is a local HTTP server: only the URL constant is patched to point at it.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import logging
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from dpsrgan.errors import DpsrganError
from dpsrgan.models import vgg
from dpsrgan.models.vgg import CONV_SHAPES, VGG19Features, load_vgg19_state_dict
from tests.fixtures.services import free_port


@dataclass(frozen=True)
class FakeWeights:
    path: Path  # .../vgg19-<hash8>.pth
    state: dict[str, torch.Tensor]


@pytest.fixture(scope="module")
def fake_vgg(tmp_path_factory) -> FakeWeights:
    """A torchvision-format VGG19 file (all 16 convs + one classifier key) with random weights."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for index, (out_channels, in_channels) in CONV_SHAPES.items():
        state[f"features.{index}.weight"] = 0.05 * torch.randn(
            out_channels, in_channels, 3, 3, generator=generator
        )
        state[f"features.{index}.bias"] = 0.01 * torch.randn(out_channels, generator=generator)
    state["classifier.6.bias"] = torch.zeros(1000)  # torchvision's file also holds the classifier
    folder = tmp_path_factory.mktemp("vgg")
    draft = folder / "draft.pth"
    torch.save(state, draft)
    digest = hashlib.sha256(draft.read_bytes()).hexdigest()
    path = draft.rename(folder / f"vgg19-{digest[:8]}.pth")
    return FakeWeights(path, state)


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """An empty torch.hub cache: torch.hub.get_dir() == TORCH_HOME/hub."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    assert Path(torch.hub.get_dir()) == tmp_path / "torch-home" / "hub"
    return tmp_path / "torch-home" / "hub" / "checkpoints"


@pytest.fixture
def http_server(tmp_path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on loopback serving a fresh directory: (base URL, directory)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def assert_loaded(model: VGG19Features, fake: FakeWeights) -> None:
    for key, value in model.state_dict().items():
        assert torch.equal(value, fake.state[key]), key


def test_local_file_loads_into_torchvision_indices(fake_vgg):
    model = VGG19Features("conv5_4", weights=str(fake_vgg.path))
    assert set(model.state_dict()) == {key for key in fake_vgg.state if key.startswith("features.")}
    assert len(model.features) == 35  # up to conv5_4 (index 34), before its ReLU
    assert_loaded(model, fake_vgg)
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 512, 2, 2)


def test_only_layers_up_to_the_requested_one_are_built(fake_vgg):
    model = VGG19Features("relu2_2", weights=str(fake_vgg.path))
    assert len(model.features) == 9
    assert sorted(model.state_dict()) == sorted(
        f"features.{i}.{p}" for i in (0, 2, 5, 7) for p in ("weight", "bias")
    )


def test_imagenet_normalisation_happens_inside(fake_vgg):
    model = VGG19Features("conv1_1", weights=str(fake_vgg.path))
    image = torch.rand(2, 3, 8, 8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = F.conv2d(
        (image - mean) / std,
        fake_vgg.state["features.0.weight"],
        fake_vgg.state["features.0.bias"],
        padding=1,
    )
    torch.testing.assert_close(model(image), expected)


def test_frozen_and_stays_in_eval_mode(fake_vgg):
    model = VGG19Features("conv2_1", weights=str(fake_vgg.path))
    parent = torch.nn.Sequential(model).train()
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    image = torch.rand(1, 3, 16, 16, requires_grad=True)
    model(image).sum().backward()
    assert image.grad is not None and all(p.grad is None for p in model.parameters())
    assert parent.training


def test_torch_hub_cache_is_used_without_downloading(fake_vgg, torch_home, monkeypatch):
    torch_home.mkdir(parents=True)
    shutil.copy(fake_vgg.path, torch_home / fake_vgg.path.name)
    # Nothing listens on this port: a download attempt would fail.
    monkeypatch.setattr(vgg, "VGG19_URL", f"http://127.0.0.1:{free_port()}/{fake_vgg.path.name}")
    assert_loaded(VGG19Features(weights="torch-hub"), fake_vgg)


def test_torch_hub_checks_the_official_file_name_hash(fake_vgg, torch_home):
    torch_home.mkdir(parents=True)
    shutil.copy(fake_vgg.path, torch_home / "vgg19-dcbb9e9d.pth")  # the official name, wrong bytes
    with pytest.raises(DpsrganError, match=r"vgg19-dcbb9e9d\.pth: SHA-256 starts with .* promises dcbb9e9d"):
        VGG19Features(weights="torch-hub")


def test_torch_hub_downloads_from_the_url_into_the_cache(fake_vgg, torch_home, http_server, monkeypatch):
    base, root = http_server
    shutil.copy(fake_vgg.path, root / fake_vgg.path.name)
    monkeypatch.setattr(vgg, "VGG19_URL", f"{base}/{fake_vgg.path.name}")
    assert_loaded(VGG19Features(weights="torch-hub"), fake_vgg)
    assert (torch_home / fake_vgg.path.name).read_bytes() == fake_vgg.path.read_bytes()


def test_download_with_wrong_hash_is_rejected_and_not_cached(fake_vgg, torch_home, http_server, monkeypatch):
    base, root = http_server
    shutil.copy(fake_vgg.path, root / "vgg19-00000000.pth")
    monkeypatch.setattr(vgg, "VGG19_URL", f"{base}/vgg19-00000000.pth")
    with pytest.raises(DpsrganError, match="is corrupt"):
        load_vgg19_state_dict("torch-hub")
    assert not (torch_home / "vgg19-00000000.pth").exists()


def test_unreachable_url_is_a_clear_error(torch_home, monkeypatch):
    monkeypatch.setattr(vgg, "VGG19_URL", f"http://127.0.0.1:{free_port()}/vgg19-dcbb9e9d.pth")
    with pytest.raises(
        DpsrganError,
        match=r"could not download VGG19 weights .* put torchvision's file at .*vgg19-dcbb9e9d\.pth",
    ):
        load_vgg19_state_dict("torch-hub")


@pytest.mark.slow
def test_s3_uri_with_endpoint(fake_vgg, s3_server):
    client = s3_server.client()
    client.create_bucket(Bucket="vgg-weights")
    client.upload_file(str(fake_vgg.path), "vgg-weights", f"imagenet/{fake_vgg.path.name}")
    uri = f"s3://vgg-weights/imagenet/{fake_vgg.path.name}"
    assert_loaded(VGG19Features(weights=uri, s3_endpoint_url=s3_server.endpoint_url), fake_vgg)
    with pytest.raises(
        DpsrganError, match="could not download VGG19 weights s3://vgg-weights/imagenet/missing.pth"
    ):
        load_vgg19_state_dict("s3://vgg-weights/imagenet/missing.pth", s3_server.endpoint_url)
    client.upload_file(str(fake_vgg.path), "vgg-weights", "vgg19-12345678.pth")
    with pytest.raises(DpsrganError, match="s3://vgg-weights/vgg19-12345678.pth: SHA-256"):
        load_vgg19_state_dict("s3://vgg-weights/vgg19-12345678.pth", s3_server.endpoint_url)


def test_bad_local_files_are_clear_errors(fake_vgg, tmp_path):
    with pytest.raises(DpsrganError, match="VGG19 weights file not found: .*nowhere.pth"):
        VGG19Features(weights=str(tmp_path / "nowhere.pth"))
    renamed = tmp_path / "vgg19-deadbeef.pth"
    shutil.copy(fake_vgg.path, renamed)
    with pytest.raises(DpsrganError, match="promises deadbeef"):
        load_vgg19_state_dict(str(renamed))
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(fake_vgg.path.read_bytes()[:100_000])
    with pytest.raises(DpsrganError, match="truncated.pth: not loadable"):
        load_vgg19_state_dict(str(truncated))
    partial = tmp_path / "vgg16ish.pth"
    torch.save({key: value for key, value in fake_vgg.state.items() if key != "features.34.weight"}, partial)
    with pytest.raises(
        DpsrganError, match=r"features\.34\.weight should have shape \(512, 512, 3, 3\), found None"
    ):
        load_vgg19_state_dict(str(partial))
    not_a_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_a_dict)
    with pytest.raises(DpsrganError, match="list.pth: expected a checkpoint dict, found a list"):
        load_vgg19_state_dict(str(not_a_dict))


def test_random_weights_only_on_request_with_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="dpsrgan.models.vgg"):
        model = VGG19Features("conv1_2", weights="random")
    assert "RANDOM weights" in caplog.text
    assert model(torch.rand(1, 3, 8, 8)).shape == (1, 64, 8, 8)


def test_unknown_layer_names_the_valid_forms():
    with pytest.raises(DpsrganError, match="unknown VGG19 layer 'conv6_1'.*conv5_4"):
        VGG19Features("conv6_1", weights="random")


def test_random_vgg_is_seeded_and_keeps_feature_scale():
    """Smoke runs' random VGG: the same weights every time, and conv5_4 features that have not
    vanished (PyTorch's default init leaves them ~1e-7, which zeroes the perceptual loss)."""
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    first, second = VGG19Features("conv5_4", "random"), VGG19Features("conv5_4", "random")
    features = first(image)
    assert torch.equal(features, second(image))
    assert features.abs().mean() > 1e-2
