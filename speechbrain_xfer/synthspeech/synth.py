"""SynthSpeech: a speech corpus synthesized on the machine with espeak-ng.

Four tasks, each a folder of SpeechBrain CSV manifests and 16 kHz WAVs:

- ``words/source`` and ``words/target``: single keywords; the target
  vocabulary is Speech Commands' ten words, the source one is disjoint.
- ``intent``: Fluent-Speech-Commands-style commands (action/object/location).
- ``emotion``: four prosody classes over neutral sentences. These are
  prosody settings of a synthesizer, not real emotion.
- ``asr/source`` and ``asr/target``: sentences with transcripts, a broad
  source domain and a small assistant-command target domain.

Splits are speaker-disjoint, and the speaker split is the same for every
task, so an encoder pretrained on a source task never heard a target test
speaker.
"""

import csv
import json
import logging
import os
from dataclasses import asdict, dataclass, field

import numpy as np
import soundfile as sf

from speechbrain_xfer.data.subsets import write_kshot_manifests
from speechbrain_xfer.synthspeech import texts
from speechbrain_xfer.synthspeech.acoustics import SAMPLE_RATE, apply_conditions, resample_batch
from speechbrain_xfer.synthspeech.espeak import SAMPLE_RATE as ESPEAK_RATE
from speechbrain_xfer.synthspeech.espeak import Espeak, SynthesisError
from speechbrain_xfer.synthspeech.isolation import Failure, run_isolated
from speechbrain_xfer.synthspeech.voices import SPLITS, Speaker, make_speakers, split_speakers

logger = logging.getLogger(__name__)

TASKS = ("words", "intent", "emotion", "asr")
FORMAT_VERSION = 2  # 2: the broader asr/source grammar
CHUNK_SIZE = 96
KEYWORD_CLIP_SECONDS = 1.0


@dataclass
class Utterance:
    """One utterance to synthesize: who says what, how, and its labels."""

    id: str  # noqa: A003
    split: str
    speaker: Speaker
    text: str
    labels: dict = field(default_factory=dict)
    prosody: tuple = (1.0, 0, 1.0, 100)  # rate factor, pitch offset, range factor, volume
    clip_seconds: float = None

    def wav_relpath(self):
        return f"wavs/{self.split}/{self.id}.wav"


@dataclass(frozen=True)
class SynthOptions:
    """Everything that determines a corpus; equal options give equal bytes."""

    seed: int = 1234
    num_speakers: int = 60
    scale: float = 1.0
    format_version: int = FORMAT_VERSION


def _reps(split, train_reps, eval_reps, scale):
    return max(1, round(train_reps * scale)) if split == "train" else eval_reps


def _plan_words(groups, options):
    plans = {}
    for subset, vocab, train_reps, eval_reps in (
        ("source", texts.SOURCE_WORDS, 1, 1),
        ("target", texts.TARGET_WORDS, 2, 3),
    ):
        utts = []
        for split in SPLITS:
            reps = _reps(split, train_reps, eval_reps, options.scale)
            for s, spk in enumerate(groups[split]):
                for rep in range(reps):
                    for word in vocab:
                        utts.append(
                            Utterance(
                                f"{split}_s{s:03d}_{word}_{rep}",
                                split,
                                spk,
                                word,
                                {"word": word},
                                clip_seconds=KEYWORD_CLIP_SECONDS,
                            )
                        )
        plans[f"words/{subset}"] = utts
    return plans


def _plan_intent(groups, options):
    rng = texts.sample_rng(options.seed, "intent")
    utts = []
    for split in SPLITS:
        reps = _reps(split, 1, 1, options.scale)
        for s, spk in enumerate(groups[split]):
            for rep in range(reps):
                for action, obj, location in texts.INTENTS:
                    phrasings = texts.intent_phrasings(action, obj, location)
                    text = phrasings[rng.integers(len(phrasings))]
                    label = texts.intent_label(action, obj, location)
                    labels = {
                        "transcript": text,
                        "intent": label,
                        "action": action,
                        "object": obj,
                        "location": location,
                    }
                    utts.append(Utterance(f"{split}_s{s:03d}_{label}_{rep}", split, spk, text, labels))
    return {"intent": utts}


def _plan_emotion(groups, options):
    rng = texts.sample_rng(options.seed, "emotion")
    utts = []
    for split in SPLITS:
        reps = _reps(split, 4, 6, options.scale)
        for s, spk in enumerate(groups[split]):
            for emotion, prosody in texts.PROSODY.items():
                for i in rng.choice(len(texts.NEUTRAL_SENTENCES), size=reps, replace=False):
                    text = texts.NEUTRAL_SENTENCES[i]
                    # Jitter so that classes overlap a little, as real ones do.
                    jitter = (rng.uniform(0.93, 1.07), int(rng.integers(-4, 5)), rng.uniform(0.85, 1.15), 0)
                    pros = tuple(p * j if isinstance(j, float) else p + j for p, j in zip(prosody, jitter))
                    utts.append(
                        Utterance(
                            f"{split}_s{s:03d}_{emotion}_{i:02d}",
                            split,
                            spk,
                            text,
                            {"transcript": text, "emotion": emotion},
                            prosody=pros,
                        )
                    )
    return {"emotion": utts}


def _plan_asr(groups, options):
    plans = {}
    for subset, draw, train_reps, eval_reps in (
        ("source", texts.source_sentence, 60, 20),
        ("target", texts.target_sentence, 8, 10),
    ):
        rng = texts.sample_rng(options.seed, f"asr/{subset}")
        utts = []
        for split in SPLITS:
            reps = _reps(split, train_reps, eval_reps, options.scale)
            for s, spk in enumerate(groups[split]):
                for rep in range(reps):
                    text = draw(rng)
                    utts.append(Utterance(f"{split}_s{s:03d}_{rep:04d}", split, spk, text, {"transcript": text}))
        plans[f"asr/{subset}"] = utts
    return plans


_PLANNERS = {"words": _plan_words, "intent": _plan_intent, "emotion": _plan_emotion, "asr": _plan_asr}
STRATIFY_BY = {"words": "word", "intent": "intent", "emotion": "emotion"}


def plan_corpus(task, options):
    """Returns ``{subset folder: [Utterance, ...]}`` for one task.

    Example
    -------
    >>> plans = plan_corpus("words", SynthOptions(num_speakers=10))
    >>> sorted(plans), len(plans["words/target"])
    (['words/source', 'words/target'], 230)
    """
    if task not in _PLANNERS:
        raise ValueError(f"unknown SynthSpeech task {task!r}; choose from {', '.join(TASKS)}")
    groups = split_speakers(make_speakers(options.num_speakers, options.seed))
    return _PLANNERS[task](groups, options)


def _synthesize_chunk(utts, folder, seed):
    """Synthesizes, conditions and writes a chunk; runs in a child process."""
    tts = Espeak(seed=seed)
    raw, results = [], []
    for utt in utts:
        rate_f, pitch_off, range_f, volume = utt.prosody
        try:
            raw.append(
                tts.synthesize(
                    utt.text,
                    voice=utt.speaker.voice,
                    rate=np.clip(utt.speaker.rate * rate_f, 80, 450),
                    pitch=np.clip(utt.speaker.pitch + pitch_off, 0, 99),
                    range=np.clip(utt.speaker.range * range_f, 0, 99),
                    volume=volume,
                )
            )
        except SynthesisError as error:
            raw.append(Failure(str(error)))
    ok = [i for i, r in enumerate(raw) if not isinstance(r, Failure)]
    clean = resample_batch([raw[i].astype(np.float32) / 32768 for i in ok], ESPEAK_RATE)
    audio = dict(zip(ok, clean))
    for i, utt in enumerate(utts):
        if i not in audio:
            results.append(raw[i])
            continue
        rng = texts.sample_rng(seed, utt.id)
        samples = apply_conditions(rng, audio[i], utt.clip_seconds)
        path = os.path.join(folder, utt.wav_relpath())
        sf.write(path, samples, SAMPLE_RATE, subtype="PCM_16")
        results.append(round(len(samples) / SAMPLE_RATE, 3))
    return results


def write_manifest(path, rows):
    """Writes a SpeechBrain CSV manifest from a list of dicts (``ID`` first)."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_manifest(path):
    """The rows of a CSV manifest, as dicts (:func:`speechbrain_xfer.data.manifest.read_manifest`'s)."""
    from speechbrain_xfer.data.manifest import read_manifest as read

    return read(path).rows


def _manifest_rows(utts, durations, split):
    return [
        {"ID": u.id, "duration": d, "wav": f"$data_root/{u.wav_relpath()}", "voice": u.speaker.id, **u.labels}
        for u, d in zip(utts, durations)
        if u.split == split and not isinstance(d, Failure)
    ]


def _is_done(folder, options):
    marker = os.path.join(folder, "synth_options.json")
    if not os.path.exists(marker):
        return False
    with open(marker) as f:
        done = json.load(f)
    return done.get("options") == asdict(options) and all(
        os.path.exists(os.path.join(folder, f"{split}.csv")) for split in SPLITS
    )


def synthesize_subset(folder, utts, options, task, jobs=1, progress=True):
    """Synthesizes one subset folder: WAVs, manifests, k-shot subsets, report.

    Skips the work when ``folder`` already holds a corpus made with the same
    options. Returns the report written to ``synth_options.json``.
    """
    marker = os.path.join(folder, "synth_options.json")
    if _is_done(folder, options):
        logger.info("%s already synthesized with these options, skipping", folder)
        with open(marker) as f:
            return json.load(f)
    for split in SPLITS:
        os.makedirs(os.path.join(folder, "wavs", split), exist_ok=True)
    chunks = [utts[i : i + CHUNK_SIZE] for i in range(0, len(utts), CHUNK_SIZE)]
    from tqdm import tqdm

    with tqdm(
        total=len(utts), desc=f"synth {os.path.basename(folder) or folder}", disable=not progress, unit="utt"
    ) as bar:
        durations = run_isolated(
            lambda chunk: _synthesize_chunk(chunk, folder, options.seed),
            chunks,
            jobs=jobs,
            on_progress=bar.update,
        )
    failures = [
        {"ID": u.id, "voice": u.speaker.id, "text": u.text, "reason": d.reason}
        for u, d in zip(utts, durations)
        if isinstance(d, Failure)
    ]
    for failure in failures:
        logger.warning("could not synthesize %(ID)s (voice %(voice)s, %(text)r): %(reason)s", failure)
    counts = {}
    for split in SPLITS:
        split_rows = _manifest_rows(utts, durations, split)
        if not split_rows:
            raise RuntimeError(f"no utterance of the {split} split of {folder} could be synthesized")
        write_manifest(os.path.join(folder, f"{split}.csv"), split_rows)
        counts[split] = len(split_rows)
    if task in STRATIFY_BY:
        write_kshot_manifests(os.path.join(folder, "train.csv"), folder, STRATIFY_BY[task], options.seed)
    report = {
        "options": asdict(options),
        "task": task,
        "counts": counts,
        "failures": failures,
        "hours": round(sum(d for d in durations if not isinstance(d, Failure)) / 3600, 3),
    }
    with open(marker, "w") as f:
        json.dump(report, f, indent=1)
    logger.info("wrote %s: %s utterances, %.2f h, %d failed", folder, counts, report["hours"], len(failures))
    return report


def synthesize_task(task, out_dir, options=None, jobs=1, progress=True):
    """Builds every subset folder of a task under ``out_dir``.

    Arguments
    ---------
    task : str
        One of :data:`TASKS`.
    out_dir : str
        Root folder of the corpus; the task's folders go below it.
    options : SynthOptions
        Seed and sizes.
    jobs : int
        Worker processes.
    progress : bool
        Whether to show a progress bar.

    Returns
    -------
    dict
        ``{subset folder: report}``.
    """
    options = options or SynthOptions()
    reports = {}
    for subset, utts in plan_corpus(task, options).items():
        folder = os.path.join(out_dir, subset)
        reports[subset] = synthesize_subset(folder, utts, options, task, jobs=jobs, progress=progress)
    return reports
