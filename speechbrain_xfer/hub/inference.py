"""``sbx classify`` and ``sbx transcribe``: an exported model (folder or hub id) on audio files.

Each file is read at its own sample rate and channel count, then resampled
to 16 kHz and down-mixed by the model's ``audio_normalizer`` (SpeechBrain's
``AudioNormalizer``). A file that cannot be used gets an error row naming it
and saying why; the other files are still processed.
"""

import os

import torch
from speechbrain.dataio import audio_io


class AudioFileError(ValueError):
    """An audio file that cannot be classified or transcribed."""


def read_audio_file(model, path):
    """The 16 kHz mono waveform of ``path`` for ``model``; raises AudioFileError naming the file."""
    if not os.path.exists(path):
        raise AudioFileError(f"{path}: no such file")
    if os.path.isdir(path):
        raise AudioFileError(f"{path}: a folder, not an audio file")
    try:
        signal, sample_rate = audio_io.load(str(path), channels_first=False)
    except Exception as err:  # soundfile raises several types for unreadable files
        raise AudioFileError(f"{path}: cannot read it as audio ({err})") from err
    if signal.numel() == 0:
        raise AudioFileError(f"{path}: no audio samples (an empty recording)")
    if not torch.isfinite(signal).all():
        raise AudioFileError(f"{path}: contains NaN or infinite samples")
    return model.audio_normalizer(signal, sample_rate)


def classify_files(model, paths):
    """One row per file: ``{"file", "label", "score"}`` (one label and score per slot for several heads),
    or ``{"file", "error"}``."""
    return _each_file(model, paths, _classify)


def _each_file(model, paths, run):
    rows = []
    for path in paths:
        try:
            wav = read_audio_file(model, path)
        except AudioFileError as err:
            rows.append({"file": str(path), "error": str(err)})
            continue
        rows.append({"file": str(path), **run(model, wav)})
    return rows


def _classify(model, wav):
    batch, lens = wav.unsqueeze(0), torch.ones(1)
    if hasattr(model.hparams, "targets"):  # several heads: MultiTargetClassifier
        log_probs, labels = model.classify_batch(batch, lens)
        return {
            "label": labels[0],
            "score": {target: round(float(lp[0].max().exp()), 4) for target, lp in log_probs.items()},
        }
    with torch.no_grad():
        _, score, _, label = model.classify_batch(batch, lens)
    return {"label": label[0], "score": round(float(score[0].exp()), 4)}


def transcribe_files(model, paths):
    """One row per file: ``{"file", "text"}`` or ``{"file", "error"}``."""
    return _each_file(model, paths, _transcribe)


def _transcribe(model, wav):
    words, _ = model.transcribe_batch(wav.unsqueeze(0), torch.ones(1))
    return {"text": str(words[0])}


def format_table(rows, columns):
    """Tab-separated lines with a header; dict values (one per slot) as ``key=value`` pairs."""

    def cell(value):
        if isinstance(value, dict):
            return " ".join(f"{k}={v}" for k, v in value.items())
        return "" if value is None else str(value)

    lines = ["\t".join(columns)]
    for row in rows:
        if "error" in row:
            lines.append("\t".join([row["file"], f"ERROR: {row['error']}"]))
        else:
            lines.append("\t".join(cell(row.get(c)) for c in columns))
    return "\n".join(lines)
