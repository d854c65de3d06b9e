import numpy as np
from scipy.signal import resample_poly

from speechbrain_xfer.synthspeech.acoustics import apply_conditions, colored_noise, resample_batch, rms


def test_batch_resampling_matches_one_file_at_a_time():
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) for n in (22050, 9000, 31000)]
    batch = resample_batch(waves, 22050)
    for wav, out in zip(waves, batch):
        single = resample_poly(wav, 320, 441)
        assert len(out) == len(single)
        # Zero padding only touches the filter's tail at the end of short rows.
        np.testing.assert_allclose(out[:-40], single[:-40], atol=1e-5)


def test_noise_is_added_at_the_requested_snr():
    rng = np.random.default_rng(1)
    speech = np.sin(np.arange(16000) / 3).astype(np.float32)
    quiet = apply_conditions(np.random.default_rng(2), speech, reverb_prob=0, noise_prob=0)
    noisy = apply_conditions(np.random.default_rng(2), speech, reverb_prob=0, noise_prob=1, snr_db=(10, 10))
    assert quiet.dtype == np.int16
    assert len(quiet) > len(speech)
    noise = noisy.astype(float) - quiet.astype(float)
    # The SNR is that of the speech itself, not of the padded clip.
    speech_part = quiet[quiet != 0].astype(float)
    assert abs(20 * np.log10(rms(speech_part) / rms(noise)) - 10) < 0.5
    assert abs(np.std(colored_noise(rng, 4000, 1.0)) - 1) < 1e-3


def test_keyword_clips_have_a_fixed_length_and_random_placement():
    speech = np.ones(6000, np.float32)
    starts = set()
    for seed in range(5):
        clip = apply_conditions(np.random.default_rng(seed), speech, clip_seconds=1.0, reverb_prob=0, noise_prob=0)
        assert len(clip) == 16000
        starts.add(int(np.argmax(clip > 0)))
    assert len(starts) == 5
