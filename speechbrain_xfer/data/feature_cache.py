"""Frozen-encoder feature cache: encode each utterance once, reuse it every epoch.

In linear probing (``freeze_encoder: True``) the front end (filterbanks,
sentence normalization) and the encoder compute the same outputs for an
utterance in every epoch, and they cost far more than the head on top.
:func:`add_feature_cache` adds a SpeechBrain dynamic item, ``encoded``, that
runs them once per utterance (alone, unpadded, in eval mode) and saves the
``(time, dim)`` output; later epochs load it from disk. A Brain then skips its
own front end when the batch carries ``encoded`` (UtteranceClassifierBrain
does). Items are also kept in memory (up to ``memory_mb``), which spares
even the file reads in later epochs when the data loads in the main process
(``num_workers: 0``; DataLoader workers start afresh each epoch).

A cached output is used only while nothing it came from has changed:

- the front end: its folder under ``cache_root`` is named by a fingerprint of
  the modules' classes, settings and tensors (weights, buffers, statistics),
  so another encoder, or the same one with one weight changed, reads and
  writes another folder. Within a run the fingerprint is recomputed whenever
  a tensor of the front end changes in place (an optimizer step,
  ``load_state_dict``); a tensor replaced by another object
  (``load_state_dict(assign=True)``) is seen only by a new run.
- the audio: each item records its file's path, size and mtime, and is
  recomputed when they differ. Within a run, the splits that are not
  augmented return each item as first computed while it is held in memory
  (:mod:`speechbrain_xfer.data.remembered_items`).

Waveform augmentation (``wav_augment``) changes the training audio in
every epoch, so the training split is then left uncached: its batches go
through the front end as usual, augmented anew at every step, while the
validation and test splits, which are never augmented, read their exact
outputs from the cache (in linear probing, the validation pass after each
epoch is a large part of the cost). ``feature_cache_views: N`` caches the
training split too, as ``N`` augmented versions of each utterance, one
drawn at random each time the utterance is sampled. Each version is made
with a random state derived from the utterance id and the version number,
so it is the same in every run that shares the cache. That is an
approximation of augmenting anew at every step, and a measured loss: on
SynthSpeech intent at 10 shots (one seed), 8 versions made the frozen run
6.4x faster and 7.8 points less accurate (55.1 % against 62.9 %), so no
shipped recipe uses it.

Items are written to a temporary file and renamed (a killed run never leaves a half-written one); folders
of earlier front ends are left in place (delete ``cache_root`` to reclaim them).

A recipe turns it on in ``dataio_prepare``::

    datasets, label_encoders = classification_datasets(...)
    if hparams.get("feature_cache") and feature_cache_applies(hparams):
        add_feature_cache(datasets, hparams["feature_cache"], hparams["encoder"],
                          hparams.get("compute_features"), hparams.get("mean_var_norm"))

with ``feature_cache: !ref <cache_folder>/feature_cache`` (or any folder) in its YAML. The front end runs in the
process that loads the data: with the encoder on a GPU keep ``num_workers: 0`` (CUDA does not work in forked
workers); later epochs only read files (or memory) anyway.

Cached and uncached outputs agree to float precision over each utterance's
valid frames when the encoder masks padding (ConvEncoder does) and the
Brain's lengths are exact to the frame (:func:`speechbrain_xfer.lobes.features.frame_lengths`).
"""

import contextlib
import hashlib
import logging
import os
import random

import speechbrain as sb
import torch
from speechbrain.utils.data_pipeline import CachedDynamicItem

from speechbrain_xfer.data.dataio import read_mono_16k
from speechbrain_xfer.data.fingerprints import audio_fingerprint, front_end_fingerprint, front_end_tensors
from speechbrain_xfer.data.remembered_items import remember_items

logger = logging.getLogger(__name__)


def feature_cache_applies(hparams):
    """Whether the encoder's outputs stay the same from epoch to epoch, so that caching them is exact.

    They do when the encoder is frozen for good (``freeze_encoder: True``),
    ``mean_var_norm`` is absent or per sentence
    (global statistics change while training, batch ones depend on the
    batch), and no regularizer needs the encoder's input (DELTA; zero
    anyway for a frozen encoder). The reasons it does not apply are logged.
    With ``wav_augment`` it applies to the splits that are not augmented
    (see :func:`add_feature_cache`).

    Arguments
    ---------
    hparams : dict
        The recipe's hyperparameters.

    Returns
    -------
    bool

    Example
    -------
    >>> feature_cache_applies({"freeze_encoder": True})
    True
    >>> feature_cache_applies({"freeze_encoder": True, "wav_augment": object()})
    True
    >>> feature_cache_applies({"freeze_encoder": False})
    False
    """
    reasons = []
    if hparams.get("freeze_encoder", False) is not True:
        reasons.append("the encoder trains (freeze_encoder is not True)")
    norm = hparams.get("mean_var_norm")
    if norm is not None and getattr(norm, "norm_type", None) != "sentence":
        reasons.append(
            f"mean_var_norm ({type(norm).__name__}, norm_type={getattr(norm, 'norm_type', None)!r}) is not per sentence"
        )
    for name, regularizer in (hparams.get("regularizers") or {}).items():
        if "encoder_input" in getattr(regularizer, "inputs", ()):
            reasons.append(f"regularizer {name!r} needs the encoder's input")
    if reasons:
        logger.info("Frozen-encoder feature cache off: %s", "; ".join(reasons))
    return not reasons


def add_feature_cache(
    datasets,
    cache_root,
    encoder,
    compute_features=None,
    mean_var_norm=None,
    memory_mb=1024,
    wav_augment=None,
    views=0,
    train_split="train",
):
    """Adds the dynamic item ``encoded`` to ``datasets`` and outputs it instead of ``sig``.

    Arguments
    ---------
    datasets : dict or list of DynamicItemDataset
        Datasets with ``id`` and ``wav`` (e.g. from ``classification_datasets``).
    cache_root : str
        Folder of the cache; one subfolder per front-end fingerprint.
    encoder : torch.nn.Module
        The frozen encoder, called as ``encoder(x, lengths)``. The live module
        (the Brain's), not a copy: weights loaded into it later are used.
    compute_features : torch.nn.Module, optional
        Waveform to features (e.g. ``Fbank``); None if the encoder takes waveforms.
    mean_var_norm : torch.nn.Module, optional
        Per-sentence normalization, called as ``mean_var_norm(x, lengths)``.
    memory_mb : float
        How many MiB of items to keep in memory as well (per process); 0 reads every item from disk.
    wav_augment : torch.nn.Module, optional
        The training augmentation (e.g. a SpeechBrain ``Augmenter``), called as
        ``wav_augment(wavs, lengths)``. ``datasets[train_split]`` is then left
        uncached (the Brain augments its batches), or, with ``views``, cached as
        augmented versions.
    views : int
        How many augmented versions of each training utterance to keep (with
        ``wav_augment``); 0 leaves the training split uncached.
    train_split : str
        The key of the training dataset in ``datasets`` (with ``wav_augment``).

    Returns
    -------
    FrozenEncoderCache
        The dynamic item of the splits that are not augmented.
    """
    if wav_augment is not None:
        if not isinstance(datasets, dict) or train_split not in datasets:
            raise ValueError(f"with wav_augment, datasets must be a dict with the training split {train_split!r}")
        if int(views) < 0:
            raise ValueError(f"views must be 0 (training split uncached) or more, not {views!r}")
        if int(views) > 0:
            augmented = FrozenEncoderCache(
                cache_root,
                encoder,
                compute_features,
                mean_var_norm,
                memory_mb,
                wav_augment=wav_augment,
                views=int(views),
            )
            _use_item([datasets[train_split]], augmented)
        datasets = [d for key, d in datasets.items() if key != train_split]
    datasets = list(datasets.values()) if isinstance(datasets, dict) else list(datasets)
    item = FrozenEncoderCache(cache_root, encoder, compute_features, mean_var_norm, memory_mb)
    _use_item(datasets, item)
    for dataset in datasets:  # their items never change while the cache holds them (no augmentation)
        remember_items(dataset, item.kept, item.state_token)
    return item


def _use_item(datasets, item):
    if not datasets:
        return
    sb.dataio.dataset.add_dynamic_item(datasets, item)
    for dataset in datasets:
        # Leaving out ``sig`` spares reading every waveform again in each epoch.
        mapping = {out: key for out, key in dataset.pipeline.output_mapping.items() if key != "sig"}
        dataset.set_output_keys({**mapping, "encoded": "encoded"})


class FrozenEncoderCache(CachedDynamicItem):
    """Takes ``id`` and ``wav``, provides ``encoded``: the front end's ``(time, dim)`` output, cached on disk.

    Arguments
    ---------
    cache_root : str
        Folder of the cache; items go to ``cache_root/<fingerprint>/<id>.pt``.
    encoder : torch.nn.Module
        Called as ``encoder(x, lengths)``.
    compute_features : torch.nn.Module, optional
        Waveform to features.
    mean_var_norm : torch.nn.Module, optional
        Called as ``mean_var_norm(x, lengths)``.
    memory_mb : float
        How many MiB of items to keep in memory as well; items past that are read from disk each time.
    wav_augment : torch.nn.Module, optional
        Waveform augmentation, called as ``wav_augment(wavs, lengths)`` before the front end: the item
        then keeps ``views`` augmented versions of each utterance and returns one, drawn at random
        (Python's ``random``), at each call. Part of the fingerprint.
    views : int
        How many augmented versions to keep (with ``wav_augment``).

    Example
    -------
    >>> import soundfile
    >>> folder = getfixture("tmp_path")
    >>> soundfile.write(folder / "a.wav", torch.randn(8000).numpy() * 0.1, 16000)
    >>> from speechbrain_xfer.encoders.conv import ConvEncoder
    >>> from speechbrain.lobes.features import Fbank
    >>> cache = FrozenEncoderCache(folder / "cache", ConvEncoder(40, (8,), (2,)), Fbank(n_mels=40))
    >>> cache("a", str(folder / "a.wav")).shape  # 51 frames, subsampled by 2
    torch.Size([26, 8])
    >>> sorted(p.name for p in cache.cache_location.iterdir())
    ['a.pt']
    """

    def __init__(
        self, cache_root, encoder, compute_features=None, mean_var_norm=None, memory_mb=1024, wav_augment=None, views=1
    ):
        self.front_end = {"compute_features": compute_features, "mean_var_norm": mean_var_norm, "encoder": encoder}
        if wav_augment is not None:
            self.front_end = {"wav_augment": wav_augment, **self.front_end}
        self.views = views if wav_augment is not None else 1
        for role, module in self.front_end.items():
            if module is not None and not isinstance(module, torch.nn.Module):
                raise TypeError(f"{role} must be a torch.nn.Module, not {type(module).__name__}")
        self.cache_root = cache_root
        self.fingerprint = front_end_fingerprint(self.front_end)
        self._tracked = [tensor for _, tensor in front_end_tensors(self.front_end)]
        self._token = self.state_token()
        self.memory_limit = memory_mb * 2**20
        self._memory, self._memory_bytes = {}, 0
        super().__init__(
            os.path.join(cache_root, self.fingerprint[:16]), takes=["id", "wav"], func=self.encode, provides=["encoded"]
        )

    def __call__(self, uid, wav):
        self._follow_front_end()
        if "wav_augment" in self.front_end:
            uid = f"{uid}.view{random.randrange(self.views)}"
        audio = audio_fingerprint(wav)
        kept = self._memory.get(uid)
        if kept is not None and kept[0] == audio:
            return kept[1]
        cached = self._read_item(uid)
        if cached is not None and cached["audio"] == audio:
            encoded = cached["encoded"]
        else:
            encoded = self.encode(wav, view=uid)
            self._write_item({"audio": audio, "encoded": encoded}, uid)
        self._keep(uid, audio, encoded, wav)
        return encoded

    def encode(self, wav, view=None):
        """The front end's output for one utterance, alone, in eval mode: a ``(time, dim)`` CPU tensor.

        The audio is read as the datasets read ``sig`` (``read_mono_16k``: 16 kHz, down-mixed). With
        ``wav_augment``, it is augmented first, with random states seeded from ``view`` (a string).
        """
        x = read_mono_16k(wav).unsqueeze(0)
        if "wav_augment" in self.front_end:
            x = _augment(self.front_end["wav_augment"], x, view)
        with torch.no_grad(), _eval_mode(m for m in self.front_end.values() if m is not None):
            for role in ("compute_features", "mean_var_norm", "encoder"):
                module = self.front_end[role]
                if module is None:
                    continue
                x = x.to(_device_of(module, x.device))
                if role == "encoder":
                    # An encoder that says so caches something it finishes later (HFEncoder: all hidden states,
                    # summed with weights that train).
                    module = getattr(module, "cached_forward", module)
                x = module(x) if role == "compute_features" else module(x, torch.ones(1, device=x.device))
        return x[0].cpu()

    def _follow_front_end(self):
        """Moves to the folder of the front end's current fingerprint if one of its tensors changed."""
        token = self.state_token()
        if token == self._token:
            return
        self._token = token
        self._tracked = [tensor for _, tensor in front_end_tensors(self.front_end)]
        fingerprint = front_end_fingerprint(self.front_end)
        if fingerprint != self.fingerprint:
            logger.info("The front end changed; caching its outputs in a new folder")
            self._memory, self._memory_bytes = {}, 0
            self.fingerprint = fingerprint
            self.cache_location = self.cache_location.parent / fingerprint[:16]
            self.cache_location.mkdir(parents=True, exist_ok=True)

    def state_token(self):
        """Changes whenever a tensor of the front end changes in place (an optimizer step, load_state_dict bump its
        version counter): reading the counters costs microseconds, hashing the tensors milliseconds."""
        return tuple(tensor._version for tensor in self._tracked)

    def kept(self, item):
        """Whether a dataset item's ``encoded`` is the one this cache holds in memory for its ``id``, and its audio
        file is unchanged."""
        kept = self._memory.get(item.get("id"))
        return kept is not None and kept[1] is item.get("encoded") and audio_fingerprint(kept[2]) == kept[0]

    def _keep(self, uid, audio, encoded, wav):
        """Keeps an item in memory too, while the items kept fit in ``memory_mb``."""
        if uid in self._memory:
            self._memory_bytes -= _nbytes(self._memory.pop(uid)[1])
        if self._memory_bytes + _nbytes(encoded) <= self.memory_limit:
            self._memory[uid] = (audio, encoded, wav)
            self._memory_bytes += _nbytes(encoded)

    # CachedDynamicItem's own reading and writing (its private _load and _cache) are not used: these read
    # with weights_only, survive a cut-short file and write atomically.
    def _item_path(self, uid):
        return self.cache_location / f"{uid}.pt"

    def _read_item(self, uid):
        path = self._item_path(uid)
        if not path.exists():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, OSError) as error:  # e.g. a file cut short by a full disk
            logger.warning("Recomputing the unreadable cache item %s: %s", path, error)
            return None

    def _write_item(self, result, uid):
        path = self._item_path(uid)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        torch.save(result, tmp)
        os.replace(tmp, path)


def _augment(wav_augment, x, view):
    """``wav_augment`` on one ``(1, samples)`` waveform, under random states seeded from ``view``.

    The caller's random states (Python's and torch's CPU one) are left as they were.
    """
    seed = int.from_bytes(hashlib.sha256(str(view).encode()).digest()[:8], "little")
    state = random.getstate()
    try:
        random.seed(seed)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            augmented, _ = wav_augment(x, torch.ones(1))
    finally:
        random.setstate(state)
    if augmented.shape[0] != 1:
        raise ValueError(
            f"wav_augment returned {augmented.shape[0]} waveforms for one: cached augmented versions "
            f"need one output per input (Augmenter with concat_original: False and repeat_augment: "
            f"1)"
        )
    return augmented


def _nbytes(tensor):
    return tensor.numel() * tensor.element_size()


def _device_of(module, default):
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return default


@contextlib.contextmanager
def _eval_mode(modules):
    modules = list(modules)
    modes = [(sub, sub.training) for module in modules for sub in module.modules()]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for sub, mode in modes:
            sub.training = mode
