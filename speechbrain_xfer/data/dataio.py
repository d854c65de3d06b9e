"""SpeechBrain data pipelines shared by the recipes."""

import hashlib
import logging
import os
import tempfile

import numpy as np
import speechbrain as sb
import torch
from speechbrain.dataio.encoder import CategoricalEncoder
from speechbrain.dataio.preprocess import AudioNormalizer

# ManifestError (of data.manifest) is imported from here too.
from speechbrain_xfer.data.manifest import ManifestError, read_manifest
from speechbrain_xfer.data.sampling import item_durations
from speechbrain_xfer.data.tokenizers import TRANSCRIPT, CharTokenizer, SentencePieceTokenizer
from speechbrain_xfer.data.validation import SAMPLE_RATE, active_cache_folder, check_manifests

logger = logging.getLogger(__name__)


def _audio_datasets(data_folder, csv_files, save_folder, label_columns=(), class_columns=()):
    """``{split: DynamicItemDataset}`` from the manifests, each item's audio as ``sig``, and the manifests read.

    These are ``csv_files``, or, when :func:`~speechbrain_xfer.data.validation.manifest_checks` skips bad
    items, copies without them: whatever else reads the manifests (labels, tokenizer) must read those.
    """
    for split, path in csv_files.items():
        if not os.path.isfile(path):
            raise ManifestError(f"the {split} manifest {path} does not exist; prepare the data first")
    csv_files = check_manifests(csv_files, data_folder, save_folder, label_columns, class_columns)
    datasets = {
        split: sb.dataio.dataset.DynamicItemDataset.from_csv(path, replacements={"data_root": data_folder})
        for split, path in csv_files.items()
    }
    cache_folder = active_cache_folder()
    read = ResampledAudioCache(os.path.join(cache_folder, RESAMPLED_FOLDER)) if cache_folder else read_mono_16k

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav):
        return read(wav)

    sb.dataio.dataset.add_dynamic_item(list(datasets.values()), audio_pipeline)
    # Evaluation batches of neighbours in duration carry less padding (the training sampler groups its own).
    for split in ("valid", "test"):
        if split in datasets and item_durations(datasets[split]) is not None:
            datasets[split] = datasets[split].filtered_sorted(sort_key="duration")
    return datasets, csv_files


_TO_16K_MONO = AudioNormalizer(sample_rate=SAMPLE_RATE, mix="avg-to-mono")


def read_mono_16k(path):
    """The audio of ``path`` as a 1-D tensor at 16 kHz, channels averaged.

    Files at other rates or with several channels are converted as they are read, with SpeechBrain's
    ``AudioNormalizer``; the check before training (:mod:`speechbrain_xfer.data.validation`) logs how many.

    Example
    -------
    >>> import numpy as np, soundfile
    >>> path = getfixture("tmp_path") / "stereo.wav"
    >>> soundfile.write(path, np.ones((44100, 2)) * [0.5, 0.1], 44100)
    >>> audio = read_mono_16k(str(path))
    >>> audio.shape, round(float(audio[8000]), 3)
    (torch.Size([16000]), 0.3)
    """
    return _read_16k_mono(path)[0]


def _read_16k_mono(path):
    """``(audio, converted)``: the audio of ``path`` at 16 kHz mono, and whether it had to be converted."""
    audio, rate = sb.dataio.audio_io.load(path, channels_first=False)
    if rate == SAMPLE_RATE and audio.shape[1] == 1:
        return audio[:, 0], False
    return _TO_16K_MONO(audio, rate), True


RESAMPLED_FOLDER = "audio_16k"
"""The folder of a run's cache folder where :class:`ResampledAudioCache` keeps the converted audio."""


class ResampledAudioCache:
    """:func:`read_mono_16k` that converts each file once: what is not 16 kHz mono is kept in ``folder``.

    An 8 kHz or 48 kHz corpus is resampled on its first epoch only, and once for all the runs of a grid that
    share the cache folder. A converted file is found again by its path, size and modification time (a file
    changed in place is converted again); files already at 16 kHz mono are read as they are, never copied.

    Arguments
    ---------
    folder : str
        Where the converted audio is kept (``.npy``, float32, written atomically: runs and data-loading
        workers may share it).

    Example
    -------
    >>> import numpy as np, soundfile
    >>> path = getfixture("tmp_path") / "phone.wav"
    >>> soundfile.write(path, np.sin(np.arange(8000) / 5.0) * 0.5, 8000)
    >>> read = ResampledAudioCache(str(getfixture("tmp_path") / "cache"))
    >>> first = read(str(path)); again = read(str(path))
    >>> first.shape, bool(torch.equal(first, again)), bool(torch.equal(first, read_mono_16k(str(path))))
    (torch.Size([16000]), True, True)
    >>> read.converted, read.reused
    (1, 1)
    """

    def __init__(self, folder):
        self.folder = folder
        self.native = set()  # paths read as they are: 16 kHz mono
        self.converted = self.reused = 0

    def __call__(self, path):
        """The audio of ``path``, a 1-D float32 tensor at 16 kHz."""
        if path in self.native:
            return read_mono_16k(path)
        stat = os.stat(path)
        key = hashlib.sha1(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
        cached = os.path.join(self.folder, key[:2], f"{key}.npy")
        try:
            audio = torch.from_numpy(np.load(cached))
            self.reused += 1
            return audio
        except (FileNotFoundError, ValueError, EOFError):  # not there yet, or cut short by a kill: convert again
            pass
        audio, converted = _read_16k_mono(path)
        if not converted:
            self.native.add(path)
            return audio
        self._keep(cached, audio)
        self.converted += 1
        return audio

    @staticmethod
    def _keep(cached, audio):
        folder = os.path.dirname(cached)
        try:
            os.makedirs(folder, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, suffix=".partial", delete=False) as f:
                np.save(f, audio.numpy().astype(np.float32, copy=False))
            os.replace(f.name, cached)
        except OSError as error:  # a full or read-only disk slows the run down; it does not stop it
            logger.debug("could not keep the resampled audio in %s (%s)", cached, error)


def manifest_labels(path, column):
    """``{ID: label}`` of a manifest's ``column``; a :class:`ManifestError` names a missing column."""
    manifest = read_manifest(path, ("ID", column), hint="check the recipe's `targets` or the manifest")
    return {row["ID"]: row[column] for row in manifest.rows}


def classification_datasets(data_folder, csv_files, targets, save_folder):
    """Datasets yielding ``sig`` and, per target, the label and its index.

    Arguments
    ---------
    data_folder : str
        Replaces ``$data_root`` in the manifests' ``wav`` column.
    csv_files : dict
        ``{"train": path, "valid": path, "test": path}``.
    targets : list of str
        Label columns, e.g. ``["intent"]`` or ``["action", "object", "location"]``.
    save_folder : str
        Where the label encoders are saved (and reloaded on resume).

    Returns
    -------
    datasets : dict
        ``{split: DynamicItemDataset}``.
    label_encoders : dict
        ``{target: CategoricalEncoder}``, built from the training manifest.
    """
    datasets, csv_files = _audio_datasets(data_folder, csv_files, save_folder, targets, targets)
    label_encoders = {}
    os.makedirs(save_folder, exist_ok=True)
    for target in targets:
        known = set(manifest_labels(csv_files["train"], target).values())
        for path in csv_files.values():
            unknown = {(i, label) for i, label in manifest_labels(path, target).items() if label not in known}
            if unknown:
                shown = ", ".join(f"{i}={label!r}" for i, label in sorted(unknown)[:5])
                raise ManifestError(
                    f"{path}: {len(unknown)} {target} labels never seen in training ({shown}); "
                    f"every class needs training examples"
                )
        encoder = CategoricalEncoder()
        encoder.load_or_create(
            os.path.join(save_folder, f"label_encoder_{target}.txt"),
            from_didatasets=[datasets["train"]],
            output_key=target,
        )
        label_encoders[target] = encoder
        sb.dataio.dataset.add_dynamic_item(list(datasets.values()), _label_pipeline(target, encoder))
    keys = ["id", "sig", *targets, *(f"{t}_encoded" for t in targets)]
    sb.dataio.dataset.set_output_keys(list(datasets.values()), keys)
    return datasets, label_encoders


def _label_pipeline(target, encoder):
    @sb.utils.data_pipeline.takes(target)
    @sb.utils.data_pipeline.provides(f"{target}_encoded")
    def pipeline(label):
        return encoder.encode_label_torch(label)

    return pipeline


# -- ASR: transcripts as CTC tokens -----------------------------------------


def _transcripts(path):
    hint = "ASR manifests need the text of each utterance there"
    return [row[TRANSCRIPT] for row in read_manifest(path, (TRANSCRIPT,), hint=hint).rows]


def asr_datasets(
    data_folder,
    csv_files,
    save_folder,
    tokenizer="char",
    vocab_size=None,
    model_type="unigram",
    alphabet="",
    tokenizer_source=None,
):
    """Datasets yielding ``sig``, ``transcript`` and its CTC ``tokens``, and their tokenizer.

    The tokenizer is built from the training manifest's transcripts and saved
    in ``save_folder``; a later run (a resumed one) reloads it from there as
    it is, so clear ``save_folder`` after changing the training manifest.

    Arguments
    ---------
    data_folder : str
        Replaces ``$data_root`` in the manifests' ``wav`` column.
    csv_files : dict
        ``{"train": path, "valid": path, "test": path}``; each manifest has a
        ``transcript`` column.
    save_folder : str
        Where the tokenizer is saved (and reloaded on resume).
    tokenizer : str
        ``"char"`` (characters) or ``"sentencepiece"``.
    vocab_size : int
        Number of SentencePiece tokens, blank included; sentencepiece only.
    model_type : str
        SentencePiece model: ``"unigram"``, ``"bpe"`` or ``"char"``.
    alphabet : str
        Characters always in the character set (``tokenizer="char"``), e.g.
        ``"abcdefghijklmnopqrstuvwxyz '"``: the CTC head's size is then fixed.
    tokenizer_source : str, optional
        A pretrained CTC model (folder or hub id) whose character set to use
        instead of building one (``tokenizer="char"`` only), so that its CTC
        head can be fine-tuned: see :meth:`CharTokenizer.from_source`.

    Returns
    -------
    datasets : dict
        ``{split: DynamicItemDataset}`` with output keys ``id``, ``sig``,
        ``transcript`` and ``tokens`` (a LongTensor).
    tokenizer : CharTokenizer or SentencePieceTokenizer
        ``encode(text)``, ``decode(ids)``, ``blank_index``, ``vocabulary()``
        and ``len()``.
    """
    datasets, csv_files = _audio_datasets(data_folder, csv_files, save_folder, [TRANSCRIPT])
    for path in csv_files.values():
        _transcripts(path)
    os.makedirs(save_folder, exist_ok=True)
    text_tokenizer = _asr_tokenizer(
        tokenizer, csv_files["train"], save_folder, vocab_size, model_type, alphabet, tokenizer_source
    )

    @sb.utils.data_pipeline.takes(TRANSCRIPT)
    @sb.utils.data_pipeline.provides("tokens")
    def text_pipeline(transcript):
        return torch.LongTensor(text_tokenizer.encode(transcript))

    sb.dataio.dataset.add_dynamic_item(list(datasets.values()), text_pipeline)
    sb.dataio.dataset.set_output_keys(list(datasets.values()), ["id", "sig", TRANSCRIPT, "tokens"])
    return datasets, text_tokenizer


def _asr_tokenizer(kind, train_csv, save_folder, vocab_size, model_type, alphabet="", source=None):
    if source is not None and kind != "char":
        raise ValueError(
            f"tokenizer_source takes a pretrained model's character set (tokenizer='char'); "
            f"with tokenizer={kind!r} leave it out"
        )
    if kind == "char":
        path = os.path.join(save_folder, "char_tokenizer.txt")
        if source is not None:
            return CharTokenizer.from_source(source, path, _transcripts(train_csv))
        return CharTokenizer.load_or_create(path, _transcripts(train_csv), alphabet)
    if kind == "sentencepiece":
        if vocab_size is None:
            raise ValueError("tokenizer='sentencepiece' needs a vocab_size (e.g. 100 for a few hundred sentences)")
        return SentencePieceTokenizer(os.path.join(save_folder, "sentencepiece"), vocab_size, train_csv, model_type)
    raise ValueError(f"unknown tokenizer {kind!r}; use 'char' or 'sentencepiece'")


def prepare_classification(hparams):
    """The ``dataio_prepare`` of the classification recipes (keywords, intent, emotion).

    Reads ``data_folder``, ``train_csv``/``valid_csv``/``test_csv``, ``targets``
    and ``save_folder``; puts the label encoders in ``hparams["label_encoders"]``
    and returns the datasets.
    """
    csvs = {split: hparams[f"{split}_csv"] for split in ("train", "valid", "test")}
    datasets, hparams["label_encoders"] = classification_datasets(
        hparams["data_folder"], csvs, hparams["targets"], hparams["save_folder"]
    )
    return datasets
