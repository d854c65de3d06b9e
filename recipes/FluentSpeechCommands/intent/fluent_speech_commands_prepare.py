"""Manifests for Fluent Speech Commands from its own folder layout.

The extracted ``fluent_speech_commands_dataset/`` holds ``data/train_data.csv``,
``data/valid_data.csv`` and ``data/test_data.csv`` (a leading unnamed index
column, then ``path, speakerId, transcription, action, object, location``;
``path`` is relative to the root) and the 16 kHz WAVs under
``wavs/speakers/<speakerId>/``. The official splits are speaker-disjoint:
23,132 / 3,118 / 3,793 utterances from 77 / 10 / 10 speakers, 31 intents made
of 6 actions, 14 objects and 4 locations.
"""

import csv
import logging
import os

import soundfile as sf

from speechbrain_xfer.data.prepare import already_prepared, mark_prepared

logger = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
SOURCE_COLUMNS = ("path", "speakerId", "transcription", "action", "object", "location")
FIELDS = ["ID", "duration", "wav", "spk_id", "transcript", "action", "object", "location"]
OPTIONS_FILE = "fluent_speech_commands_prepare.json"


def prepare_fluent_speech_commands(data_folder, save_folder, skip_prep=False):
    """Writes ``train.csv``, ``valid.csv`` and ``test.csv`` to ``save_folder``.

    Columns: ID (``<speakerId>_<file stem>``), duration, wav
    (``$data_root/wavs/speakers/...``), spk_id, transcript, action, object, location.

    Arguments
    ---------
    data_folder : str
        The extracted ``fluent_speech_commands_dataset`` folder.
    save_folder : str
        Where the manifests go.
    skip_prep : bool
        If True, do nothing.

    Raises
    ------
    FileNotFoundError
        If ``data_folder`` does not have the Fluent Speech Commands layout, or a listed WAV is missing.
    ValueError
        If a split's CSV lacks one of the expected columns.
    """
    if skip_prep:
        return
    options = {"data_folder": os.path.abspath(data_folder)}
    if already_prepared(save_folder, options, SPLITS, OPTIONS_FILE):
        logger.info("Fluent Speech Commands manifests in %s are up to date; skipping", save_folder)
        return
    sources = _check_layout(data_folder)
    os.makedirs(save_folder, exist_ok=True)
    counts = {}
    for split in SPLITS:
        rows = _split_rows(data_folder, sources[split])
        with open(os.path.join(save_folder, f"{split}.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        counts[split] = len(rows)
    mark_prepared(save_folder, options, OPTIONS_FILE)
    logger.info(
        "Fluent Speech Commands: %s utterances written to %s",
        ", ".join(f"{n} {s}" for s, n in counts.items()),
        save_folder,
    )


def _check_layout(data_folder):
    """``{split: path of its CSV}``, after checking that ``data_folder`` is a Fluent Speech Commands folder."""
    sources = {split: os.path.join(data_folder, "data", f"{split}_data.csv") for split in SPLITS}
    missing = [os.path.relpath(p, data_folder) for p in sources.values() if not os.path.isfile(p)]
    if not os.path.isdir(os.path.join(data_folder, "wavs", "speakers")):
        missing.append("wavs/speakers/")
    if missing:
        raise FileNotFoundError(
            f"'{data_folder}' is not a Fluent Speech Commands folder: expected the extracted "
            f"fluent_speech_commands_dataset (data/{{train,valid,test}}_data.csv and "
            f"wavs/speakers/<speakerId>/*.wav); missing: {', '.join(missing)}"
        )
    return sources


def _split_rows(data_folder, source):
    with open(source, newline="") as f:
        reader = csv.DictReader(f)
        absent = [c for c in SOURCE_COLUMNS if c not in (reader.fieldnames or [])]
        if absent:
            raise ValueError(
                f"{source} has no column(s) {absent} (columns: {reader.fieldnames}); "
                f"is it an original Fluent Speech Commands CSV?"
            )
        rows, seen = [], set()
        for line, row in enumerate(reader, start=2):
            path = os.path.join(data_folder, row["path"])
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"{source}, line {line}: {row['path']} is not in '{data_folder}'; re-extract the archive"
                )
            utt_id = f"{row['speakerId']}_{os.path.splitext(os.path.basename(row['path']))[0]}"
            while utt_id in seen:  # the same recording listed twice keeps one row per listing
                utt_id += "_dup"
            seen.add(utt_id)
            rows.append(
                {
                    "ID": utt_id,
                    "duration": round(sf.info(path).duration, 3),
                    "wav": f"$data_root/{row['path']}",
                    "spk_id": row["speakerId"],
                    "transcript": row["transcription"],
                    "action": row["action"],
                    "object": row["object"],
                    "location": row["location"],
                }
            )
    return rows
