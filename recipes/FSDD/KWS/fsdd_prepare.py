#!/usr/bin/env python3
"""Manifests for the Free Spoken Digit Dataset (FSDD) from its own folder layout.

The dataset's ``recordings/`` folder holds ``{digit}_{speaker}_{index}.wav``:
3,000 clips of six speakers saying the digits 0-9 in English, 50 of each
digit per speaker, 8 kHz mono (resampled to 16 kHz as they are read). Its own
"test set" (indices 0-4) shares speakers with its training set; the split here
is speaker-disjoint instead: by default train george, jackson and lucas,
validate on nicolas, test on theo and yweweler.

    python fsdd_prepare.py --data_folder /data/free-spoken-digit-dataset --save_folder results/FSDD/manifests

writes ``train.csv``, ``valid.csv`` and ``test.csv`` (ID, duration, wav, spk_id,
word; ``wav`` an absolute path, so the folder can be used on its own, e.g. as
``sbx curve --data``) and nested k-shot lists ``train_k{N}.csv`` (N clips of
each digit, stratified, seeded), once: a second call with the same options
does nothing.

Data: Z. Jackson et al., Free Spoken Digit Dataset (github.com/Jakobovski/free-spoken-digit-dataset),
Zenodo DOI 10.5281/zenodo.1342401, CC BY-SA 4.0.
"""

import argparse
import logging
import os
import re

import soundfile as sf

from speechbrain_xfer.data.prepare import already_prepared, mark_prepared, write_split_manifests
from speechbrain_xfer.data.subsets import DEFAULT_SHOTS

logger = logging.getLogger(__name__)

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
VALID_SPEAKERS = ("nicolas",)
TEST_SPEAKERS = ("theo", "yweweler")
SPLITS = ("train", "valid", "test")
FIELDS = ["ID", "duration", "wav", "spk_id", "word"]
OPTIONS_FILE = "fsdd_prepare.json"
NAME = re.compile(r"^([0-9])_([A-Za-z]+)_([0-9]+)\.wav$")


def prepare_fsdd(
    data_folder,
    save_folder,
    valid_speakers=VALID_SPEAKERS,
    test_speakers=TEST_SPEAKERS,
    shots=DEFAULT_SHOTS,
    seed=0,
    skip_prep=False,
):
    """Writes the speaker-disjoint manifests and k-shot lists of FSDD to ``save_folder``.

    Arguments
    ---------
    data_folder : str
        The dataset's folder, holding ``recordings/``.
    save_folder : str
        Where the manifests go.
    valid_speakers, test_speakers : sequence of str
        The speakers of the validation and test splits; every other speaker trains.
    shots : sequence of int
        Clips per digit of the k-shot lists ``train_k{N}.csv``.
    seed : int
        Chooses the clips of the k-shot lists.
    skip_prep : bool
        If True, do nothing.

    Raises
    ------
    FileNotFoundError
        If ``data_folder`` has no ``recordings/`` of FSDD files, or a speaker named has no clip.
    """
    if skip_prep:
        return
    options = {
        "data_folder": os.path.abspath(data_folder),
        "valid_speakers": sorted(valid_speakers),
        "test_speakers": sorted(test_speakers),
        "shots": sorted(shots),
        "seed": seed,
    }
    if already_prepared(save_folder, options, SPLITS, OPTIONS_FILE):
        logger.info("FSDD manifests in %s are up to date; skipping", save_folder)
        return
    clips = _clips(data_folder)
    speakers = {speaker for _, speaker, _ in clips.values()}
    unknown = sorted((set(valid_speakers) | set(test_speakers)) - speakers)
    if unknown:
        raise FileNotFoundError(f"{data_folder}: no clip of speaker(s) {unknown} (speakers: {sorted(speakers)})")
    split_of = {**{s: "valid" for s in valid_speakers}, **{s: "test" for s in test_speakers}}
    rows = {split: [] for split in SPLITS}
    for path, (digit, speaker, index) in sorted(clips.items(), key=lambda item: item[1]):
        info = sf.info(path)
        rows[split_of.get(speaker, "train")].append(
            {
                "ID": f"{digit}_{speaker}_{index}",
                "duration": round(info.frames / info.samplerate, 4),
                "wav": os.path.abspath(path),
                "spk_id": speaker,
                "word": DIGITS[digit],
            }
        )
    write_split_manifests(save_folder, rows, FIELDS, data_folder, label="word", shots=shots, seed=seed)
    mark_prepared(save_folder, options, OPTIONS_FILE)
    counts = ", ".join(f"{split} {len(split_rows)}" for split, split_rows in rows.items())
    logger.info("FSDD manifests written to %s (%s clips)", save_folder, counts)


def _clips(data_folder):
    """``{path: (digit, speaker, index)}`` of the recordings."""
    folder = os.path.join(data_folder, "recordings")
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"{data_folder} is not an FSDD folder: it has no recordings/ (the dataset's recordings/ folder, "
            f"with files such as 0_george_0.wav)"
        )
    clips = {}
    for name in os.listdir(folder):
        match = NAME.match(name)
        if match:
            clips[os.path.join(folder, name)] = (int(match[1]), match[2], int(match[3]))
    if not clips:
        raise FileNotFoundError(f"{folder} holds no {{digit}}_{{speaker}}_{{index}}.wav file")
    return clips


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Speaker-disjoint FSDD manifests and k-shot lists.")
    parser.add_argument("--data_folder", required=True, help="the dataset's folder (holding recordings/)")
    parser.add_argument("--save_folder", required=True, help="where train.csv, valid.csv, test.csv go")
    parser.add_argument("--valid_speakers", default=",".join(VALID_SPEAKERS), help="comma-separated")
    parser.add_argument("--test_speakers", default=",".join(TEST_SPEAKERS), help="comma-separated")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    prepare_fsdd(args.data_folder, args.save_folder, args.valid_speakers.split(","), args.test_speakers.split(","))
