"""The backbone of :class:`~speechbrain_xfer.encoders.HFEncoder`: a pretrained Hugging Face speech encoder
(wav2vec 2.0, HuBERT, WavLM, Whisper encoder) loaded, frozen by layer, and run to every hidden state.

Loading goes through SpeechBrain's own wrappers, :class:`speechbrain.integrations.huggingface.wav2vec2.Wav2Vec2`
(which uses ``AutoModel`` and so covers wav2vec 2.0, HuBERT and WavLM) and
:class:`speechbrain.integrations.huggingface.whisper.Whisper` (``encoder_only=True``), so that a hub id such as
``facebook/wav2vec2-base`` and a local folder written by ``save_pretrained`` take exactly the same code path.
What the backbone adds on top of them: checking the source before any heavy work, layer groups for unfreezing
schedules and layer-wise learning-rate decay, the hidden states of every layer, and Whisper's window. Which
hidden state a task reads (one, their weighted sum, or the one LogME chooses) is the layer selection's
(:mod:`speechbrain_xfer.encoders.hf`).
"""

import contextlib
import os

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
)
from speechbrain_xfer.encoders.whisper_window import encode_in_batch_window, trim_to_input
from speechbrain_xfer.pretrained.errors import PretrainedSourceError


class HFBackbone(nn.Module):
    """A pretrained speech encoder from the Hugging Face hub or a local ``save_pretrained`` folder, as every
    hidden state. The arguments are :class:`~speechbrain_xfer.encoders.HFEncoder`'s of the same names, and
    ``check``: called with the backbone once its config is read (``num_layers`` known) and before any weights
    are, to refuse options that do not fit the architecture early."""

    def __init__(
        self,
        source,
        save_path=None,
        freeze=False,
        freeze_feature_extractor=True,
        whisper_window="30s",
        pretrained=True,
        check=None,
    ):
        super().__init__()
        if whisper_window not in WHISPER_WINDOWS:
            raise ValueError(f"whisper_window={whisper_window!r}: use one of {', '.join(WHISPER_WINDOWS)}")
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
        self.freeze = freeze
        self.freeze_feature_extractor = freeze_feature_extractor
        self.whisper_window = whisper_window
        if check is not None:
            check(self)

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

    def hidden_states(self, wavs, wav_lens=None):
        """Every hidden state, bottom to top, stacked as ``(batch, frames, num_layers + 1, output_dim)``: the
        front end's output and each transformer layer's (what ``layer_sum`` weighs, and what ``sbx rank`` and
        ``output_layer="auto"`` score)."""
        return torch.stack(self._all_hidden_states(wavs, wav_lens), dim=2)

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
    """A container that only groups existing modules and parameters (see :meth:`HFBackbone.layers`)."""

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
