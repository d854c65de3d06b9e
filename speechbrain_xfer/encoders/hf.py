"""Pretrained Hugging Face speech encoders (wav2vec 2.0, HuBERT, WavLM, Whisper encoder) for transfer learning.

Loading goes through SpeechBrain's own wrappers, :class:`speechbrain.integrations.huggingface.wav2vec2.Wav2Vec2`
(which uses ``AutoModel`` and so covers wav2vec 2.0, HuBERT and WavLM) and
:class:`speechbrain.integrations.huggingface.whisper.Whisper` (``encoder_only=True``), so that a hub id such as
``facebook/wav2vec2-base`` and a local folder written by ``save_pretrained`` take exactly the same code path.
This module adds what transfer learning needs on top of them: checking the source before any heavy work,
layer groups for unfreezing schedules and layer-wise learning-rate decay, and a SUPERB-style weighted sum
of the hidden states.
"""

import contextlib
import os
import tempfile

import huggingface_hub
import huggingface_hub.constants
import torch
from huggingface_hub.errors import EntryNotFoundError, HFValidationError
from torch import nn

from speechbrain_xfer.encoders.hf_sources import (
    HUB_HINT,
    SUPPORTED_MODEL_TYPES,
    WHISPER_WINDOWS,
    build_wrapper,
    config_int,
    encoder_layer_count,
    read_config,
    write_config_folder,
)
from speechbrain_xfer.encoders.whisper_window import encode_in_batch_window, trim_to_input
from speechbrain_xfer.pretrained.errors import PretrainedSourceError


class HFEncoder(nn.Module):
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
        super().__init__()
        if whisper_window not in WHISPER_WINDOWS:
            raise ValueError(f"whisper_window={whisper_window!r}: use one of {', '.join(WHISPER_WINDOWS)}")
        if source is None:
            # No files: the architecture from the config alone, random weights for a checkpoint to replace.
            with tempfile.TemporaryDirectory() as folder:
                write_config_folder(folder, config, feature_extractor)
                options = dict(freeze_feature_extractor=freeze_feature_extractor, output_layer=output_layer)
                self.__init__(folder, freeze=freeze, layer_sum=layer_sum, whisper_window=whisper_window, **options)
            self.source = "<config>"
            return
        self.source = os.fspath(source)
        # SpeechBrain's wrappers need a string cache folder (they build "<save_path>/models--..." paths to find
        # already-downloaded snapshots); the standard HF cache makes hub ids cached by any tool usable offline.
        cache_dir = os.fspath(save_path) if save_path is not None else huggingface_hub.constants.HF_HUB_CACHE

        config = read_config(self.source, cache_dir)
        model_type = config.get("model_type")
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise PretrainedSourceError(
                f"'{self.source}' holds a model of type {model_type!r}; HFEncoder supports "
                f"{', '.join(sorted(SUPPORTED_MODEL_TYPES))}",
                source=self.source,
            )
        self.model_type = model_type
        self.family = SUPPORTED_MODEL_TYPES[model_type]
        whisper = self.family == "whisper"
        self.num_layers = encoder_layer_count(config, self.source)
        self._output_dim = config_int(config, "d_model" if whisper else "hidden_size", self.source)

        num_states = self.num_layers + 1
        self.output_layer = output_layer if output_layer == "auto" else self._checked_layer(output_layer)
        if output_layer == "auto":
            self.register_buffer("chosen_layer", torch.tensor(-1))  # -1: not chosen yet
        self.layer_sum = layer_sum
        self.freeze = freeze
        self.freeze_feature_extractor = freeze_feature_extractor
        self.whisper_window = whisper_window

        try:
            self.wrapper = build_wrapper(self.family, self.source, cache_dir, freeze, freeze_feature_extractor)
        except (OSError, EntryNotFoundError, HFValidationError) as err:
            # The config was there, but the weights or the feature-extractor config could not be had (e.g. only
            # config.json is cached and we are offline).
            raise PretrainedSourceError(f"could not load '{self.source}': {err}; {HUB_HINT}", self.source) from err

        if not pretrained:
            self._randomize()
        if not freeze and freeze_feature_extractor:
            self._freeze_front_end()

        if layer_sum:
            # Zeros give equal softmax weights: every layer starts with the same say, as in SUPERB.
            self.layer_weights = nn.Parameter(torch.zeros(num_states))

        # Hidden states are collected with hooks on the transformer layers rather than with SpeechBrain's
        # output_all_hiddens: under transformers 5.x, hidden states are recorded by hooks that fire only for
        # layers that actually run, so with layer drop active in training the number of hidden states varies from
        # batch to batch and a weighted sum over a fixed number of layers breaks. A dropped layer is the identity,
        # so here it simply repeats the hidden state below it.
        # The hooks are plain functions that keep their state on the layer they run on (not closures over self),
        # so a deep copy of the encoder (e.g. a frozen teacher for regularised fine-tuning) records into its own
        # layers, not the original's.
        # They record nothing unless a sink is set (hidden_states), so every encoder has them.
        for index, layer in enumerate(self.model.encoder.layers):
            layer._xfer_layer_index = index
            layer._xfer_sink = None
            layer.register_forward_pre_hook(_capture_input, with_kwargs=True)
            layer.register_forward_hook(_capture_output)

        if freeze:
            self.model.eval()  # SpeechBrain's Whisper wrapper leaves a frozen model in train mode; see train()

    @property
    def model(self):
        """The wrapped ``transformers`` model (for Whisper, with its decoder removed)."""
        return self.wrapper.model

    @property
    def output_dim(self):
        """Size of the last dimension of the output."""
        return self._output_dim

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

    def _randomize(self):
        """Replaces the loaded weights with those of a new model of the same config."""
        model = self.model
        fresh = type(model)(model.config)
        if self.family == "whisper":
            model, fresh = model.encoder, fresh.encoder  # the wrapper dropped the decoder
        model.load_state_dict(fresh.state_dict())

    def _freeze_front_end(self):
        """Stops training of the convolutional front end (SpeechBrain's wrapper already did part of it)."""
        if self.family == "whisper":
            # SpeechBrain's Whisper wrapper has no such option; the front end is the two convolutions plus the
            # positional table (fixed sinusoids in Whisper, which transformers means to keep frozen).
            encoder = self.model.encoder
            for module in (encoder.conv1, encoder.conv2, encoder.embed_positions):
                module.requires_grad_(False)
        else:
            # SpeechBrain set requires_grad=False and eval mode, but the next .train() undoes eval mode and, in
            # training, transformers then marks the waveform as requiring grad, so the backward pass still runs
            # through the whole frozen conv stack. _freeze_parameters also clears that flag.
            self.model.feature_extractor._freeze_parameters()

    def train(self, mode=True):
        """Sets training mode (``mode``) and returns self, keeping a frozen encoder in eval mode (no dropout,
        no layer drop)."""
        super().train(mode)
        if self.freeze:
            # A frozen encoder is a fixed feature extractor: its features should not change from call to call.
            self.model.eval()
        return self

    def layers(self):
        """The encoder's parameters as groups, bottom to top, for freezing schedules and layer-wise LR decay.

        Group 0 is the front end: the convolutional feature extractor with the feature projection, the
        convolutional positional embedding and (wav2vec 2.0 "base"-style models) the layer norm before the first
        transformer layer; for Whisper, the two convolutions and the positional table. Groups 1..N are the
        transformer layers; the top one also holds the final layer norm where the architecture has one after the
        last layer (Whisper, wav2vec 2.0 "large"-style). Every parameter of :attr:`model` is in exactly one
        group; ``layer_weights`` (new, not pretrained) is in none.

        Returns
        -------
        list of torch.nn.Module
            ``num_layers + 1`` modules. They are views over the encoder's own modules (built on each call and
            not registered in this module, so nothing is saved twice): ``group.requires_grad_(False)`` or
            ``group.parameters()`` act on the encoder itself.
        """
        model = self.model
        encoder = model.encoder
        top_norm = encoder.layer_norm if self._has_final_norm else None

        front = _ModuleGroup()
        for name, param in model.named_parameters(recurse=False):
            front.register_parameter(name, param)
        for name, child in model.named_children():
            if child is None:
                continue  # Whisper's decoder, removed by SpeechBrain's wrapper
            if child is not encoder:
                front.add_module(name, child)
                continue
            for enc_name, param in encoder.named_parameters(recurse=False):
                front.register_parameter(f"encoder_{enc_name}", param)
            for enc_name, enc_child in encoder.named_children():
                if enc_name != "layers" and enc_child is not top_norm:
                    front.add_module(f"encoder_{enc_name}", enc_child)

        groups = [front, *encoder.layers]
        if top_norm is not None:
            top = _ModuleGroup()
            top.add_module("layer", groups[-1])
            top.add_module("final_layer_norm", top_norm)
            groups[-1] = top
        return groups

    @property
    def _has_final_norm(self):
        # Pre-LN stacks (Whisper, wav2vec 2.0 with do_stable_layer_norm) normalise after the last layer;
        # post-LN ones (wav2vec 2.0 base, HuBERT base, WavLM base) normalise before the first.
        return self.family == "whisper" or bool(getattr(self.model.config, "do_stable_layer_norm", False))

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

    def hidden_states(self, wavs, wav_lens=None):
        """Every hidden state, bottom to top, stacked as ``(batch, frames, num_layers + 1, output_dim)``: the
        front end's output and each transformer layer's (what ``layer_sum`` weighs, and what ``sbx rank`` and
        ``output_layer="auto"`` score)."""
        return torch.stack(self._all_hidden_states(wavs, wav_lens), dim=2)

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

    def _all_hidden_states(self, wavs, wav_lens):
        sink = {}
        layers = self.model.encoder.layers
        for layer in layers:
            layer._xfer_sink = sink
        try:
            last = self._encode(wavs, wav_lens)
        finally:
            for layer in layers:
                layer._xfer_sink = None
        return [self._trim(state, wavs) for state in self._hidden_states(sink, last)]

    def _encode(self, wavs, wav_lens):
        """Runs SpeechBrain's wrapper (it handles freezing, input normalisation, masks and log-mels)."""
        if self.family != "whisper":
            return self.wrapper(wavs, wav_lens)
        if self.whisper_window == "30s":
            return self.wrapper(wavs)
        with torch.no_grad() if self.freeze else contextlib.nullcontext():
            return encode_in_batch_window(self.model.encoder, self.wrapper, wavs)

    def _trim(self, states, wavs):
        """Cuts Whisper's 30 s window back to the frames that cover the (longest) input."""
        if self.family != "whisper":
            return states
        return trim_to_input(states, wavs, self.wrapper.feature_extractor.hop_length)

    def _hidden_states(self, sink, last):
        """The ``num_layers + 1`` hidden states of the last forward pass, bottom to top."""
        if "input" not in sink:
            # Every layer was dropped: the output is the front end's output (up to a final layer norm).
            return [last] * (self.num_layers + 1)
        states = [sink["input"]]
        for index in range(self.num_layers - 1):
            states.append(sink.get(index, states[-1]))
        # The encoder's final output, after the final layer norm where there is one (as transformers 4.x and
        # SUPERB count the top hidden state).
        states.append(last)
        return states


class _ModuleGroup(nn.Module):
    """A container that only groups existing modules and parameters (see :meth:`HFEncoder.layers`)."""

    def forward(self, *args, **kwargs):
        raise RuntimeError("a layer group is for selecting parameters; it cannot be called")


def _capture_input(layer, args, kwargs):
    """Forward pre-hook: the input of the first layer that runs is the front end's output (layers below it were
    dropped)."""
    sink = getattr(layer, "_xfer_sink", None)
    if sink is not None and "input" not in sink:
        sink["input"] = args[0] if args else kwargs["hidden_states"]


def _capture_output(layer, args, output):
    """Forward hook: records the layer's output hidden state under its index."""
    sink = getattr(layer, "_xfer_sink", None)
    if sink is not None:
        sink[layer._xfer_layer_index] = output[0] if isinstance(output, tuple) else output
