"""A speaker encoder pretrained on real speech: GE2E, as Resemblyzer ships it, with access to each layer.

The generalized end-to-end (GE2E) speaker verification loss of Wan et al., "Generalized End-to-End Loss for
Speaker Verification", ICASSP 2018, trained a 3-layer LSTM of 256 units on 40-band mel spectrograms of
thousands of real speakers; the ``resemblyzer`` wheel (Apache-2.0) ships those weights as ``pretrained.pt``
(1.42 M parameters). This is the project's pattern for a pretrained PyTorch encoder that is not on the hub:

- the architecture as a module of the usual encoder interface (``forward(feats, lengths)``, ``output_dim``,
  ``layers()``, here one LSTM per layer), so that freezing, layer-wise learning rates, L2-SP anchors, adapters
  and the feature cache work on it, and an optional learnable sum of the layers' outputs (``layer_sum``);
- its front end (:class:`GE2EFeatures`), a recipe's ``compute_features``;
- the weights converted once into an ``encoder.ckpt`` folder (:func:`write_pretrained_folder`,
  ``python -m speechbrain_xfer.encoders.ge2e <folder>``), a recipe's ``pretrained_source`` like any other;
  exports then hold the fine-tuned weights and need nothing of Resemblyzer.

Resemblyzer also trims long silences with a voice activity detector (webrtcvad) before its front end; this
front end does not (FSDD's clips are trimmed already).
"""

import argparse
import importlib.util
import os

import torch
from speechbrain.processing.features import STFT
from torch import nn
from torchaudio.functional import melscale_fbanks

from speechbrain_xfer.lobes.pooling import length_mask

SAMPLE_RATE = 16000
TARGET_DBFS = -30.0


class GE2EFeatures(nn.Module):
    """GE2E's front end: loudness raised to -30 dBFS (never lowered), then a 40-band mel power spectrogram.

    25 ms Hann windows every 10 ms, Slaney mel filters, no logarithm: what Resemblyzer's
    ``wav_to_mel_spectrogram`` (librosa) computes. The loudness is that of each waveform up to its last
    non-zero sample, so that the padding of a batch does not change it.

    Example
    -------
    >>> feats = GE2EFeatures()(torch.randn(2, 16000) * 0.01)
    >>> tuple(feats.shape)  # 1 + 16000 // 160 frames
    (2, 101, 40)
    """

    def __init__(self, n_mels=40, target_dbfs=TARGET_DBFS):
        super().__init__()
        self.target_dbfs = target_dbfs
        # Named as SpeechBrain's Fbank names it, so that frame_lengths knows its frames.
        self.compute_STFT = STFT(
            sample_rate=SAMPLE_RATE, win_length=25, hop_length=10, n_fft=400, window_fn=torch.hann_window
        )
        filters = melscale_fbanks(201, 0.0, SAMPLE_RATE / 2, n_mels, SAMPLE_RATE, norm="slaney", mel_scale="slaney")
        self.register_buffer("filters", filters, persistent=False)

    def forward(self, wavs):
        stft = self.compute_STFT(louder(wavs, self.target_dbfs))
        return (stft[..., 0].square() + stft[..., 1].square()) @ self.filters


def louder(wavs, target_dbfs=TARGET_DBFS):
    """``wavs`` (batch, samples) scaled up to ``target_dbfs`` RMS where they are quieter; louder ones unchanged.

    Example
    -------
    >>> quiet = torch.full((1, 100), 0.001)
    >>> round(float(20 * torch.log10(louder(quiet).square().mean().sqrt())), 2)
    -30.0
    >>> loud = torch.full((1, 100), 0.5)
    >>> torch.equal(louder(loud), loud)
    True
    """
    nonzero = (wavs != 0).flip(-1).to(torch.int64)
    samples = (wavs.shape[-1] - nonzero.argmax(dim=-1)).where(nonzero.any(dim=-1), torch.zeros_like(nonzero[:, 0]))
    power = wavs.square().sum(dim=-1) / samples.clamp(min=1)
    dbfs = 10 * torch.log10(power.clamp(min=1e-20))
    gain = torch.pow(10.0, (target_dbfs - dbfs) / 20).clamp(min=1.0)
    return wavs * gain.unsqueeze(-1)


class GE2EEncoder(nn.Module):
    """GE2E's LSTM layers; (batch, frames, n_mels) mel power spectra in, (batch, frames, hidden) out.

    Arguments
    ---------
    input_dim : int
        Mel bands.
    hidden_size : int
        Units of each LSTM layer.
    num_layers : int
        LSTM layers.
    layer_sum : bool
        Output a learnable softmax-weighted sum of every layer's outputs instead of the top layer's.

    Example
    -------
    >>> enc = GE2EEncoder(input_dim=8, hidden_size=16, num_layers=3).eval()
    >>> feats = torch.rand(2, 30, 8)
    >>> enc(feats).shape, enc.output_dim, len(enc.layers())
    (torch.Size([2, 30, 16]), 16, 3)

    Padding does not change the valid frames:

    >>> out = enc(feats, torch.tensor([1.0, 0.5]))
    >>> torch.allclose(out[1:, :15], enc(feats[1:, :15]), atol=1e-6), out[1, 15:].abs().max().item()
    (True, 0.0)
    """

    def __init__(self, input_dim=40, hidden_size=256, num_layers=3, layer_sum=False):
        super().__init__()
        dims = [input_dim] + [hidden_size] * num_layers
        self.lstms = nn.ModuleList(nn.LSTM(dims[i], hidden_size, batch_first=True) for i in range(num_layers))
        self.layer_weights = nn.Parameter(torch.zeros(num_layers)) if layer_sum else None
        self.output_dim = hidden_size

    def layers(self):
        """The LSTM layers, bottom to top, for freezing and learning-rate schedules."""
        return list(self.lstms)

    def forward(self, feats, lengths=None):
        """Encodes (batch, frames, input_dim) features; ``lengths`` are relative, as in SpeechBrain."""
        frames = None if lengths is None else length_mask(lengths, feats.shape[1]).sum(dim=1)
        outputs, x = [], feats
        for lstm in self.lstms:
            x = _run_lstm(lstm, x, frames)
            outputs.append(x)
        if self.layer_weights is None:
            return x
        weights = torch.softmax(self.layer_weights, dim=0)
        return sum(w * out for w, out in zip(weights, outputs))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Resemblyzer's own names (one 3-layer nn.LSTM, ``lstm.weight_ih_l{i}``), as write_pretrained_folder
        # converts them, are read too; its output layer (``linear``) and loss scalars are not part of this encoder.
        for key in [k for k in state_dict if k.startswith(prefix + "lstm.")]:
            name, layer = key[len(prefix) + len("lstm.") :].rsplit("_l", 1)
            state_dict[f"{prefix}lstms.{layer}.{name}_l0"] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _run_lstm(lstm, x, frames):
    if frames is None:
        return lstm(x)[0]
    packed = nn.utils.rnn.pack_padded_sequence(x, frames.cpu(), batch_first=True, enforce_sorted=False)
    return nn.utils.rnn.pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=x.shape[1])[0]


def resemblyzer_weights():
    """The ``pretrained.pt`` of the installed ``resemblyzer`` package, found without importing it (its
    ``__init__`` needs librosa and webrtcvad, which reading the weights does not)."""
    spec = importlib.util.find_spec("resemblyzer")
    path = os.path.join(spec.submodule_search_locations[0], "pretrained.pt") if spec else None
    if path is None or not os.path.isfile(path):
        raise FileNotFoundError(
            "the GE2E weights come with the resemblyzer package: pip install 'speechbrain_xfer[ge2e]' "
            "(or pip install --no-deps resemblyzer, which is enough for the weights)"
        )
    return path


def write_pretrained_folder(folder, weights=None):
    """Writes ``folder/encoder.ckpt``: GE2E's LSTM weights in :class:`GE2EEncoder`'s names, a
    ``pretrained_source`` for the recipes. ``weights`` defaults to :func:`resemblyzer_weights`."""
    checkpoint = torch.load(weights or resemblyzer_weights(), map_location="cpu", weights_only=True)
    encoder = GE2EEncoder()
    encoder.load_state_dict({k: v for k, v in checkpoint["model_state"].items() if k.startswith("lstm.")})
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "encoder.ckpt")
    torch.save(encoder.state_dict(), path)
    return path


def load_pretrained_folder(folder):
    """The :class:`GE2EEncoder` of a folder :func:`write_pretrained_folder` wrote, or None when ``folder`` holds
    no such ``encoder.ckpt`` (another encoder's, or none)."""
    path = os.path.join(folder, "encoder.ckpt")
    if not os.path.isfile(path) or os.path.isfile(os.path.join(folder, "hyperparams.yaml")):
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not all(key.startswith("lstms.") for key in state):
        return None
    input_dim, hidden_size = state["lstms.0.weight_ih_l0"].shape[1], state["lstms.0.weight_hh_l0"].shape[1]
    num_layers = len({key.split(".")[1] for key in state})
    encoder = GE2EEncoder(input_dim=input_dim, hidden_size=hidden_size, num_layers=num_layers)
    encoder.load_state_dict(state)
    return encoder


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Write the GE2E speaker encoder's weights as a pretrained_source.")
    parser.add_argument("folder", help="where encoder.ckpt goes, e.g. results/ge2e")
    parser.add_argument("--weights", default=None, help="Resemblyzer's pretrained.pt (default: the installed one)")
    args = parser.parse_args()
    print(write_pretrained_folder(args.folder, args.weights))
