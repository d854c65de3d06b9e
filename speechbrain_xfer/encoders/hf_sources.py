"""Hub-format model sources for :class:`~speechbrain_xfer.encoders.hf.HFEncoder`: checked before any weights
are read, from a local folder or a hub id (offline: the HF cache), and SpeechBrain's wrapper for each family."""

import json
import os

import huggingface_hub
import huggingface_hub.constants
from huggingface_hub.errors import EntryNotFoundError, HFValidationError

from speechbrain_xfer.pretrained.errors import PretrainedSourceError

# model_type (from config.json) -> family. The self-supervised models share one layout in transformers
# (feature_extractor, feature_projection, encoder.layers) and one SpeechBrain wrapper.
SUPPORTED_MODEL_TYPES = {
    "wav2vec2": "ssl",
    "hubert": "ssl",
    "wavlm": "ssl",
    "whisper": "whisper",
}

WHISPER_WINDOWS = ("30s", "batch")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt")
FEATURE_EXTRACTOR_FILE = "preprocessor_config.json"
HUB_HINT = (
    "expected a folder saved with save_pretrained, or a hub id like facebook/wav2vec2-base; "
    "offline, a hub id must already be in the HF cache"
)


def looks_like_path(source):
    """Whether ``source`` can only be a file-system path (a hub id is ``name`` or ``org/name``)."""
    return (
        os.path.isabs(source)
        or source.startswith((".", "~"))
        or source.count("/") > 1
        or (os.sep != "/" and os.sep in source)
    )


def config_int(config, key, source):
    """An integer field of config.json (save_pretrained always writes them all)."""
    try:
        return int(config[key])
    except (KeyError, TypeError, ValueError) as err:
        raise PretrainedSourceError(f"config.json in '{source}' has no usable {key!r}: {HUB_HINT}", source) from err


def encoder_layer_count(config, source):
    """The number of transformer layers in a model's config.json (Whisper's encoder has its own key)."""
    whisper = SUPPORTED_MODEL_TYPES.get(config.get("model_type")) == "whisper"
    return config_int(config, "encoder_layers" if whisper else "num_hidden_layers", source)


def read_config(source, cache_dir):
    """Checks that ``source`` is a usable model, before any weights are read, and returns its config.json.

    Arguments
    ---------
    source : str
        Local folder or hub id.
    cache_dir : str
        Hugging Face cache folder.

    Returns
    -------
    dict
        The parsed config.json.
    """
    local = os.path.expanduser(source)
    if os.path.exists(local):
        if not os.path.isdir(local):
            raise PretrainedSourceError(f"'{source}' is a file, not a folder: {HUB_HINT}", source)
        files = os.listdir(local)
        if "config.json" not in files:
            raise PretrainedSourceError(f"no config.json in '{source}': {HUB_HINT}", source)
        if not any(name.endswith(WEIGHT_SUFFIXES) for name in files):
            raise PretrainedSourceError(
                f"no weights (*.safetensors, *.bin or *.ckpt) in '{source}': save the model with "
                f"model.save_pretrained('{source}')",
                source,
            )
        if FEATURE_EXTRACTOR_FILE not in files:
            # SpeechBrain's wrappers read it (wav2vec 2.0: whether to normalise the waveform; Whisper: the mel
            # filters), as every hub repo of these models has one.
            raise PretrainedSourceError(
                f"no {FEATURE_EXTRACTOR_FILE} in '{source}': save the model's feature extractor there too, e.g. "
                f"AutoFeatureExtractor.from_pretrained('facebook/wav2vec2-base').save_pretrained('{source}')",
                source,
            )
        config_path = os.path.join(local, "config.json")
    elif looks_like_path(source):
        raise PretrainedSourceError(f"no such folder '{source}': {HUB_HINT}", source)
    else:
        try:
            config_path = huggingface_hub.hf_hub_download(repo_id=source, filename="config.json", cache_dir=cache_dir)
        except (OSError, EntryNotFoundError, HFValidationError) as err:
            offline = " (offline: HF_HUB_OFFLINE is set)" if huggingface_hub.constants.HF_HUB_OFFLINE else ""
            raise PretrainedSourceError(
                f"'{source}' is not a local folder and its config.json could not be had from the hub or "
                f"the HF cache '{cache_dir}'{offline}: {HUB_HINT} ({type(err).__name__})",
                source,
            ) from err
    try:
        with open(config_path, encoding="utf-8") as stream:
            config = json.load(stream)
    except (OSError, ValueError) as err:
        raise PretrainedSourceError(f"unreadable config.json in '{source}': {err}", source) from err
    if not isinstance(config, dict):
        raise PretrainedSourceError(f"config.json in '{source}' is not a JSON object", source)
    return config


def write_config_folder(folder, config, feature_extractor):
    """A hub-format folder of random weights from ``config.json`` and ``preprocessor_config.json`` contents."""
    if not isinstance(config, dict) or not isinstance(feature_extractor, dict):
        raise ValueError(
            "HFEncoder needs a source (a folder or hub id), or else both config and "
            "feature_extractor (the contents of config.json and preprocessor_config.json)"
        )
    from transformers import AutoConfig, AutoModel

    with open(os.path.join(folder, FEATURE_EXTRACTOR_FILE), "w") as f:
        json.dump(feature_extractor, f)
    fields = {k: v for k, v in config.items() if k != "model_type"}
    AutoModel.from_config(AutoConfig.for_model(config.get("model_type"), **fields)).save_pretrained(folder)


def build_wrapper(family, source, cache_dir, freeze, freeze_feature_extractor):
    """SpeechBrain's wrapper for ``family``; imported here, since importing ``transformers`` takes seconds."""
    if family == "whisper":
        from speechbrain.integrations.huggingface.whisper import Whisper

        return Whisper(source=source, save_path=cache_dir, encoder_only=True, freeze=freeze)
    from speechbrain.integrations.huggingface.wav2vec2 import Wav2Vec2

    return Wav2Vec2(
        source=source, save_path=cache_dir, freeze=freeze, freeze_feature_extractor=freeze_feature_extractor
    )
