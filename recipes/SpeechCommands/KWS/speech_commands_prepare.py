"""Manifests for Google Speech Commands (v2, or v1) from its own folder layout.

The extracted archive (``speech_commands_v0.02.tar.gz``) holds one folder per
word with 1 s, 16 kHz WAVs named ``<speaker hash>_nohash_<n>.wav``, the lists
``validation_list.txt`` and ``testing_list.txt`` (paths relative to the root;
every other file is training data) and ``_background_noise_/`` (six long noise
recordings, not a word).

Two setups:

* ``"35"``: every word folder is a class (35 in v2, 30 in v1).
* ``"12"``: the ten commands (yes, no, up, down, left, right, on, off, stop,
  go), ``_unknown_`` (every other word, all of its files, not subsampled) and
  ``_silence_``: each background-noise file is cut into consecutive 1 s clips
  (``floor(duration)`` clips per file; about 400 with the six stock files),
  written to ``<save_folder>/silence/``; the first 80 % of each file's clips
  go to train, the next 10 % to valid and the last 10 % to test, so that no
  stretch of noise is in two splits.

The test split is ``testing_list.txt``, not the separate
``speech_commands_test_set_v0.02`` archive that SUPERB uses for its 12-class test.
"""

import csv
import logging
import math
import os

import soundfile as sf

from speechbrain_xfer.data.prepare import already_prepared, mark_prepared

logger = logging.getLogger(__name__)

COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN, SILENCE = "_unknown_", "_silence_"
NOISE_FOLDER = "_background_noise_"
LISTS = {"valid": "validation_list.txt", "test": "testing_list.txt"}
SPLITS = ("train", "valid", "test")
FIELDS = ["ID", "duration", "wav", "spk_id", "word"]
OPTIONS_FILE = "speech_commands_prepare.json"


def prepare_speech_commands(data_folder, save_folder, setup="12", skip_prep=False):
    """Writes ``train.csv``, ``valid.csv`` and ``test.csv`` (ID, duration, wav, spk_id, word) to ``save_folder``.

    Arguments
    ---------
    data_folder : str
        The extracted Speech Commands archive. The manifests' ``wav`` column
        is ``$data_root/<word>/<file>.wav``; silence clips have absolute paths.
    save_folder : str
        Where the manifests (and, for setup ``"12"``, the silence clips) go.
    setup : str
        ``"12"`` or ``"35"`` (see the module docstring).
    skip_prep : bool
        If True, do nothing.

    Raises
    ------
    FileNotFoundError
        If ``data_folder`` does not have the Speech Commands layout.
    """
    if skip_prep:
        return
    setup = str(setup)
    if setup not in ("12", "35"):
        raise ValueError(f"setup must be '12' or '35', not {setup!r}")
    options = {"data_folder": os.path.abspath(data_folder), "setup": setup}
    if already_prepared(save_folder, options, SPLITS, OPTIONS_FILE):
        logger.info("Speech Commands manifests in %s are up to date (setup %s); skipping", save_folder, setup)
        return
    words = _check_layout(data_folder)
    held_out = {split: _read_list(data_folder, name) for split, name in LISTS.items()}
    rows = {split: [] for split in SPLITS}
    for word in words:
        label = word if setup == "35" or word in COMMANDS else UNKNOWN
        for name in sorted(os.listdir(os.path.join(data_folder, word))):
            if not name.endswith(".wav"):
                continue
            relative = f"{word}/{name}"
            split = next((s for s, listed in held_out.items() if relative in listed), "train")
            path = os.path.join(data_folder, word, name)
            rows[split].append(
                {
                    "ID": f"{word}_{name[:-4]}",
                    "duration": _duration(path),
                    "wav": f"$data_root/{relative}",
                    "spk_id": name.split("_nohash_")[0],
                    "word": label,
                }
            )
    if setup == "12":
        for split, clips in _silence_clips(data_folder, os.path.join(save_folder, "silence")).items():
            rows[split].extend(clips)
    os.makedirs(save_folder, exist_ok=True)
    for split in SPLITS:
        _write_csv(os.path.join(save_folder, f"{split}.csv"), rows[split])
    mark_prepared(save_folder, options, OPTIONS_FILE)
    logger.info(
        "Speech Commands (setup %s): %s utterances written to %s",
        setup,
        ", ".join(f"{len(rows[s])} {s}" for s in SPLITS),
        save_folder,
    )


def _check_layout(data_folder):
    """The word folders of ``data_folder``, after checking that it is a Speech Commands folder."""
    hint = (
        f"'{data_folder}' is not a Speech Commands folder: expected the extracted speech_commands_v0.02 "
        f"archive (one folder per word, {LISTS['valid']}, {LISTS['test']}, {NOISE_FOLDER}/)"
    )
    if not os.path.isdir(data_folder):
        raise FileNotFoundError(f"{hint}; the folder does not exist")
    missing = [name for name in LISTS.values() if not os.path.isfile(os.path.join(data_folder, name))]
    missing += [f"{w}/" for w in COMMANDS if not os.path.isdir(os.path.join(data_folder, w))]
    if missing:
        raise FileNotFoundError(f"{hint}; missing: {', '.join(missing)}")
    return sorted(
        name
        for name in os.listdir(data_folder)
        if os.path.isdir(os.path.join(data_folder, name)) and not name.startswith(("_", "."))
    )


def _read_list(data_folder, name):
    with open(os.path.join(data_folder, name)) as f:
        return {line.strip() for line in f if line.strip()}


def _duration(path):
    return round(sf.info(path).duration, 3)


def _silence_clips(data_folder, clip_folder):
    """Cuts every background-noise file into 1 s clips; returns their manifest rows by split."""
    noise_folder = os.path.join(data_folder, NOISE_FOLDER)
    if not os.path.isdir(noise_folder):
        raise FileNotFoundError(
            f"no {NOISE_FOLDER}/ in '{data_folder}': setup '12' cuts its _silence_ "
            f"clips from there; use setup '35' or restore the folder"
        )
    os.makedirs(clip_folder, exist_ok=True)
    rows = {split: [] for split in SPLITS}
    for name in sorted(os.listdir(noise_folder)):
        if not name.endswith(".wav"):
            continue
        audio, rate = sf.read(os.path.join(noise_folder, name), dtype="float32")
        count = len(audio) // rate
        n_train, n_valid = math.floor(0.8 * count), math.floor(0.9 * count) - math.floor(0.8 * count)
        for k in range(count):
            split = "train" if k < n_train else "valid" if k < n_train + n_valid else "test"
            clip_id = f"{SILENCE}{name[:-4]}_{k}"
            path = os.path.abspath(os.path.join(clip_folder, f"{clip_id}.wav"))
            sf.write(path, audio[k * rate : (k + 1) * rate], rate)
            rows[split].append({"ID": clip_id, "duration": 1.0, "wav": path, "spk_id": name[:-4], "word": SILENCE})
    if not any(rows.values()):
        raise FileNotFoundError(f"no .wav of 1 s or more in '{noise_folder}' to cut _silence_ clips from")
    return rows


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
