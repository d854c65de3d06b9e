"""Waveform augmentations: SpeechBrain's, where one of them needs a faster path on CPUs.

SpeechBrain's ``DropFreq`` filters the batch with ``convolve1d(x, filter,
padding=50)``, a direct 101-tap convolution over every sample. On CPUs that
costs 26 ms for 8 waveforms of 2.4 s on one core, and more when every batch
has a new length, as in training (``benchmarks/front_end.py``); in the
SynthSpeech intent recipes it was a fifth of each training step.
:class:`DropFreq` here makes the same random draws and builds the same
filter, and applies it through the FFT (``torch.fft``), 5 to 7 times faster.
"""

import torch
from scipy.fft import next_fast_len
from speechbrain.augment import time_domain
from speechbrain.processing.signal_processing import convolve1d, notch_filter


class DropFreq(time_domain.DropFreq):
    """``speechbrain.augment.time_domain.DropFreq`` with the filter applied through the FFT.

    Same arguments, same random draws (torch's generator) and the same output
    to float precision as SpeechBrain's class, which it subclasses.

    Example
    -------
    >>> from speechbrain.augment.time_domain import DropFreq as SpeechBrainDropFreq
    >>> x = torch.randn(2, 16000) * 0.1
    >>> _ = torch.manual_seed(0); fast = DropFreq()(x)
    >>> _ = torch.manual_seed(0); reference = SpeechBrainDropFreq()(x)
    >>> bool((fast - reference).abs().max() < 1e-5)
    True
    """

    def forward(self, waveforms):
        """Drops ``drop_freq_count_low..high`` random frequency bands of ``[batch, time(, channels)]`` waveforms."""
        drop_count = torch.randint(low=self.drop_freq_count_low, high=self.drop_freq_count_high + 1, size=(1,))
        drop_range = self.drop_freq_high - self.drop_freq_low
        drop_frequency = (torch.rand(drop_count) * drop_range + self.drop_freq_low).clamp(min=self.epsilon)
        filter_length = 101
        pad = filter_length // 2
        drop_filter = torch.zeros(1, filter_length, 1, device=waveforms.device)
        drop_filter[0, pad, 0] = 1
        for frequency in drop_frequency:
            notch_kernel = notch_filter(frequency, filter_length, self.drop_freq_width).to(waveforms.device)
            drop_filter = convolve1d(drop_filter, notch_kernel, pad)  # 101 samples: cheap either way
        if waveforms.dim() == 2:
            return filter_same(waveforms, drop_filter.flatten())
        # As SpeechBrain's does: [batch, time, channels] is read as batch * channels rows of `time` samples.
        rows = waveforms.reshape(waveforms.shape[0] * waveforms.shape[2], waveforms.shape[1])
        return filter_same(rows, drop_filter.flatten()).reshape(waveforms.shape)


def filter_same(waveforms, kernel):
    """``convolve1d(waveforms, kernel, padding=len(kernel) // 2)`` for an odd-length kernel, through the FFT.

    Arguments
    ---------
    waveforms : torch.Tensor
        ``[batch, time]``.
    kernel : torch.Tensor
        ``[taps]``, an odd number of taps, applied as SpeechBrain's
        ``convolve1d`` applies it (a correlation, centred on each sample).

    Returns
    -------
    torch.Tensor
        Filtered waveforms, ``[batch, time]``.

    Example
    -------
    >>> x = torch.zeros(1, 8); x[0, 3] = 1.0
    >>> filter_same(x, torch.tensor([1.0, 2.0, 3.0])).round().int().tolist()
    [[0, 0, 3, 2, 1, 0, 0, 0]]
    """
    time = waveforms.shape[-1]
    half = kernel.shape[0] // 2
    # Zero-padding to a fast length of at least time + taps - 1 makes the circular convolution linear.
    size = next_fast_len(time + 2 * half, real=True)
    spectrum = torch.fft.rfft(waveforms, n=size) * torch.fft.rfft(kernel.flip(0), n=size)
    return torch.fft.irfft(spectrum, n=size)[..., half : half + time].contiguous()


class BandLimit(torch.nn.Module):
    """Telephone-like band limits: each waveform goes down to a lower sample rate and back up.

    Real recordings are often made or stored at 8 kHz (FSDD, telephone speech) and hold nothing above 4 kHz,
    where a source trained only on full-band 16 kHz audio has learnt to look. Resampling down to one of
    ``rates`` (drawn per waveform) and back to ``sample_rate`` removes the band above half that rate, with the
    same anti-aliasing filter as the recipes' own resampling of 8 kHz files (``torchaudio``'s sinc resampler).

    Arguments
    ---------
    sample_rate : int
        The rate of the waveforms.
    rates : list of int
        The lower rates to go through; one is drawn for each waveform.

    Example
    -------
    >>> x = torch.sin(torch.arange(16000) * 2 * torch.pi * 6000 / 16000).unsqueeze(0)
    >>> y = BandLimit(rates=[8000])(x)
    >>> y.shape, round(float(x.abs().max()), 2), bool(y[:, 800:-800].abs().max() < 0.01)  # 6 kHz removed
    (torch.Size([1, 16000]), 1.0, True)
    """

    def __init__(self, sample_rate=16000, rates=(8000,)):
        super().__init__()
        self.sample_rate = sample_rate
        self.rates = list(rates)

    def forward(self, waveforms):
        """``[batch, time]`` waveforms, each band-limited to half of a rate drawn from ``rates``."""
        from torchaudio.functional import resample

        picks = torch.randint(len(self.rates), (waveforms.shape[0],)).tolist()
        out = torch.empty_like(waveforms)
        for rate_index in set(picks):
            rows = [i for i, pick in enumerate(picks) if pick == rate_index]
            low = resample(waveforms[rows], self.sample_rate, self.rates[rate_index])
            out[rows] = resample(low, self.rates[rate_index], self.sample_rate)[..., : waveforms.shape[-1]]
        return out
