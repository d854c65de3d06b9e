import pytest
import torch
from torch import nn

from speechbrain_xfer.regularization import DELTA


def _encoder():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.5), nn.Linear(6, 3))


def test_zero_for_the_pretrained_model_and_positive_after_a_change():
    encoder = _encoder().eval()
    reg = DELTA(encoder, alpha=0.1)
    x = torch.randn(2, 7, 4)
    assert reg(encoder(x), x).item() == 0.0
    with torch.no_grad():
        encoder[2].weight.add_(0.3)
    assert reg(encoder(x), x).item() > 0.0


def test_value_matches_hand_computation_and_precomputed_reference():
    encoder = _encoder().eval()
    reg = DELTA(encoder, alpha=0.2)
    x = torch.randn(2, 5, 4)
    reference = encoder(x).detach()
    with torch.no_grad():
        encoder[2].bias.add_(torch.tensor([1.0, -2.0, 0.5]))
    features = encoder(x)
    expected = 0.2 * ((features - reference) ** 2).sum(-1).mean()
    torch.testing.assert_close(reg(features, x), expected)
    torch.testing.assert_close(reg(features, reference_features=reference), expected)
    pooled = 0.2 * ((features[:, 0] - reference[:, 0]) ** 2).sum(-1).mean()
    torch.testing.assert_close(reg(features[:, 0], reference_features=reference[:, 0]), pooled)
    with pytest.raises(ValueError):
        reg(features)
    with pytest.raises(ValueError):
        reg(features, reference_features=reference[:, :3])


def test_padding_frames_are_ignored():
    encoder = _encoder().eval()
    reg = DELTA(encoder, alpha=1.0, pass_lengths=False)
    x = torch.randn(2, 10, 4)
    lengths = torch.tensor([1.0, 0.4])
    features = encoder(x).detach()
    features[:, :4] += 0.5
    value = reg(features, x, lengths=lengths)
    padded = features.clone()
    padded[1, 4:] = float("nan")
    torch.testing.assert_close(reg(padded, x, lengths=lengths), value)
    reference = encoder(x).detach()
    distance = ((features - reference) ** 2).sum(-1)
    valid = torch.cat([distance[0], distance[1, :4]])
    torch.testing.assert_close(value, valid.mean())


def test_reference_stays_frozen_in_eval_mode_and_gets_no_gradient():
    encoder = _encoder()
    parent = nn.ModuleDict({"encoder": encoder, "delta": DELTA(encoder, alpha=1.0)})
    parent.train()
    reg = parent["delta"]
    assert reg.training and encoder.training
    assert not reg.reference.training
    assert not any(m.training for m in reg.reference.modules())
    assert all(not p.requires_grad for p in reg.parameters())
    assert any(k.startswith("reference.") for k in reg.state_dict())

    x = torch.randn(3, 5, 4)
    with torch.no_grad():
        encoder[0].weight.mul_(1.5)
    reg(encoder(x), x).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())
    assert all(p.grad is None for p in reg.reference.parameters())


class _MaskingEncoder(nn.Module):
    """Zeroes the frames past each relative length, as SpeechBrain encoders do."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x, lengths=None):
        y = self.linear(x)
        if lengths is not None:
            frames = torch.arange(x.shape[1]) < torch.round(lengths * x.shape[1]).unsqueeze(1)
            y = y * frames.unsqueeze(-1)
        return y


def test_reference_gets_the_lengths():
    encoder = _MaskingEncoder()
    reg = DELTA(encoder, alpha=1.0)
    x, lengths = torch.randn(2, 6, 4), torch.tensor([1.0, 0.5])
    assert reg(encoder(x, lengths), x, lengths).item() == 0.0


def test_capture_takes_weights_loaded_after_construction():
    encoder = _encoder().eval()
    reg = DELTA(encoder, alpha=1.0)
    pretrained = _encoder()
    with torch.no_grad():
        for p in pretrained.parameters():
            p.add_(1.0)
    encoder.load_state_dict(pretrained.state_dict())  # as a Pretrainer would, after the YAML built DELTA
    x = torch.randn(2, 5, 4)
    assert reg(encoder(x), x).item() > 0.0
    reg.capture()
    assert reg(encoder(x), x).item() == 0.0
    assert all(not p.requires_grad for p in reg.reference.parameters())
