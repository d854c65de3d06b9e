"""In-process espeak-ng speech synthesis through ctypes.

The shared library and its voice data come from the ``espeakng-loader``
wheel, so no system package and no root are needed. Synthesis is
synchronous and returns int16 samples at :data:`SAMPLE_RATE`.

espeak-ng keeps synthesis state between calls (oscillator phases, echo
buffers), so the audio of an utterance depends on what the same process
synthesized before it. For reproducible audio, synthesize a fixed sequence
of utterances in a fresh process (see ``speechbrain_xfer.synthspeech.isolation``).
"""

import ctypes

import numpy as np

SAMPLE_RATE = 22050

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_SSML = 0x10
_PARAMS = {"rate": 1, "volume": 2, "pitch": 3, "range": 4}
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class SynthesisError(RuntimeError):
    """Raised when espeak-ng refuses a voice or an utterance."""


class Espeak:
    """An espeak-ng synthesizer living in this process.

    Arguments
    ---------
    seed : int
        Seed of espeak-ng's own random generator (used by some voices).

    Example
    -------
    >>> tts = Espeak()
    >>> audio = tts.synthesize("yes", voice="en-us", rate=160)
    >>> audio.dtype, audio.size > 0.2 * SAMPLE_RATE
    (dtype('int16'), True)
    """

    def __init__(self, seed=0):
        try:
            import espeakng_loader
        except ImportError:
            raise SynthesisError(
                "the SynthSpeech corpus needs espeak-ng from the demo extra: pip install 'speechbrain_xfer[demo]'"
            ) from None

        self._lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path().encode()
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if rate != SAMPLE_RATE:
            raise SynthesisError(f"espeak-ng failed to initialize (returned {rate})")
        self._chunks = []
        # Keep a reference: ctypes callbacks must outlive their C users.
        self._callback = _CALLBACK(self._collect)
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lib.espeak_ng_SetRandSeed(seed)

    def _collect(self, wav, num_samples, events):
        if wav and num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0

    def synthesize(self, text, voice="en", rate=175, pitch=50, range=50, volume=100, ssml=False):  # noqa: A002
        """Returns the int16 waveform of ``text`` spoken by ``voice``.

        Arguments
        ---------
        text : str
            What to say (SSML when ``ssml`` is True).
        voice : str
            An espeak-ng voice name, optionally with a variant: ``"de+m3"``.
        rate : int
            Words per minute (80-450).
        pitch, range : int
            Base pitch and pitch range, 0-100.
        volume : int
            Amplitude, 0-200.
        ssml : bool
            Whether ``text`` is SSML markup.

        Returns
        -------
        numpy.ndarray
            int16 samples at :data:`SAMPLE_RATE`.
        """
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise SynthesisError(f"espeak-ng has no voice {voice!r}")
        for name, value in (("rate", rate), ("pitch", pitch), ("range", range), ("volume", volume)):
            self._lib.espeak_SetParameter(_PARAMS[name], int(value), 0)
        self._chunks = []
        data = text.encode()
        flags = _ESPEAK_SSML if ssml else 0
        status = self._lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, flags, None, None)
        if status != 0:
            raise SynthesisError(f"espeak-ng failed on {text!r} with voice {voice!r} ({status})")
        if not self._chunks:
            raise SynthesisError(f"espeak-ng produced no audio for {text!r} with voice {voice!r}")
        return np.concatenate(self._chunks)
