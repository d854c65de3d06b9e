"""ConvEncoder checkpoints carry the strides: weights of another frame rate are refused, not silently run."""

import pytest
import torch

from speechbrain_xfer.encoders import ConvEncoder, PretrainedSourceError, load_speechbrain_modules


def encoder(strides):
    torch.manual_seed(0)
    return ConvEncoder(40, channels=(8, 8), strides=strides, rnn_dim=4)


def test_a_pretrained_encoder_of_other_strides_is_refused_naming_both(tmp_path):
    torch.save(encoder((2, 1)).state_dict(), tmp_path / "encoder.ckpt")
    with pytest.raises(PretrainedSourceError) as err:
        load_speechbrain_modules({"encoder": encoder((2, 2))}, tmp_path)
    message = str(err.value)
    assert message.startswith(f"'{tmp_path / 'encoder.ckpt'}' does not fit module 'encoder'")
    assert "strides [2, 1] but this one [2, 2]" in message
    assert "set the encoder's strides to [2, 1]" in message


def test_the_same_strides_load_every_weight(tmp_path):
    source = encoder((2, 1))
    torch.nn.init.ones_(source.blocks[1].conv.weight)
    torch.save(source.state_dict(), tmp_path / "encoder.ckpt")
    target = encoder((2, 1))
    load_speechbrain_modules({"encoder": target}, tmp_path)
    assert all(torch.equal(value, target.state_dict()[key]) for key, value in source.state_dict().items())


def test_a_checkpoint_without_strides_still_loads_strictly():
    # Checkpoints written before the encoder saved its strides have no frame_strides entry.
    source = encoder((2, 1))
    state = {key: value for key, value in source.state_dict().items() if key != "frame_strides"}
    target = encoder((2, 2))
    target.load_state_dict(state, strict=True)
    assert target.frame_strides.tolist() == [2, 2]
    assert torch.equal(target.blocks[0].conv.weight, source.blocks[0].conv.weight)
