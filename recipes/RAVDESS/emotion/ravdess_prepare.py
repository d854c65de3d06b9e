#!/usr/bin/env python3
"""Manifests for the speech part of RAVDESS from its own folder layout, labels read from the file names.

The release's ``Audio_Speech_Actors_01-24`` folder holds ``Actor_{01..24}/`` with
``03-01-{emotion}-{intensity}-{statement}-{repetition}-{actor}.wav``: 24
professional actors (odd numbers male, even female), two fixed sentences,
8 emotions (01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful,
07 disgust, 08 surprised) at two intensities (neutral at one). The split is
actor-disjoint: by default train actors 1-16, validate on 17-20, test on 21-24.
``emotions=4`` keeps neutral, happy, sad and angry, the set most emotion
benchmarks use.

    python ravdess_prepare.py --data_folder /data/Audio_Speech_Actors_01-24 --save_folder results/RAVDESS/manifests

writes ``train.csv``, ``valid.csv`` and ``test.csv`` (ID, duration, wav, spk_id,
gender, intensity, emotion; ``wav`` an absolute path) and nested k-shot lists
``train_k{N}.csv`` (N clips of each emotion), once.

Data: Livingstone & Russo (2018), The Ryerson Audio-Visual Database of Emotional Speech and Song (RAVDESS),
PLoS ONE 13(5): e0196391; Zenodo record 1188976; CC BY-NC-SA 4.0 (non-commercial use).
"""

import argparse
import logging
import os
import re

import soundfile as sf

from speechbrain_xfer.data.prepare import already_prepared, mark_prepared, write_split_manifests
from speechbrain_xfer.data.subsets import DEFAULT_SHOTS

logger = logging.getLogger(__name__)

EMOTIONS = {
    1: "neutral",
    2: "calm",
    3: "happy",
    4: "sad",
    5: "angry",
    6: "fearful",
    7: "disgust",
    8: "surprised",
}
FOUR = ("neutral", "happy", "sad", "angry")
VALID_ACTORS = (17, 18, 19, 20)
TEST_ACTORS = (21, 22, 23, 24)
SPLITS = ("train", "valid", "test")
FIELDS = ["ID", "duration", "wav", "spk_id", "gender", "intensity", "emotion"]
OPTIONS_FILE = "ravdess_prepare.json"
# modality 03 (audio only), vocal channel 01 (speech), emotion, intensity, statement, repetition, actor
NAME = re.compile(r"^03-01-(0[1-8])-(0[12])-(0[12])-(0[12])-([0-9]{2})\.wav$")


def prepare_ravdess(
    data_folder,
    save_folder,
    emotions=8,
    valid_actors=VALID_ACTORS,
    test_actors=TEST_ACTORS,
    shots=DEFAULT_SHOTS,
    seed=0,
    skip_prep=False,
):
    """Writes the actor-disjoint manifests and k-shot lists of RAVDESS speech to ``save_folder``.

    Arguments
    ---------
    data_folder : str
        The folder holding ``Actor_01/`` ... ``Actor_24/``.
    save_folder : str
        Where the manifests go.
    emotions : int
        8 (every emotion) or 4 (neutral, happy, sad, angry).
    valid_actors, test_actors : sequence of int
        The actors of the validation and test splits; every other actor trains.
    shots : sequence of int
        Clips per emotion of the k-shot lists ``train_k{N}.csv``.
    seed : int
        Chooses the clips of the k-shot lists.
    skip_prep : bool
        If True, do nothing.

    Raises
    ------
    FileNotFoundError
        If ``data_folder`` has no ``Actor_*`` folders of RAVDESS speech files, or a split would be empty.
    """
    if skip_prep:
        return
    if int(emotions) not in (4, 8):
        raise ValueError(f"emotions must be 8 (all) or 4 (neutral, happy, sad, angry), not {emotions!r}")
    kept = set(EMOTIONS.values()) if int(emotions) == 8 else set(FOUR)
    options = {
        "data_folder": os.path.abspath(data_folder),
        "emotions": int(emotions),
        "valid_actors": sorted(int(a) for a in valid_actors),
        "test_actors": sorted(int(a) for a in test_actors),
        "shots": sorted(shots),
        "seed": seed,
    }
    if already_prepared(save_folder, options, SPLITS, OPTIONS_FILE):
        logger.info("RAVDESS manifests in %s are up to date; skipping", save_folder)
        return
    split_of = {**{a: "valid" for a in options["valid_actors"]}, **{a: "test" for a in options["test_actors"]}}
    rows = {split: [] for split in SPLITS}
    for path, (emotion, intensity, actor) in sorted(_clips(data_folder).items()):
        if emotion not in kept:
            continue
        info = sf.info(path)
        rows[split_of.get(actor, "train")].append(
            {
                "ID": os.path.basename(path)[:-4],
                "duration": round(info.frames / info.samplerate, 4),
                "wav": os.path.abspath(path),
                "spk_id": f"actor{actor:02d}",
                "gender": "female" if actor % 2 == 0 else "male",
                "intensity": intensity,
                "emotion": emotion,
            }
        )
    write_split_manifests(save_folder, rows, FIELDS, data_folder, label="emotion", shots=shots, seed=seed)
    mark_prepared(save_folder, options, OPTIONS_FILE)
    counts = ", ".join(f"{split} {len(split_rows)}" for split, split_rows in rows.items())
    logger.info("RAVDESS manifests (%d emotions) written to %s (%s clips)", len(kept), save_folder, counts)


def _clips(data_folder):
    """``{path: (emotion, intensity, actor)}`` of the speech clips."""
    actors = sorted(d for d in os.listdir(data_folder) if d.startswith("Actor_")) if os.path.isdir(data_folder) else []
    if not actors:
        raise FileNotFoundError(
            f"{data_folder} is not a RAVDESS speech folder: it has no Actor_01/ ... Actor_24/ (the release's "
            f"Audio_Speech_Actors_01-24 folder)"
        )
    clips = {}
    for actor in actors:
        for name in os.listdir(os.path.join(data_folder, actor)):
            match = NAME.match(name)
            if match:
                emotion, intensity, _, _, number = match.groups()
                strength = "normal" if intensity == "01" else "strong"
                clips[os.path.join(data_folder, actor, name)] = (EMOTIONS[int(emotion)], strength, int(number))
    if not clips:
        raise FileNotFoundError(f"{data_folder}: no 03-01-*.wav speech file in its Actor_* folders")
    return clips


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Actor-disjoint RAVDESS speech manifests and k-shot lists.")
    parser.add_argument("--data_folder", required=True, help="the folder holding Actor_01/ ... Actor_24/")
    parser.add_argument("--save_folder", required=True, help="where train.csv, valid.csv, test.csv go")
    parser.add_argument("--emotions", type=int, default=8, choices=(4, 8), help="8, or 4: neutral, happy, sad, angry")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    prepare_ravdess(args.data_folder, args.save_folder, args.emotions)
