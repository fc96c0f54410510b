"""``dpsrgan info CHECKPOINT``: architecture, receptive field, parameter counts, provenance."""

from __future__ import annotations

import json

from dpsrgan import save_generator
from dpsrgan.cli import main
from dpsrgan.models.generator import Generator


def test_text_report_of_the_default_model(tmp_path, capsys):
    path = save_generator(Generator(), tmp_path / "g.pt", mlflow_run_id="0f3a", data_md5="00d2c5bc")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Generator(scale=4, channels=64, num_blocks=16, dilation=2, in_channels=3, bicubic_skip=False)" in out
    assert "112 LR px" in out and ">= 56 LR px" in out
    for number in ("1,846,083", "4,695,425", "6,541,508", "1,550,659", "38,245,569", "39,796,228", "8x8"):
        assert number in out
    assert 'mlflow_run_id: "0f3a"' in out and 'data_md5: "00d2c5bc"' in out


def test_json_report_follows_the_architecture(tmp_path, capsys):
    model = Generator(scale=2, channels=8, num_blocks=2)
    path = save_generator(model, tmp_path / "tiny.pt", stage="pretrain")
    assert main(["info", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["architecture"] == model.config
    assert report["receptive_field_lr_px"] == model.receptive_field
    assert report["parameters"]["generator"] == sum(p.numel() for p in model.parameters())
    assert report["parameters"]["srgan_discriminator"] == 38_245_569
    assert report["provenance"] == {"stage": "pretrain"}


def test_bad_file_is_one_line_and_exit_code_2(tmp_path, capsys):
    (tmp_path / "g.pt").write_bytes(b"PK\x03\x04 cut short")
    assert main(["info", str(tmp_path / "g.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dpsrgan info: error: ") and "g.pt" in err and "\n" not in err
