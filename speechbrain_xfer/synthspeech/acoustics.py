"""Acoustic conditions for synthetic speech: resampling, room, noise, level.

All functions are plain numpy / scipy and take an explicit random
generator, so a corpus is reproducible from its seed.
"""

import numpy as np
from scipy.signal import fftconvolve, resample_poly

SAMPLE_RATE = 16000


def resample_batch(waveforms, orig_sr, target_sr=SAMPLE_RATE):
    """Resamples a list of 1-D waveforms in one polyphase filtering call.

    Arguments
    ---------
    waveforms : list of numpy.ndarray
        1-D signals at ``orig_sr``, of any lengths.
    orig_sr, target_sr : int
        Sample rates in Hz.

    Returns
    -------
    list of numpy.ndarray
        float32 signals at ``target_sr``, each trimmed to its own length.

    Example
    -------
    >>> out = resample_batch([np.ones(22050), np.ones(11025)], 22050)
    >>> [len(x) for x in out]
    [16000, 8000]
    """
    if not waveforms:
        return []
    g = np.gcd(orig_sr, target_sr)
    up, down = target_sr // g, orig_sr // g
    batch = np.zeros((len(waveforms), max(len(w) for w in waveforms)), np.float32)
    for row, wav in zip(batch, waveforms):
        row[: len(wav)] = wav
    resampled = resample_poly(batch, up, down, axis=1).astype(np.float32)
    return [r[: -(-len(w) * up // down)] for r, w in zip(resampled, waveforms)]


def room_impulse_response(rng, rt60, sample_rate=SAMPLE_RATE):
    """A synthetic room response: a direct path plus exponentially decaying noise."""
    length = int(rt60 * sample_rate)
    t = np.arange(length) / sample_rate
    rir = rng.standard_normal(length) * np.exp(-6.9 * t / rt60) * 0.3
    rir[0] = 1.0
    return (rir / np.linalg.norm(rir)).astype(np.float32)


def colored_noise(rng, length, exponent):
    """Noise with a 1/f**exponent power spectrum (0 white, 1 pink, 2 brown)."""
    spectrum = rng.standard_normal(length // 2 + 1) + 1j * rng.standard_normal(length // 2 + 1)
    freqs = np.maximum(np.fft.rfftfreq(length), 1.0 / length)
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2), n=length)
    return (noise / (np.std(noise) + 1e-12)).astype(np.float32)


def rms(x):
    """Root mean square of a signal."""
    return float(np.sqrt(np.mean(np.square(x), dtype=np.float64)))


def place_in_clip(rng, speech, clip_seconds=None, pad_seconds=(0.1, 0.5)):
    """Places speech at a random offset of a clip.

    With ``clip_seconds`` the clip has that fixed length (or the speech's
    length if longer); otherwise random silence of ``pad_seconds`` goes before
    and after the speech.
    """
    if clip_seconds is not None:
        total = max(int(clip_seconds * SAMPLE_RATE), len(speech))
        offset = int(rng.integers(0, total - len(speech) + 1))
    else:
        offset = int(rng.uniform(*pad_seconds) * SAMPLE_RATE)
        total = offset + len(speech) + int(rng.uniform(*pad_seconds) * SAMPLE_RATE)
    clip = np.zeros(total, np.float32)
    clip[offset : offset + len(speech)] = speech
    return clip


def apply_conditions(
    rng, speech, clip_seconds=None, reverb_prob=0.5, noise_prob=0.8, snr_db=(5.0, 30.0), level_db=(-32.0, -16.0)
):
    """Turns clean speech into a recording: room, placement, level and noise.

    Arguments
    ---------
    rng : numpy.random.Generator
        Source of every random choice.
    speech : numpy.ndarray
        Clean float32 speech at 16 kHz.
    clip_seconds : float, optional
        Fixed clip length (keyword clips); None pads with random silence.
    reverb_prob, noise_prob : float
        Chances of a room response and of background noise.
    snr_db : tuple
        Range of signal-to-noise ratios.
    level_db : tuple
        Range of speech RMS levels in dB full scale.

    Returns
    -------
    numpy.ndarray
        int16 samples, never clipped.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> out = apply_conditions(rng, np.sin(np.arange(8000) / 5).astype(np.float32), 1.0)
    >>> out.dtype, len(out)
    (dtype('int16'), 16000)
    """
    if rng.random() < reverb_prob:
        rir = room_impulse_response(rng, rt60=rng.uniform(0.15, 0.6))
        speech = fftconvolve(speech, rir)[: len(speech)].astype(np.float32)
    clip = place_in_clip(rng, speech, clip_seconds)
    level = 10 ** (rng.uniform(*level_db) / 20)
    clip *= level / max(rms(speech), 1e-9)
    if rng.random() < noise_prob:
        noise = colored_noise(rng, len(clip), exponent=rng.choice((0.0, 1.0, 2.0)))
        snr = rng.uniform(*snr_db)
        clip += noise * level * 10 ** (-snr / 20)
    peak = np.max(np.abs(clip))
    if peak > 0.99:
        clip *= 0.99 / peak
    return np.round(clip * 32767).astype(np.int16)
