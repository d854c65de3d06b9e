import numpy as np
import pytest

from speechbrain_xfer.synthspeech.espeak import SAMPLE_RATE, Espeak, SynthesisError


def test_prosody_parameters_change_the_audio():
    tts = Espeak()
    slow = tts.synthesize("turn on the lights", voice="en-us", rate=100)
    fast = tts.synthesize("turn on the lights", voice="en-us", rate=300)
    assert len(slow) > 1.5 * len(fast)
    assert 0.3 * SAMPLE_RATE < len(fast) < 3 * SAMPLE_RATE
    assert np.abs(slow).max() > 1000


def test_unknown_voice_is_a_clear_error():
    with pytest.raises(SynthesisError, match="no voice 'xx-nowhere'"):
        Espeak().synthesize("hello", voice="xx-nowhere")
