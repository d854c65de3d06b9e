"""Fbank: the same features as SpeechBrain's, for every option that changes them."""

import pytest
import torch
from speechbrain.lobes import features as sb_features

from speechbrain_xfer.lobes.features import Fbank

OPTIONS = [
    {},
    {"n_mels": 80},
    {"deltas": True, "context": True},
    {"f_min": 100, "f_max": 6000},
    {"n_fft": 512, "win_length": 32, "hop_length": 16},
]


@pytest.mark.parametrize("options", OPTIONS)
def test_same_features_as_speechbrain(options):
    torch.manual_seed(0)
    wav = torch.randn(3, 12000) * 0.1
    wav[1, 6000:] = 0  # padding: silent frames
    ours, reference = Fbank(**options)(wav), sb_features.Fbank(**options)(wav)
    assert ours.shape == reference.shape
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)


def test_gradient_reaches_the_waveform():
    wav = torch.randn(2, 8000, requires_grad=True)
    Fbank()(wav).sum().backward()
    assert wav.grad is not None and wav.grad.abs().sum() > 0
