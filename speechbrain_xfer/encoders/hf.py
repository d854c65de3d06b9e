"""Pretrained Hugging Face speech encoders (wav2vec 2.0, HuBERT, WavLM, Whisper encoder) for transfer learning.

:class:`HFEncoder` is the backbone (:class:`~speechbrain_xfer.encoders.hf_backbone.HFBackbone`: loading,
freezing, layer groups, every hidden state, Whisper's window) with the layer selection on top: the hidden state
a task reads is one of them (``output_layer``), a SUPERB-style learnable weighted sum of all of them
(``layer_sum``), or the one LogME scores best on the training set (``output_layer="auto"``, chosen by
:func:`speechbrain_xfer.transferability.layer_choice.choose_output_layers` through :meth:`select_output_layer`).
"""

import tempfile

import torch
from torch import nn

from speechbrain_xfer.encoders.hf_backbone import HFBackbone
from speechbrain_xfer.encoders.hf_sources import write_config_folder


class HFEncoder(HFBackbone):
    """A pretrained speech encoder from the Hugging Face hub or a local ``save_pretrained`` folder.

    wav2vec 2.0, HuBERT and WavLM are loaded with SpeechBrain's ``Wav2Vec2`` wrapper; Whisper with SpeechBrain's
    ``Whisper`` wrapper, keeping only the encoder (the decoder is dropped). Whisper takes the waveform and computes
    the log-mel spectrogram itself. By default it encodes a 30 s window, as it was trained (shorter input is
    zero-padded, longer is cut), and the output is trimmed back to the frames that cover the input, so every
    family returns ``(batch, time, dim)`` with ``time`` proportional to the input length. With
    ``whisper_window="batch"`` it encodes only the batch's own length (see that argument).

    Arguments
    ---------
    source : str or os.PathLike
        A hub id (``facebook/wav2vec2-base``, ``microsoft/wavlm-base-plus``, ``openai/whisper-tiny``) or a local
        folder holding ``config.json``, the weights and ``preprocessor_config.json`` (what ``save_pretrained`` of
        the model and of its feature extractor write).
    save_path : str or os.PathLike, optional
        Hugging Face cache folder for downloads. Defaults to the standard HF cache, so a model downloaded once
        (or copied there) is found offline with ``HF_HUB_OFFLINE=1``.
    freeze : bool
        If True, no encoder parameter is trained, the encoder stays in eval mode (no dropout or layer drop)
        and runs without gradient; ``layer_weights`` are still trained when ``layer_sum`` is True.
    freeze_feature_extractor : bool
        If True (and not ``freeze``), the convolutional front end (for Whisper: both convolutions and the
        positional table) gets ``requires_grad=False``; the transformer layers stay trainable.
    layer_sum : bool
        If True, return a learnable softmax-weighted sum of all hidden states (the SUPERB recipe): the front-end
        output and each transformer layer's output. The weights, initialised equal, are the parameter
        ``layer_weights``.
    output_layer : int or "auto"
        Which hidden state to return when ``layer_sum`` is False: 0 is the input to the first transformer layer,
        ``k`` the output of layer ``k``; negative values count from the top, -1 (default) being the encoder's
        final output. ``"auto"``: the one a transferability estimator scores best on the training set, set
        with :meth:`select_output_layer` before training (recipes: ``run_experiment`` does it, see
        :func:`speechbrain_xfer.transferability.layer_choice.choose_output_layers`); the choice is the buffer
        ``chosen_layer``, so checkpoints and exports keep it. Ignored when ``layer_sum`` is True.
    whisper_window : str
        Whisper only. ``"30s"`` (default) pads every batch to Whisper's 30 s window, so a 1 s clip costs 30 s of
        encoder. ``"batch"`` encodes only the batch's longest input, rounded up to 20 ms (one encoder frame), with
        the positional table cut to that many frames; inputs longer than 30 s are still cut at 30 s. The output
        keeps one frame per 20 ms and the same alignment to the input: the hidden state entering the first
        transformer layer is the 30 s window's, frame for frame. What changes is attention: in the 30 s window
        every frame also attends to the frames of the zero padding, which Whisper cannot mask, and here there are
        none, so the transformer layers' outputs differ from the 30 s window's. Pretrained Whisper never saw such
        short windows, so fine-tune (or at least train a layer sum) rather than probe its final layer as it is.
    config, feature_extractor : dict, optional
        With ``source=None``: the contents of ``config.json`` and ``preprocessor_config.json``. The encoder is
        then built from them alone, with random weights for a checkpoint to replace: how an ``sbx export``
        folder's ``hyperparams.yaml`` builds it, so that loading needs no other file and no hub access.
    pretrained : bool
        If False, the same architecture with random weights (drawn from torch's global generator, as
        ``transformers`` initializes a new model): training from scratch, the baseline of transfer. The source
        still gives the architecture and the feature extractor.

    Raises
    ------
    PretrainedSourceError
        If the folder is missing or incomplete, the hub id cannot be fetched (or, offline, is not cached),
        or the model type is not supported. Raised before any weights are read.

    Example
    -------
    >>> from speechbrain_xfer.encoders import HFEncoder
    >>> encoder = HFEncoder("facebook/wav2vec2-base", layer_sum=True)  # doctest: +SKIP
    >>> feats = encoder(torch.randn(2, 16000), torch.tensor([1.0, 0.8]))  # doctest: +SKIP
    >>> feats.shape  # doctest: +SKIP
    torch.Size([2, 49, 768])
    >>> len(encoder.layers())  # front end + 12 transformer layers  # doctest: +SKIP
    13
    """

    def __init__(
        self,
        source=None,
        save_path=None,
        freeze=False,
        freeze_feature_extractor=True,
        layer_sum=False,
        output_layer=-1,
        whisper_window="30s",
        pretrained=True,
        config=None,
        feature_extractor=None,
    ):
        backbone = dict(freeze=freeze, freeze_feature_extractor=freeze_feature_extractor, whisper_window=whisper_window)
        if output_layer != "auto":  # refused before any weights are read
            backbone["check"] = lambda encoder: encoder._checked_layer(output_layer)
        if source is None:
            # No files: the architecture from the config alone, random weights for a checkpoint to replace.
            with tempfile.TemporaryDirectory() as folder:
                write_config_folder(folder, config, feature_extractor)
                super().__init__(folder, **backbone)
            self.source = "<config>"
        else:
            super().__init__(source, save_path, pretrained=pretrained, **backbone)
        self.output_layer = output_layer if output_layer == "auto" else self._checked_layer(output_layer)
        if output_layer == "auto":
            self.register_buffer("chosen_layer", torch.tensor(-1))  # -1: not chosen yet
        self.layer_sum = layer_sum
        if layer_sum:
            # Zeros give equal softmax weights: every layer starts with the same say, as in SUPERB.
            self.layer_weights = nn.Parameter(torch.zeros(self.num_layers + 1))

    @property
    def selected_layer(self):
        """The index of the hidden state returned when ``layer_sum`` is False (``output_layer``, or the one chosen
        for ``"auto"``)."""
        if self.output_layer != "auto":
            return self.output_layer
        chosen = int(self.chosen_layer)
        if chosen < 0:
            raise RuntimeError(
                f"HFEncoder('{self.source}') has output_layer='auto' and no layer chosen yet: recipes choose it "
                "before training (run_experiment); elsewhere call speechbrain_xfer.transferability.layer_choice."
                "choose_output_layers, or select_output_layer(index)"
            )
        return chosen

    def select_output_layer(self, layer):
        """Sets the hidden state an ``output_layer="auto"`` encoder returns (an index, as ``output_layer``)."""
        if self.output_layer != "auto":
            raise ValueError(f"output_layer is {self.output_layer}, not 'auto': it is not chosen later")
        self.chosen_layer.fill_(self._checked_layer(layer))

    def _checked_layer(self, layer):
        num_states = self.num_layers + 1
        if isinstance(layer, bool) or not isinstance(layer, int) or not -num_states <= layer < num_states:
            raise ValueError(
                f"output_layer={layer!r} is out of range for '{self.source}', which has "
                f"{self.num_layers} transformer layers: use -{num_states}..{self.num_layers}, or 'auto'"
            )
        return layer % num_states

    @property
    def _needs_hidden_states(self):
        return self.layer_sum or self.selected_layer != self.num_layers

    def forward(self, wavs, wav_lens=None):
        """Encodes a batch of waveforms.

        Arguments
        ---------
        wavs : torch.Tensor
            Waveforms, (batch, samples), at the model's sampling rate (16 kHz for all supported models).
        wav_lens : torch.Tensor, optional
            Relative lengths (SpeechBrain style, longest = 1.0), used as the attention mask by wav2vec 2.0,
            HuBERT and WavLM. Whisper, which was trained on zero-padded 30 s windows, ignores it.

        Returns
        -------
        torch.Tensor
            (batch, frames, output_dim): the final hidden state, the one selected by ``output_layer``, or the
            weighted sum when ``layer_sum`` is True.
        """
        if not self._needs_hidden_states:
            return self._trim(self._encode(wavs, wav_lens), wavs)
        states = self._all_hidden_states(wavs, wav_lens)
        if not self.layer_sum:
            return states[self.selected_layer]
        return self._weighted_sum(torch.stack(states, dim=2))

    @property
    def cache_excluded(self):
        """Names of the tensors that act after :meth:`cached_forward` (the frozen-encoder feature cache's
        fingerprint leaves them out): the layer weights, which train while the encoder stays frozen."""
        return ("layer_weights",) if self.layer_sum else ()

    def cached_forward(self, wavs, wav_lens=None):
        """What the frozen-encoder feature cache keeps: with ``layer_sum``, every hidden state, stacked as
        ``(batch, frames, num_layers + 1, output_dim)``, else the output itself. :meth:`finish_cached` then gives
        the output, so a frozen encoder's layer weights train on cached states."""
        if not self.layer_sum:
            return self(wavs, wav_lens)
        return self.hidden_states(wavs, wav_lens)

    def finish_cached(self, cached):
        """The output from what :meth:`cached_forward` returned (padded to a batch)."""
        return self._weighted_sum(cached) if self.layer_sum else cached

    def _weighted_sum(self, stacked):
        weights = torch.softmax(self.layer_weights, dim=0)
        return (weights.view(-1, 1) * stacked).sum(dim=-2)
