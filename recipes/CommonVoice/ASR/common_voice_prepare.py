"""Manifests for one language of Mozilla Common Voice from the release's own folder layout.

A language folder of a release (``cv-corpus-<version>/<language>/``) holds the
tab-separated ``train.tsv``, ``dev.tsv`` and ``test.tsv`` (columns
``client_id, path, sentence, up_votes, down_votes, age, gender, ...``; the
newest releases add ``sentence_id`` and others; ``path`` is a file name in
``clips/``), the other lists (``validated.tsv``, ``other.tsv``, ...; not used
here) and the MP3 clips under ``clips/`` (48 kHz or 32 kHz, mono).

The clips are decoded (soundfile >= 0.12 with libsndfile >= 1.1 reads MP3),
resampled to 16 kHz and written once as 16-bit WAVs to ``<save_folder>/wavs/``:
the recipe's data pipeline reads audio as it is and does not resample, and a
wav2vec 2.0 encoder expects 16 kHz. A clip already converted (by an
interrupted run) is not converted again.

Transcripts are normalized lightly (:func:`normalize_text`): Unicode NFKC,
lowercase, typographic apostrophes made ``'``; every character that is not a
letter, a combining mark, a number, an apostrophe or a space becomes a space
(Unicode categories L, M, N); apostrophes that start or end a word are dropped
(``w'umukobwa`` keeps its own); runs of spaces become one. Utterances whose
transcript is empty after that are left out (and counted in the log). Digits
are kept as digits, not spelled out.
"""

import csv
import logging
import os
import unicodedata

import soundfile as sf
import torch
import torchaudio

from speechbrain_xfer.data.prepare import already_prepared, mark_prepared

logger = logging.getLogger(__name__)

SPLITS = {"train": "train.tsv", "valid": "dev.tsv", "test": "test.tsv"}
SOURCE_COLUMNS = ("client_id", "path", "sentence")
FIELDS = ["ID", "duration", "wav", "spk_id", "transcript"]
SAMPLE_RATE = 16000
OPTIONS_FILE = "common_voice_prepare.json"
APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})


def prepare_common_voice(data_folder, save_folder, skip_prep=False):
    """Writes ``train.csv``, ``valid.csv`` and ``test.csv`` (ID, duration, wav, spk_id, transcript) to ``save_folder``.

    ``valid`` is Common Voice's ``dev.tsv``. ID is the clip's file name
    without ``.mp3``; spk_id is ``client_id``; wav is the absolute path of the
    16 kHz WAV in ``<save_folder>/wavs/``.

    Arguments
    ---------
    data_folder : str
        One language of a Common Voice release, e.g. ``cv-corpus-6.1-2020-12-11/rw``.
    save_folder : str
        Where the manifests and the converted clips go.
    skip_prep : bool
        If True, do nothing.

    Raises
    ------
    FileNotFoundError
        If ``data_folder`` does not have the Common Voice layout, or a listed clip is missing.
    ValueError
        If a TSV lacks one of the expected columns.
    """
    if skip_prep:
        return
    options = {"data_folder": os.path.abspath(data_folder), "sample_rate": SAMPLE_RATE}
    if already_prepared(save_folder, options, SPLITS, OPTIONS_FILE):
        logger.info("Common Voice manifests in %s are up to date; skipping", save_folder)
        return
    _check_layout(data_folder)
    wav_folder = os.path.join(save_folder, "wavs")
    os.makedirs(wav_folder, exist_ok=True)
    counts, empty = {}, 0
    for split, name in SPLITS.items():
        rows, left_out = _split_rows(data_folder, name, wav_folder)
        _write_csv(os.path.join(save_folder, f"{split}.csv"), rows)
        counts[split], empty = len(rows), empty + left_out
    mark_prepared(save_folder, options, OPTIONS_FILE)
    logger.info(
        "Common Voice: %s utterances written to %s; %d left out (empty transcript after normalization)",
        ", ".join(f"{n} {s}" for s, n in counts.items()),
        save_folder,
        empty,
    )


def normalize_text(text):
    """Lowercase, punctuation removed, apostrophes kept inside words (see the module docstring).

    Example
    -------
    >>> normalize_text("  Ni iki, \u201cMama\u201d?  Umwana w\u2019umukobwa -- 'yego' ")
    "ni iki mama umwana w'umukobwa yego"
    """
    text = unicodedata.normalize("NFKC", text).lower().translate(APOSTROPHES)
    # By Unicode category, not by \w, which would drop the combining vowel signs of many scripts.
    text = "".join(c if c == "'" or c.isspace() or unicodedata.category(c)[0] in "LMN" else " " for c in text)
    words = (word.strip("'") for word in text.split())
    return " ".join(word for word in words if word)


def _check_layout(data_folder):
    missing = [name for name in SPLITS.values() if not os.path.isfile(os.path.join(data_folder, name))]
    if not os.path.isdir(os.path.join(data_folder, "clips")):
        missing.append("clips/")
    if missing:
        raise FileNotFoundError(
            f"'{data_folder}' is not a Common Voice language folder: expected one language of "
            f"an extracted release (train.tsv, dev.tsv, test.tsv and clips/*.mp3, e.g. "
            f"cv-corpus-6.1-2020-12-11/rw); missing: {', '.join(missing)}"
        )


def _split_rows(data_folder, name, wav_folder):
    """The manifest rows of one TSV, converting its clips; and how many were left out."""
    source = os.path.join(data_folder, name)
    rows, left_out = [], 0
    with open(source, newline="", encoding="utf-8") as f:
        # Sentences hold quotes of every kind; QUOTE_NONE reads them as text.
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        absent = [c for c in SOURCE_COLUMNS if c not in (reader.fieldnames or [])]
        if absent:
            raise ValueError(
                f"{source} has no column(s) {absent} (columns: {reader.fieldnames}); "
                f"is it an original Common Voice TSV?"
            )
        for line, row in enumerate(reader, start=2):
            transcript = normalize_text(row["sentence"] or "")
            if not transcript:
                left_out += 1
                continue
            clip = os.path.join(data_folder, "clips", row["path"])
            if not os.path.isfile(clip):
                raise FileNotFoundError(
                    f"{source}, line {line}: clips/{row['path']} is not in '{data_folder}'; re-extract the release"
                )
            utt_id = os.path.splitext(row["path"])[0]
            wav = os.path.abspath(os.path.join(wav_folder, f"{utt_id}.wav"))
            rows.append(
                {
                    "ID": utt_id,
                    "duration": _convert(clip, wav),
                    "wav": wav,
                    "spk_id": row["client_id"],
                    "transcript": transcript,
                }
            )
    return rows, left_out


def _convert(clip, wav):
    """Writes ``clip`` as a 16 kHz mono WAV at ``wav`` (unless there already); returns its duration in seconds."""
    if os.path.isfile(wav):
        return round(sf.info(wav).duration, 3)
    try:
        audio, rate = sf.read(clip, dtype="float32", always_2d=True)
    except sf.LibsndfileError as error:
        versions = f"soundfile {sf.__version__}, libsndfile {sf.__libsndfile_version__} here"
        raise RuntimeError(
            f"cannot decode {clip}: {error}; MP3 needs soundfile >= 0.12 with libsndfile >= 1.1 ({versions})"
        ) from error
    samples = torch.from_numpy(audio.mean(axis=1))
    if rate != SAMPLE_RATE:
        samples = torchaudio.functional.resample(samples, rate, SAMPLE_RATE)
    # Written under another name and renamed, so that an interrupted run never leaves half a WAV behind.
    partial = f"{wav}.partial"
    sf.write(partial, samples.numpy(), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    os.replace(partial, wav)
    return round(len(samples) / SAMPLE_RATE, 3)


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
