"""The paper's baselines as pipeline arms: SRResNet is DPSRGAN's generator without its dilated
convs (published layout's parameter count), SRGAN's discriminator keeps its shape contract
(dense head sized by the HR input, published parameter count), the GAN step trains it unchanged,
an arm's params differ from DPSRGAN's only in its model, and a baseline stage that is switched
off trains nothing."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml
from torch import nn

from dpsrgan.baselines import ARM_FILE, arm_params, read_arm_record
from dpsrgan.checkpoint import load_generator, save_generator
from dpsrgan.config import load_params, parse_params
from dpsrgan.errors import DpsrganError
from dpsrgan.losses import PerceptualLoss
from dpsrgan.models.complexity import parameter_count
from dpsrgan.models.discriminator import Discriminator, build_discriminator, srgan_discriminator_parameter_count
from dpsrgan.models.generator import Generator
from dpsrgan.models.srgan_discriminator import SRGANDiscriminator
from dpsrgan.models.srresnet import srresnet, srresnet_parameter_count
from dpsrgan.models.vgg import VGG19Features
from dpsrgan.training.steps import gan_step
from pipelines.pretrain import main as pretrain_main
from pipelines.train_gan import main as train_gan_main
from tests.fixtures.dvc_project import REPO


def test_srresnet_is_the_generator_without_dilated_convs_and_matches_the_published_count():
    model = srresnet()
    assert not any(m.dilation != (1, 1) for m in model.modules() if isinstance(m, nn.Conv2d))
    assert all(block.dilated is None for block in model.body) and len(model.body) == 16
    assert parameter_count(model) == srresnet_parameter_count() == 1_550_659  # Ledig et al.'s ~1.5M
    assert parameter_count(Generator()) - parameter_count(model) == 8 * (64 * 64 * 9 + 64)
    assert srresnet_parameter_count(channels=8, num_blocks=2) == parameter_count(srresnet(channels=8, num_blocks=2))
    assert model(torch.rand(1, 3, 7, 5)).shape == (1, 3, 28, 20)


def test_srresnet_checkpoints_load_as_generators(tmp_path):
    torch.manual_seed(0)
    model = srresnet(channels=8, num_blocks=2, bicubic_skip=True).eval()
    loaded = load_generator(save_generator(model, tmp_path / "srresnet.pt"))
    assert loaded.config["dilation"] is None and loaded.config["bicubic_skip"] is True
    lr = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(loaded(lr), model(lr))


@pytest.mark.parametrize("height, width", [(96, 96), (64, 64), (128, 128), (40, 24), (33, 50)])
def test_srgan_discriminator_shape_contract(height, width):
    """Any HR size it was built for: one logit per image; dense head input 512·⌈H/16⌉·⌈W/16⌉."""
    model = SRGANDiscriminator((height, width))
    assert model.dense_inputs == 512 * math.ceil(height / 16) * math.ceil(width / 16)
    assert model.dense[1].in_features == model.dense_inputs
    assert model.blocks(torch.rand(2, 3, height, width)).flatten(1).shape == (2, model.dense_inputs)
    assert model(torch.rand(2, 3, height, width), torch.rand(2, 3, height // 4, width // 4)).shape == (2, 1)
    assert parameter_count(model) == srgan_discriminator_parameter_count(height, width)


def test_srgan_discriminator_published_layout_and_its_size_errors():
    """At SRGAN's 96² input: 18,432 dense inputs, 18.9M parameters in Dense(1024) alone."""
    model = SRGANDiscriminator(96)
    assert model.dense_inputs == 18_432
    assert parameter_count(model.dense[1]) == 18_432 * 1024 + 1024 == 18_875_392
    assert parameter_count(model) == 23_565_505
    assert [m.stride[0] for m in model.modules() if isinstance(m, nn.Conv2d)] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)] == [
        64, 64, 128, 128, 256, 256, 512, 512
    ]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 7  # none after the first conv
    with pytest.raises(DpsrganError, match="built for 96×96 HR images got 64×64"):
        model(torch.rand(1, 3, 64, 64))
    rebuilt = build_discriminator(model.config)
    assert isinstance(rebuilt, SRGANDiscriminator) and rebuilt.config == model.config
    assert isinstance(build_discriminator({"channels": 4}), Discriminator)
    with pytest.raises(DpsrganError, match="patchgan' or 'srgan'"):
        build_discriminator({"kind": "wgan"})


def test_gan_step_trains_srgan_discriminator_unconditioned():
    torch.manual_seed(0)
    generator = srresnet(channels=8, num_blocks=2)
    discriminator = SRGANDiscriminator(32, channels=4)
    perceptual = PerceptualLoss(VGG19Features("relu2_2", "random"))
    opt_g = torch.optim.Adam(generator.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=1e-3)
    hr = torch.rand(4, 3, 32, 32)
    lr = torch.nn.functional.avg_pool2d(hr, 4)
    before = [p.clone() for p in discriminator.parameters()]
    losses = [gan_step(generator, discriminator, perceptual, opt_g, opt_d, lr, hr, adv_weight=1e-3) for _ in range(3)]
    assert all(math.isfinite(v) for step in losses for v in step.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, discriminator.parameters(), strict=True))
    # Unconditioned: the LR image plays no part in its verdict.
    discriminator.eval()
    with torch.no_grad():
        torch.testing.assert_close(discriminator(hr, lr), discriminator(hr, torch.rand_like(lr)))


def test_arm_params_change_only_the_arm_model():
    params = parse_params({"baselines": {"enabled": True, "srgan_adv_weight": 0.002}, "loss": {"adv_weight": 0.03}})
    srres, srgan = arm_params(params, "srresnet"), arm_params(params, "srgan")
    assert srres.model.dilation is None and srres.model_dump(exclude={"model"}) == params.model_dump(exclude={"model"})
    assert (srgan.model.dilation, srgan.model.discriminator, srgan.loss.adv_weight) == (None, "srgan", 0.002)
    assert srgan.gan == params.gan and srgan.pretrain == params.pretrain and srgan.data == params.data
    with pytest.raises(DpsrganError, match="valid arms: srresnet, srgan"):
        arm_params(params, "esrgan")


def test_quickstart_keeps_the_baselines_off_and_the_celeba_profile_turns_them_on():
    assert load_params(REPO / "params.yaml").baselines.enabled is False
    celeba = yaml.safe_load((REPO / "conf/profile/celeba.yaml").read_text())
    assert celeba["baselines"]["enabled"] is True


def test_baseline_stages_switched_off_train_nothing(tmp_path):
    """No data, no Ray: a switched-off arm writes its 'off' record and metrics and returns."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"baselines": {"enabled": False}}))
    arm_dir = tmp_path / "models/baselines"
    common = ["--params", str(params), "--data", str(tmp_path / "missing")]
    assert pretrain_main([*common, "--arm", "srresnet", "--out", str(arm_dir / "srresnet/generator.pt"),
                          "--history", str(arm_dir / "srresnet/history.csv"),
                          "--metrics", str(tmp_path / "srresnet.json")]) == 0
    assert train_gan_main([*common, "--arm", "srgan", "--pretrained", str(arm_dir / "srresnet/generator.pt"),
                           "--out", str(arm_dir / "srgan/generator.pt"),
                           "--out-discriminator", str(arm_dir / "srgan/discriminator.pt"),
                           "--history", str(arm_dir / "srgan/history.csv"),
                           "--metrics", str(tmp_path / "srgan.json")]) == 0
    for arm in ("srresnet", "srgan"):
        assert sorted(p.name for p in (arm_dir / arm).iterdir()) == [ARM_FILE]
        assert read_arm_record(arm_dir / arm) == {
            "arm": arm, "trained": False, "reason": "off (baselines.enabled=false)"
        }
        assert json.loads((tmp_path / f"{arm}.json").read_text()) == {"trained": False}


def test_lineage_tags_of_foreach_variants_are_valid_mlflow_tag_names(tmp_path):
    """dvc.lock names a variant ``stage@item``; '@' is not allowed in an MLflow tag name."""
    from mlflow.utils.validation import _validate_tag_name

    from dpsrgan.lifecycle.registry import lineage_tags

    lock = {"schema": "2.0", "stages": {"pretrain_baseline@srresnet": {
        "outs": [{"path": "models/baselines/srresnet", "md5": "abc.dir"}]
    }}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    tags = lineage_tags(tmp_path)
    assert tags["lineage.dvc.pretrain_baseline-srresnet.models/baselines/srresnet"] == "abc.dir"
    for key in tags:
        _validate_tag_name(key)
