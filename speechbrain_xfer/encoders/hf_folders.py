"""Hub-format encoder folders: new ones from random weights, exports of trained ones, and the HF cache layout.

A folder written here is what ``save_pretrained`` writes for a hub model (``config.json``,
``model.safetensors``, ``preprocessor_config.json``), so :class:`~speechbrain_xfer.encoders.HFEncoder`,
``transformers.AutoModel.from_pretrained`` and SpeechBrain's own wrappers load it as they load
``facebook/wav2vec2-base``. :func:`add_to_hf_cache` puts a copy where a hub id downloaded once is found, so
that ``source: <org>/<name>`` resolves offline (``HF_HUB_OFFLINE=1``) through the hub-id code path.
"""

import hashlib
import json
import logging
import os
import shutil

import huggingface_hub.constants

logger = logging.getLogger(__name__)

FOLDER_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")


def model_classes(model_type):
    """(config class, model class, feature-extractor class) of a model type (imported here: transformers imports
    slowly)."""
    from transformers import (
        HubertConfig,
        HubertModel,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
        WavLMConfig,
        WavLMModel,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperModel,
    )

    classes = {
        "wav2vec2": (Wav2Vec2Config, Wav2Vec2Model, Wav2Vec2FeatureExtractor),
        "hubert": (HubertConfig, HubertModel, Wav2Vec2FeatureExtractor),
        "wavlm": (WavLMConfig, WavLMModel, Wav2Vec2FeatureExtractor),
        "whisper": (WhisperConfig, WhisperModel, WhisperFeatureExtractor),
    }
    if model_type not in classes:
        raise ValueError(f"model_type {model_type!r}: use one of {', '.join(classes)}")
    return classes[model_type]


def _feature_extractor(model_type, config, settings=None):
    extractor_class = model_classes(model_type)[2]
    if model_type == "whisper":
        return extractor_class(**{"feature_size": config.num_mel_bins, **(settings or {})})
    # As wav2vec2-base's: zero-mean unit-variance waveforms, attention masks for padded batches.
    return extractor_class(**{"do_normalize": True, "return_attention_mask": True, **(settings or {})})


def is_complete(folder):
    """Whether ``folder`` holds the three files of a hub-format encoder."""
    return all(os.path.isfile(os.path.join(folder, name)) for name in FOLDER_FILES)


def write_random_encoder(folder, model_type, seed=0, config=None, feature_extractor=None):
    """Writes a hub-format encoder of random weights to ``folder`` (once) and returns the folder.

    The starting point of pretraining an encoder here: a recipe YAML builds its encoder from the folder this
    returns, exactly as from a downloaded one. A folder that is already complete is kept (a resumed run starts
    from the same weights), unless its config differs from the one asked for.

    Arguments
    ---------
    folder : str or os.PathLike
        Where to write ``config.json``, ``model.safetensors`` and ``preprocessor_config.json``.
    model_type : str
        ``wav2vec2``, ``hubert``, ``wavlm`` or ``whisper``.
    seed : int
        Seed of the random weights.
    config : dict, optional
        Fields of the model's ``transformers`` config (e.g. ``d_model``, ``encoder_layers``); the rest keep
        transformers' defaults.
    feature_extractor : dict, optional
        Settings of its feature extractor (``preprocessor_config.json``), e.g. Whisper's ``hop_length``.

    Returns
    -------
    str
        ``folder``.

    Example
    -------
    >>> folder = write_random_encoder(getfixture("tmp_path") / "w", "whisper", config=dict(
    ...     d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
    ...     encoder_ffn_dim=32, decoder_ffn_dim=32))
    >>> sorted(os.listdir(folder))
    ['config.json', 'model.safetensors', 'preprocessor_config.json']
    """
    import torch

    folder = os.fspath(folder)
    config_class, model_class, _ = model_classes(model_type)
    wanted = config_class(**(config or {}))
    if is_complete(folder):
        with open(os.path.join(folder, "config.json")) as f:
            saved = json.load(f)
        differing = sorted(k for k, v in (config or {}).items() if _as_json(saved.get(k)) != _as_json(v))
        if saved.get("model_type") != model_type or differing:
            raise ValueError(
                f"{folder} already holds a {saved.get('model_type')} encoder whose config differs in "
                f"{differing or ['model_type']}; delete the folder or write the new one elsewhere"
            )
        logger.info("random %s encoder found in %s", model_type, folder)
        return folder
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(wanted)
    if model_type == "whisper":
        # Only the encoder is used: its folder holds no decoder weights (AutoModel gives a random decoder).
        model.decoder = None
    save_encoder_folder(model, _feature_extractor(model_type, wanted, feature_extractor), folder)
    logger.info("random %s encoder written to %s", model_type, folder)
    return folder


def _as_json(value):
    return json.loads(json.dumps(value))


def save_encoder_folder(model, feature_extractor, folder, extra_files=None):
    """Writes a ``transformers`` encoder and its feature extractor with ``save_pretrained``, atomically.

    The files are written to a temporary sibling folder that then takes ``folder``'s place, so a kill leaves
    either the old folder or the new one, never a mix.

    Arguments
    ---------
    model : transformers.PreTrainedModel
        The encoder (for Whisper, a ``WhisperModel`` whose decoder may be None: only the encoder is saved).
    feature_extractor : transformers.FeatureExtractionMixin
        Its feature extractor (``preprocessor_config.json``).
    folder : str or os.PathLike
        The destination.
    extra_files : dict, optional
        ``{file name: state dict}`` saved with ``torch.save`` beside them, or ``{file name: path}`` copied.
    """
    import torch

    folder = os.fspath(folder)
    staging = f"{folder}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    write_encoder_files(model, feature_extractor, staging)
    for name, content in (extra_files or {}).items():
        if isinstance(content, (str, os.PathLike)):
            shutil.copyfile(content, os.path.join(staging, name))
        else:
            torch.save(content, os.path.join(staging, name))
    if os.path.isdir(folder):
        old = f"{folder}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
        os.replace(staging, folder)
        shutil.rmtree(old)
    else:
        os.makedirs(os.path.dirname(os.path.abspath(folder)), exist_ok=True)
        os.replace(staging, folder)


def write_encoder_files(model, feature_extractor, folder):
    """``save_pretrained`` of a ``transformers`` encoder and its feature extractor into ``folder`` (made if
    needed): ``config.json``, ``model.safetensors``, ``preprocessor_config.json``."""
    state = model.state_dict()
    if getattr(model, "decoder", "absent") is None:
        # WhisperModel without its decoder: save_pretrained would look for the tied decoder weights.
        state = {k: v for k, v in state.items() if not k.startswith("decoder.")}
    model.save_pretrained(folder, state_dict=state)
    feature_extractor.save_pretrained(folder)


def add_to_hf_cache(folder, repo_id, cache_dir=None):
    """Copies a hub-format folder into the Hugging Face cache as ``repo_id``, as a download would leave it.

    The layout is the hub cache's (``models--<org>--<name>/refs/main`` naming the snapshot
    ``models--<org>--<name>/snapshots/<revision>/``), so ``HFEncoder("<org>/<name>")``,
    ``transformers.AutoModel.from_pretrained`` and SpeechBrain's wrappers find it with ``HF_HUB_OFFLINE=1``.
    The revision is a hash of the files, so a changed folder becomes a new snapshot that ``refs/main`` names.

    Arguments
    ---------
    folder : str or os.PathLike
        A hub-format folder (see :func:`is_complete`).
    repo_id : str
        ``<org>/<name>``.
    cache_dir : str or os.PathLike, optional
        The cache; the standard one (``HF_HUB_CACHE``) by default.

    Returns
    -------
    str
        The snapshot folder.

    Example
    -------
    >>> src = getfixture("tmp_path") / "model"
    >>> src.mkdir()
    >>> for name in FOLDER_FILES:
    ...     _ = (src / name).write_text("{}")
    >>> snapshot = add_to_hf_cache(src, "my-org/tiny", cache_dir=getfixture("tmp_path") / "hub")
    >>> snapshot.split(os.sep)[-3:-1]
    ['models--my-org--tiny', 'snapshots']
    """
    folder = os.fspath(folder)
    if not is_complete(folder):
        missing = [name for name in FOLDER_FILES if not os.path.isfile(os.path.join(folder, name))]
        raise FileNotFoundError(f"{folder} is not a hub-format encoder folder: {', '.join(missing)} missing")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"repo_id {repo_id!r}: use <org>/<name>")
    cache_dir = os.fspath(cache_dir) if cache_dir is not None else huggingface_hub.constants.HF_HUB_CACHE
    files = sorted(name for name in os.listdir(folder) if os.path.isfile(os.path.join(folder, name)))
    digest = hashlib.sha1()
    for name in files:
        digest.update(name.encode())
        with open(os.path.join(folder, name), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    revision = digest.hexdigest()
    repo = os.path.join(cache_dir, "models--" + repo_id.replace("/", "--"))
    snapshot = os.path.join(repo, "snapshots", revision)
    if not os.path.isdir(snapshot):
        staging = f"{snapshot}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(staging)
        for name in files:
            shutil.copy2(os.path.join(folder, name), staging)
        os.replace(staging, snapshot)
    os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
    with open(os.path.join(repo, "refs", "main"), "w") as f:
        f.write(revision)
    logger.info("%s is in the HF cache as %s (%s)", folder, repo_id, snapshot)
    return snapshot


MODEL_PREFIX = "wrapper.model."
"""Where an HFEncoder's state dict holds the ``transformers`` model's weights."""


def encoder_extras(encoder):
    """What an :class:`~speechbrain_xfer.encoders.HFEncoder`'s state dict holds beyond the ``transformers``
    model's weights (the layer-sum weights, Whisper's mel filters): an export's ``encoder.ckpt``."""
    return {k: v for k, v in encoder.state_dict().items() if not k.startswith(MODEL_PREFIX)}


def load_model_weights(model, path):
    """SpeechBrain ``Pretrainer`` hook: a ``transformers`` model's weights from a ``model.safetensors`` file.

    Strict but for weights the folder never holds (a Whisper encoder's dropped decoder).
    """
    from safetensors.torch import load_file

    state = load_file(os.fspath(path))
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("decoder.")]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{path} does not fit the {type(model).__name__} of this hyperparams.yaml: missing "
            f"{missing[:5]}, unexpected {result.unexpected_keys[:5]}"
        )


def load_encoder_extras(encoder, path):
    """SpeechBrain ``Pretrainer`` hook: an export's ``encoder.ckpt`` (see :func:`encoder_extras`)."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    result = encoder.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(MODEL_PREFIX)]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{path} does not fit the HFEncoder of this hyperparams.yaml: missing {missing[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )
