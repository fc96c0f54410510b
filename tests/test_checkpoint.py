"""Generator checkpoints: round trip, weights_only, atomic writes, wrappers, clear errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.distributed as dist

from dpsrgan import load_generator, save_generator
from dpsrgan.checkpoint import atomic_torch_save, read_checkpoint, read_generator_checkpoint, unwrap
from dpsrgan.errors import DpsrganError
from dpsrgan.models.generator import Generator
from tests.fixtures.services import free_port


def tiny() -> Generator:
    torch.manual_seed(0)
    model = Generator(scale=2, channels=8, num_blocks=2, dilation=3)
    with torch.no_grad():  # non-default BN statistics, so buffers are checked too
        model.body[0].bn1.running_mean.uniform_()
    return model


def test_round_trip_restores_weights_config_and_provenance(tmp_path):
    model = tiny()
    path = save_generator(
        model, tmp_path / "g.pt", run_id="abc123", epochs=3, data={"md5": "00d2", "sizes": [128, 32]}
    )
    loaded = load_generator(path)
    assert loaded.config == model.config and not loaded.training
    for (key, value), (key2, value2) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert key == key2 and torch.equal(value, value2)
    lr = torch.rand(1, 3, 7, 9)
    torch.testing.assert_close(loaded(lr), model.eval()(lr), rtol=0, atol=0)
    assert read_generator_checkpoint(path)["provenance"] == {
        "run_id": "abc123",
        "epochs": 3,
        "data": {"md5": "00d2", "sizes": [128, 32]},
    }


def test_file_is_plain_data_for_weights_only_loading(tmp_path):
    path = save_generator(tiny(), tmp_path / "g.pt", note="x")
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "dpsrgan-generator" and raw["architecture"]["dilation"] == 3
    assert set(raw) == {"format", "format_version", "architecture", "state_dict", "provenance", "saved_with"}
    assert "head.0.weight" in raw["state_dict"] and type(raw["saved_with"]["torch"]) is str


def test_provenance_must_be_plain_data(tmp_path):
    with pytest.raises(TypeError, match="provenance.psnr must be plain data"):
        save_generator(tiny(), tmp_path / "g.pt", psnr=np.float64(30.1))
    with pytest.raises(TypeError, match=r"provenance.paths\[0\]"):
        save_generator(tiny(), tmp_path / "g.pt", paths=[tmp_path])
    with pytest.raises(TypeError, match="expects a dpsrgan Generator"):
        save_generator(torch.nn.Linear(2, 2), tmp_path / "g.pt")
    assert not list(tmp_path.iterdir())


def test_atomic_save_replaces_whole_files_and_leaves_no_temp(tmp_path):
    path = tmp_path / "deep" / "state.pt"
    atomic_torch_save({"step": 1}, path)
    atomic_torch_save({"step": 2}, path)
    assert torch.load(path, weights_only=True) == {"step": 2}
    with pytest.raises((pickle.PicklingError, AttributeError)):  # a lambda cannot be pickled: fails midway
        atomic_torch_save({"step": 3, "fn": lambda: None}, path)
    assert torch.load(path, weights_only=True) == {"step": 2}
    assert [p.name for p in path.parent.iterdir()] == ["state.pt"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning:torch.jit")  # raised by torch.compile's import
def test_unwrap_strips_compile_and_ddp(tmp_path):
    model = tiny()
    compiled = torch.compile(model)  # wrapping only; nothing is compiled until called
    assert unwrap(compiled) is model
    save_generator(compiled, tmp_path / "c.pt")
    assert "head.0.weight" in read_checkpoint(tmp_path / "c.pt")["state_dict"]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    try:
        wrapped = torch.compile(torch.nn.parallel.DistributedDataParallel(model))
        assert unwrap(wrapped) is model
        save_generator(wrapped, tmp_path / "d.pt")
    finally:
        dist.destroy_process_group()
    assert set(read_checkpoint(tmp_path / "d.pt")["state_dict"]) == set(model.state_dict())


def test_unreadable_and_foreign_files_are_clear_errors(tmp_path):
    path = save_generator(tiny(), tmp_path / "g.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DpsrganError, match="truncated.pt: not loadable as a weights-only PyTorch file"):
        load_generator(truncated)
    with pytest.raises(DpsrganError, match="checkpoint not found: .*missing.pt"):
        load_generator(tmp_path / "missing.pt")
    torch.save(tiny().state_dict(), tmp_path / "bare.pt")
    with pytest.raises(DpsrganError, match="bare.pt: not a DPSRGAN generator checkpoint"):
        load_generator(tmp_path / "bare.pt")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DpsrganError, match="notes.txt: not loadable"):
        read_checkpoint(tmp_path / "notes.txt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(DpsrganError, match="list.pt: expected a checkpoint dict, found a list"):
        read_checkpoint(tmp_path / "list.pt")


def test_read_checkpoint_reads_any_saved_state(tmp_path):
    """Training states (optimiser, step, RNG) go through the same atomic save / safe load."""
    state = {
        "step": 7,
        "optimizer": torch.optim.Adam(tiny().parameters()).state_dict(),
        "rng": torch.get_rng_state(),
    }
    loaded = read_checkpoint(atomic_torch_save(state, tmp_path / "state.pt"))
    assert loaded["step"] == 7 and torch.equal(loaded["rng"], state["rng"])
    with pytest.raises(DpsrganError, match="state.pt: not a DPSRGAN generator checkpoint"):
        read_generator_checkpoint(tmp_path / "state.pt")


def test_mismatched_architecture_is_a_clear_error(tmp_path):
    checkpoint = read_checkpoint(save_generator(tiny(), tmp_path / "g.pt"))
    atomic_torch_save(
        checkpoint | {"architecture": checkpoint["architecture"] | {"num_blocks": 3}}, tmp_path / "more.pt"
    )
    with pytest.raises(
        DpsrganError, match=r"more.pt: weights do not match its architecture .*num_blocks': 3.*body\.2"
    ):
        load_generator(tmp_path / "more.pt")
    atomic_torch_save(
        checkpoint | {"architecture": checkpoint["architecture"] | {"channels": 16}}, tmp_path / "wide.pt"
    )
    with pytest.raises(DpsrganError, match="wide.pt: weights do not match .*size mismatch"):
        load_generator(tmp_path / "wide.pt")
    atomic_torch_save(checkpoint | {"architecture": {"depth": 3}}, tmp_path / "odd.pt")
    with pytest.raises(
        DpsrganError, match=r"odd.pt: invalid architecture config: .*unknown keys \['depth'\]"
    ):
        load_generator(tmp_path / "odd.pt")
    atomic_torch_save(checkpoint | {"format_version": 99}, tmp_path / "future.pt")
    with pytest.raises(DpsrganError, match="future.pt: checkpoint format version 99"):
        load_generator(tmp_path / "future.pt")
