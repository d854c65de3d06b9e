"""A malformed pretrained checkpoint is an error naming the file and the module, not a silent random start."""

import logging

import pytest
import torch

from speechbrain_xfer.pretrained import PretrainedSourceError, load_speechbrain_modules


def tiny(width=8):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, width), torch.nn.ReLU(), torch.nn.Linear(width, 2))


def write_truncated(path):
    torch.save(tiny().state_dict(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (
            lambda p: p.write_bytes(b"<html>404 Not Found</html>"),
            "cannot read '{path}', the checkpoint of module 'encoder'",
        ),
        (lambda p: p.write_bytes(b""), "cannot read '{path}', the checkpoint of module 'encoder'"),
        (write_truncated, "cannot read '{path}', the checkpoint of module 'encoder'"),
        (lambda p: torch.save(torch.zeros(3), p), "'{path}' (the checkpoint of module 'encoder') holds a Tensor"),
        (lambda p: torch.save(tiny(width=16).state_dict(), p), "'{path}' does not fit module 'encoder': "),
        (lambda p: torch.save(torch.nn.GRU(4, 8).state_dict(), p), "'{path}' holds none of the 4 tensors of module"),
    ],
    ids=["garbage", "empty", "truncated", "not-a-state-dict", "other-shapes", "other-keys"],
)
def test_a_malformed_checkpoint_names_the_file_and_the_module(tmp_path, write, message):
    path = tmp_path / "encoder.ckpt"
    write(path)
    with pytest.raises(PretrainedSourceError) as err:
        load_speechbrain_modules({"encoder": tiny()}, tmp_path)
    assert str(err.value).startswith(message.format(path=path))
    assert err.value.source == str(path)


def test_a_checkpoint_with_less_than_half_the_weights_is_refused(tmp_path):
    state = tiny(width=64).state_dict()
    torch.save({k: v for k, v in state.items() if k.startswith("2.")}, tmp_path / "encoder.ckpt")  # 130 of 450
    with pytest.raises(PretrainedSourceError, match=r"holds 2 of the 4 tensors of module 'encoder' .* 29% of the"):
        load_speechbrain_modules({"encoder": tiny(width=64)}, tmp_path)


def test_a_checkpoint_with_most_weights_loads_them_and_warns_about_the_rest(tmp_path, caplog):
    source = tiny(width=64)
    torch.nn.init.ones_(source[0].weight)
    state = source.state_dict()
    torch.save({k: v for k, v in state.items() if k != "2.bias"}, tmp_path / "encoder.ckpt")
    module = tiny(width=64)
    with caplog.at_level(logging.WARNING):
        load_speechbrain_modules({"encoder": module}, tmp_path)
    assert torch.equal(module[0].weight, torch.ones(64, 4))
    assert "module 'encoder': 1 tensors not in the checkpoint keep their values (2.bias)" in caplog.text
