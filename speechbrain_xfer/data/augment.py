"""Waveform augmentations: SpeechBrain's, where one of them needs a faster path on CPUs.

SpeechBrain's ``DropFreq`` filters the batch with ``convolve1d(x, filter,
padding=50)``, which hands the padding to ``conv1d``; on CPUs ``conv1d``
then takes a slow path: about 11 times slower than padding first and
convolving without padding (153 ms against 14 ms for 8 waveforms of 2.4 s
on one core, ``benchmarks/front_end.py``). In the SynthSpeech intent recipes
that was a fifth of each training step. :class:`DropFreq` here makes the same random draws and
the same filter, and pads first.
"""

import torch
from speechbrain.augment import time_domain
from speechbrain.processing.signal_processing import convolve1d, notch_filter


class DropFreq(time_domain.DropFreq):
    """``speechbrain.augment.time_domain.DropFreq`` with the filter applied after explicit padding.

    Same arguments, same random draws (torch's generator) and the same output
    to float precision as SpeechBrain's class, which it subclasses.

    Example
    -------
    >>> from speechbrain.augment.time_domain import DropFreq as SpeechBrainDropFreq
    >>> x = torch.randn(2, 16000)
    >>> _ = torch.manual_seed(0); fast = DropFreq()(x)
    >>> _ = torch.manual_seed(0); reference = SpeechBrainDropFreq()(x)
    >>> bool((fast - reference).abs().max() < 1e-5)
    True
    """

    def forward(self, waveforms):
        """Drops ``drop_freq_count_low..high`` random frequency bands of ``[batch, time(, channels)]`` waveforms."""
        dropped = waveforms.clone()
        if waveforms.dim() == 2:
            dropped = dropped.unsqueeze(-1)
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
        if waveforms.dim() == 3:
            dropped = dropped.reshape(dropped.shape[0] * dropped.shape[2], dropped.shape[1], 1)
        # A (left, right) tuple makes convolve1d pad first and call conv1d without padding: the fast path.
        dropped = convolve1d(dropped, drop_filter, (pad, pad))
        if waveforms.dim() == 3:
            dropped = dropped.reshape(waveforms.shape)
        return dropped.squeeze(-1)
