"""Manifests for IEMOCAP (speech only, 4 emotions) from the release's own folder layout.

``IEMOCAP_full_release/`` holds ``Session1`` .. ``Session5``; each session is one
female and one male actor (speaker ``Ses01F`` and ``Ses01M``, ...). The
utterance-level labels are in ``SessionN/dialog/EmoEvaluation/<dialog>.txt``,
one summary line per utterance::

    [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]

(start - end in seconds, utterance, majority label, valence/activation/
dominance); the other lines of these files (header, per-annotator ``C-E1:``
and ``A-E1:`` lines) are skipped. The audio is
``SessionN/sentences/wav/<dialog>/<utterance>.wav`` (16 kHz). The speaker of an
utterance is the letter that starts its last field (``F000`` -> ``F``), not the
one in the dialog name.

The usual 4-class setup: neutral (``neu``), happy (``hap`` with excited,
``exc``, merged into it), sad (``sad``) and angry (``ang``); every other label
(frustrated, surprised, fearful, disgusted, other, no agreement ``xxx``) is
left out. That leaves 5,531 utterances.

Splits, leave one session out: the test split is the whole ``test_session``
(both of its speakers); the validation split is the female speaker of the next
session (Session1 after Session5); the training split is the other 7
speakers. No speaker is in two splits. The 5-fold protocol runs
``test_session`` = 1..5 and averages.
"""

import csv
import logging
import os
import re

import soundfile as sf

from speechbrain_xfer.data.prepare import already_prepared, mark_prepared

logger = logging.getLogger(__name__)

SESSIONS = (1, 2, 3, 4, 5)
CLASSES = ("neu", "hap", "sad", "ang")
MERGED = {"exc": "hap"}
VALID_GENDER = "F"
SPLITS = ("train", "valid", "test")
FIELDS = ["ID", "duration", "wav", "spk_id", "emotion"]
OPTIONS_FILE = "iemocap_prepare.json"
SUMMARY_LINE = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(Ses\S+)\s+(\S+)\s+\[")


def prepare_iemocap(data_folder, save_folder, test_session=5, skip_prep=False):
    """Writes ``train.csv``, ``valid.csv`` and ``test.csv`` (ID, duration, wav, spk_id, emotion) to ``save_folder``.

    Arguments
    ---------
    data_folder : str
        The ``IEMOCAP_full_release`` folder. The manifests' ``wav`` column is
        ``$data_root/SessionN/sentences/wav/<dialog>/<utterance>.wav``.
    save_folder : str
        Where the manifests go.
    test_session : int
        The held-out session, 1 to 5 (see the module docstring for the splits).
    skip_prep : bool
        If True, do nothing.

    Raises
    ------
    FileNotFoundError
        If ``data_folder`` does not have the IEMOCAP layout, or a labelled utterance has no WAV.
    ValueError
        If ``test_session`` is not 1..5, or a summary line of an EmoEvaluation file cannot be read.
    """
    if skip_prep:
        return
    if int(test_session) not in SESSIONS:
        raise ValueError(f"test_session must be one of {SESSIONS}, not {test_session!r}")
    test_session = int(test_session)
    options = {"data_folder": os.path.abspath(data_folder), "test_session": test_session}
    if already_prepared(save_folder, options, SPLITS, OPTIONS_FILE):
        logger.info("IEMOCAP manifests in %s are up to date (test session %d); skipping", save_folder, test_session)
        return
    _check_layout(data_folder)
    valid_speaker = f"Ses{test_session % len(SESSIONS) + 1:02d}{VALID_GENDER}"
    rows, dropped = {split: [] for split in SPLITS}, 0
    for session in SESSIONS:
        for utt_id, label in _labels(data_folder, session):
            emotion = MERGED.get(label, label)
            if emotion not in CLASSES:
                dropped += 1
                continue
            speaker = _speaker(utt_id)
            split = "test" if session == test_session else "valid" if speaker == valid_speaker else "train"
            relative = f"Session{session}/sentences/wav/{utt_id.rsplit('_', 1)[0]}/{utt_id}.wav"
            path = os.path.join(data_folder, relative)
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"{utt_id} is labelled in Session{session}/dialog/EmoEvaluation/ but "
                    f"{relative} is not in '{data_folder}'; re-extract the release"
                )
            rows[split].append(
                {
                    "ID": utt_id,
                    "duration": round(sf.info(path).duration, 3),
                    "wav": f"$data_root/{relative}",
                    "spk_id": speaker,
                    "emotion": emotion,
                }
            )
    os.makedirs(save_folder, exist_ok=True)
    for split in SPLITS:
        _write_csv(os.path.join(save_folder, f"{split}.csv"), rows[split])
    mark_prepared(save_folder, options, OPTIONS_FILE)
    logger.info(
        "IEMOCAP (test Session%d, valid %s): %s utterances written to %s; %d with other labels left out",
        test_session,
        valid_speaker,
        ", ".join(f"{len(rows[s])} {s}" for s in SPLITS),
        save_folder,
        dropped,
    )


def _check_layout(data_folder):
    hint = (
        f"'{data_folder}' is not an IEMOCAP folder: expected IEMOCAP_full_release (Session1..Session5, each "
        f"with dialog/EmoEvaluation/*.txt and sentences/wav/)"
    )
    if not os.path.isdir(data_folder):
        raise FileNotFoundError(f"{hint}; the folder does not exist")
    missing = []
    for session in SESSIONS:
        for sub in ("dialog/EmoEvaluation", "sentences/wav"):
            if not os.path.isdir(os.path.join(data_folder, f"Session{session}", sub)):
                missing.append(f"Session{session}/{sub}/")
    if missing:
        raise FileNotFoundError(f"{hint}; missing: {', '.join(missing)}")


def _labels(data_folder, session):
    """``(utterance id, label)`` of every summary line of a session's EmoEvaluation files."""
    folder = os.path.join(data_folder, f"Session{session}", "dialog", "EmoEvaluation")
    # Only the files directly in the folder: its subfolders (Categorical/, Attribute/, ...) hold per-annotator
    # files; names starting with "." are macOS resource forks that some copies of the release carry.
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not name.endswith(".txt") or name.startswith(".") or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, start=1):
                if not line.startswith("["):
                    continue
                match = SUMMARY_LINE.match(line)
                if match is None:
                    raise ValueError(
                        f"{path}, line {number}: expected '[start - end]<TAB>utterance<TAB>label"
                        f"<TAB>[v, a, d]', got {line.strip()!r}"
                    )
                yield match.group(3), match.group(4)


def _speaker(utt_id):
    """``Ses01F`` for ``Ses01M_impro01_F000``: the session, and the gender that starts the last field."""
    gender = utt_id.rsplit("_", 1)[-1][:1]
    if gender not in ("F", "M"):
        raise ValueError(f"utterance {utt_id}: its last field should start with F or M (the speaker's gender)")
    return f"{utt_id[:5]}{gender}"


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
