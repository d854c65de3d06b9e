"""bidirectional_gru against PyTorch's GRU on packed sequences: same outputs, same gradients."""

import pytest
import torch
from torch import nn

from speechbrain_xfer.encoders import ConvEncoder
from speechbrain_xfer.encoders.bigru import bidirectional_gru


def packed_gru(gru, x, frames):
    packed = nn.utils.rnn.pack_padded_sequence(x, frames, batch_first=True, enforce_sorted=False)
    out, _ = nn.utils.rnn.pad_packed_sequence(gru(packed)[0], batch_first=True, total_length=x.shape[1])
    return out


def outputs_and_gradients(fn, gru, x, frames, weights):
    gru.zero_grad()
    x = x.clone().requires_grad_(True)
    out = fn(gru, x, frames)
    (out * weights).sum().backward()
    return out.detach(), x.grad, {name: p.grad.clone() for name, p in gru.named_parameters()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_packed_gru_outputs_and_gradients(seed):
    torch.manual_seed(seed)
    gru = nn.GRU(6, 5, batch_first=True, bidirectional=True).double()
    x = torch.randn(4, 9, 6, dtype=torch.float64)
    frames = torch.tensor([9, 1, 5, 7])
    weights = torch.randn(4, 9, 10, dtype=torch.float64)
    ours = outputs_and_gradients(bidirectional_gru, gru, x, frames, weights)
    reference = outputs_and_gradients(packed_gru, gru, x, frames, weights)
    torch.testing.assert_close(ours[0], reference[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(ours[1], reference[1], rtol=0, atol=1e-12)
    assert ours[2].keys() == reference[2].keys() and len(ours[2]) == 8
    for name in reference[2]:
        torch.testing.assert_close(ours[2][name], reference[2][name], rtol=0, atol=1e-11, msg=name)
    assert ours[0][1, 1:].abs().max() == 0  # past the valid frame: zeros, as pad_packed_sequence gives


def test_padding_does_not_reach_valid_frames():
    torch.manual_seed(0)
    gru = nn.GRU(3, 4, batch_first=True, bidirectional=True)
    alone = torch.randn(1, 6, 3)
    padded = torch.cat([alone, 100 * torch.randn(1, 4, 3)], dim=1)
    out = bidirectional_gru(gru, padded, torch.tensor([6]))
    torch.testing.assert_close(out[:, :6], bidirectional_gru(gru, alone, torch.tensor([6])))


def test_frozen_weights_get_no_gradient_and_the_input_still_does():
    torch.manual_seed(0)
    gru = nn.GRU(3, 4, batch_first=True, bidirectional=True).requires_grad_(False)
    x = torch.randn(2, 5, 3, requires_grad=True)
    bidirectional_gru(gru, x, torch.tensor([5, 2])).sum().backward()
    assert all(p.grad is None for p in gru.parameters())
    assert x.grad is not None and x.grad[1, 2:].abs().max() == 0 and x.grad[1, :2].abs().max() > 0


def test_without_gradient_gives_what_the_training_path_gives():
    torch.manual_seed(0)
    gru = nn.GRU(3, 4, batch_first=True, bidirectional=True)
    x, frames = torch.randn(2, 5, 3), torch.tensor([5, 3])
    with torch.no_grad():
        evaluated = bidirectional_gru(gru, x, frames)
    trained = bidirectional_gru(gru, x, frames)
    assert trained.grad_fn is not None and evaluated.grad_fn is None
    torch.testing.assert_close(evaluated, trained.detach(), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "gru",
    [
        nn.GRU(3, 4, batch_first=True),
        nn.GRU(3, 4, batch_first=True, bidirectional=True, num_layers=2),
        nn.GRU(3, 4, bidirectional=True),
    ],
    ids=["one direction", "two layers", "time first"],
)
def test_refuses_other_grus(gru):
    with pytest.raises(ValueError, match="one-layer bidirectional batch-first GRU"):
        bidirectional_gru(gru, torch.randn(2, 5, 3), torch.tensor([5, 3]))


def test_conv_encoder_uses_it_with_the_same_result_as_packed_sequences(monkeypatch):
    from speechbrain_xfer.encoders import conv

    torch.manual_seed(0)
    encoder = ConvEncoder(8, channels=(6, 6), strides=(2, 1), rnn_dim=5, dropout=0.0).double().eval()
    feats = torch.randn(3, 20, 8, dtype=torch.float64)
    lengths = torch.tensor([1.0, 0.5, 0.8], dtype=torch.float64)
    calls = []

    def recorded(gru, x, frames):
        calls.append(frames.tolist())
        return bidirectional_gru(gru, x, frames)

    monkeypatch.setattr(conv, "bidirectional_gru", recorded)
    out = encoder(feats, lengths)
    assert calls == [[10, 5, 8]]
    monkeypatch.setattr(conv, "bidirectional_gru", packed_gru)
    torch.testing.assert_close(out, encoder(feats, lengths), rtol=0, atol=1e-12)
