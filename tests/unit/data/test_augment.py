"""DropFreq: the same random draws and output as SpeechBrain's, through the FFT."""

import pytest
import torch
from speechbrain.augment.time_domain import DropFreq as SpeechBrainDropFreq

from speechbrain_xfer.data.augment import DropFreq

MORE_BANDS = {"drop_freq_count_low": 2, "drop_freq_count_high": 4, "drop_freq_width": 0.1}


@pytest.mark.parametrize("shape", [(3, 8000), (2, 7919), (2, 8000, 2)])  # 7919 is prime: no fast FFT length
@pytest.mark.parametrize("settings", [{}, MORE_BANDS])
def test_drop_freq_matches_speechbrain(shape, settings):
    x = torch.randn(*shape) * 0.1
    for seed in range(5):
        torch.manual_seed(seed)
        fast = DropFreq(**settings)(x)
        after_fast = torch.rand(1)  # the generator moved as far as SpeechBrain's does
        torch.manual_seed(seed)
        reference = SpeechBrainDropFreq(**settings)(x)
        assert torch.equal(torch.rand(1), after_fast)
        assert fast.shape == x.shape
        assert (fast - reference).abs().max() <= 1e-5
        assert (fast - x).abs().max() > 1e-3  # something was dropped


def test_drop_freq_removes_the_band_it_drew_and_keeps_the_others():
    t = torch.arange(16000) / 16000
    augment = DropFreq(drop_freq_low=0.25, drop_freq_high=0.25, drop_freq_count_low=1, drop_freq_count_high=1)
    kept = {}
    for hz in (1000, 2000, 6000):  # 2 kHz is 0.25 of the Nyquist frequency
        tone = torch.sin(2 * torch.pi * hz * t).unsqueeze(0)
        kept[hz] = float(augment(tone)[0, 1000:-1000].pow(2).mean() / tone[0, 1000:-1000].pow(2).mean())
    assert kept[2000] < 0.15  # a 101-tap notch: about -11 dB
    assert kept[1000] > 0.95 and kept[6000] > 0.95


def test_band_limit_removes_what_an_8_khz_recording_cannot_hold_and_keeps_the_rest():
    from speechbrain_xfer.data.augment import BandLimit

    t = torch.arange(16000) / 16000
    low, high = torch.sin(2 * torch.pi * 1000 * t), torch.sin(2 * torch.pi * 5000 * t)
    out = BandLimit(rates=[8000])(torch.stack([low + high, low]))
    middle = slice(800, -800)
    assert torch.allclose(out[1, middle], low[middle], atol=0.02)
    assert torch.allclose(out[0, middle], low[middle], atol=0.02)  # the 5 kHz tone is gone
    torch.manual_seed(0)
    mixed = BandLimit(rates=[8000, 16000])(torch.stack([high] * 8))
    kept = [bool(row[middle].abs().max() > 0.5) for row in mixed]
    assert 0 < sum(kept) < 8  # a rate is drawn for each waveform
