"""The real-dataset recipes for IEMOCAP (emotion) and Common Voice (CTC ASR) on miniature replicas of each
dataset's own folder layout and label/TSV files, built from the tiny SynthSpeech audio (the Common Voice clips
as real MP3s); a tiny local wav2vec 2.0, saved in the hub's folder format, stands in for the hub model
(nothing comes from the network)."""

import csv
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import soundfile as sf
import torch
import torchaudio
from replica_tools import RECIPES, TINY_TRAINING, load_module, read_csv, run_offline

IEMOCAP_RECIPE = RECIPES / "IEMOCAP" / "emotion"
CV_RECIPE = RECIPES / "CommonVoice" / "ASR"


iemocap_prepare = load_module(IEMOCAP_RECIPE / "iemocap_prepare.py")
cv_prepare = load_module(CV_RECIPE / "common_voice_prepare.py")


def corpus_rows(folder):
    return [row for split in ("train", "valid", "test") for row in read_csv(folder / f"{split}.csv")]


def source_wav(folder, row):
    return Path(row["wav"].replace("$data_root", str(folder)))


# -- replicas -----------------------------------------------------------------

# Each speaker's utterances: (IEMOCAP label, the SynthSpeech prosody class its audio comes from). ``exc`` must
# become ``hap``; ``fru`` and ``xxx`` (no agreement) must be left out.
IEMOCAP_PLAN = [
    ("neu", "neutral"),
    ("hap", "happy"),
    ("exc", "happy"),
    ("sad", "sad"),
    ("ang", "angry"),
    ("fru", "angry"),
    ("xxx", "neutral"),
]
KEPT_PER_SPEAKER = 5


def emo_evaluation_block(start, utt_id, label):
    return (
        f"[{start:.4f} - {start + 2.5:.4f}]\t{utt_id}\t{label}\t[2.5000, 3.0000, 3.5000]\n"
        f"C-E1:\tNeutral state;\t()\nC-E2:\tNeutral state;\t()\nA-E1:\tval 3; act 2; dom  2;\t()\n\n"
    )


@pytest.fixture(scope="module")
def iemocap(tiny_corpus, tmp_path_factory):
    """An IEMOCAP_full_release folder: 5 sessions x 2 speakers x 7 labelled utterances in 2 dialogs per session
    (an improvisation and a script, each with both speakers, as in the release), plus the per-annotator
    subfolders and a macOS resource fork that the parser must not read."""
    root, _ = tiny_corpus
    emotion = root / "emotion"
    by_class = {}
    for row in corpus_rows(emotion):
        by_class.setdefault(row["emotion"], []).append(row)
    folder = tmp_path_factory.mktemp("IEMOCAP_full_release")
    drawn = {name: 0 for name in by_class}
    for session in range(1, 6):
        base = folder / f"Session{session}"
        evaluation = base / "dialog" / "EmoEvaluation"
        (evaluation / "Categorical").mkdir(parents=True)
        dialogs = {f"Ses0{session}F_impro01": [], f"Ses0{session}M_script01_1": []}
        for gender in ("F", "M"):
            for index, (label, prosody) in enumerate(IEMOCAP_PLAN):
                dialog = list(dialogs)[index % 2]
                utt_id = f"{dialog}_{gender}{index:03d}"
                row = by_class[prosody][drawn[prosody] % len(by_class[prosody])]
                drawn[prosody] += 1
                (base / "sentences" / "wav" / dialog).mkdir(parents=True, exist_ok=True)
                shutil.copy(source_wav(emotion, row), base / "sentences" / "wav" / dialog / f"{utt_id}.wav")
                dialogs[dialog].append(emo_evaluation_block(3.0 * len(dialogs[dialog]), utt_id, label))
        for dialog, blocks in dialogs.items():
            header = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
            (evaluation / f"{dialog}.txt").write_text(header + "".join(blocks))
            (evaluation / "Categorical" / f"{dialog}_e1_cat.txt").write_text(f"[broken {dialog}_F000 :Neutral;\n")
            (evaluation / f"._{dialog}.txt").write_bytes(b"[\x00\x05\x16\x07 not text")
    (folder / "README.txt").write_text("IEMOCAP\n")
    return folder


CV_HEADER = ["client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender", "accent", "locale", "segment"]
CV_COUNTS = {"train": 12, "valid": 3, "test": 3}
# How each sentence is written in the TSVs: capitals and punctuation that normalization must undo; a bare " tests
# that the TSV is read without quoting.
CV_STYLES = ("{}.", "\u201c{}\u201d!", "{}?", '"{}"', "-- {}...")


def client_id(voice):
    return hashlib.sha256(voice.encode()).hexdigest()


@pytest.fixture(scope="module")
def common_voice(tiny_corpus, tmp_path_factory):
    """One language of a Common Voice release: train.tsv (12 clips and a sentence that is only punctuation),
    dev.tsv and test.tsv (3 clips each), validated.tsv, and the clips as 48 kHz MP3s in clips/."""
    root, _ = tiny_corpus
    source = root / "asr" / "source"
    folder = tmp_path_factory.mktemp("cv-corpus-6.1-2020-12-11") / "rw"
    (folder / "clips").mkdir(parents=True)
    validated, number = [], 0
    for split, name in (("train", "train.tsv"), ("valid", "dev.tsv"), ("test", "test.tsv")):
        rows = read_csv(source / f"{split}.csv")[: CV_COUNTS[split]]
        lines = []
        for index, row in enumerate(rows):
            number += 1
            clip = f"common_voice_rw_{number:08d}.mp3"
            audio, rate = sf.read(source_wav(source, row), dtype="float32")
            audio = torchaudio.functional.resample(torch.from_numpy(audio), rate, 48000).numpy()
            sf.write(folder / "clips" / clip, audio, 48000, format="MP3")
            style = CV_STYLES[index % len(CV_STYLES)]
            sentence = style.format(row["transcript"].capitalize())
            lines.append([client_id(row["voice"]), clip, sentence, 2, 0, "twenties", "female", "", "rw", ""])
        if split == "train":
            number += 1
            clip = f"common_voice_rw_{number:08d}.mp3"
            shutil.copy(folder / "clips" / lines[0][1], folder / "clips" / clip)
            lines.append([client_id("someone"), clip, "?!", 2, 0, "", "", "", "rw", ""])
        with open(folder / name, "w", newline="") as f:
            writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar=None, quotechar=None)
            writer.writerow(CV_HEADER)
            writer.writerows(lines)
        validated += lines
    with open(folder / "validated.tsv", "w", newline="") as f:
        csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None).writerows([CV_HEADER, *validated])
    (folder / "other.tsv").write_text("\t".join(CV_HEADER) + "\n")
    return folder


# -- IEMOCAP ------------------------------------------------------------------


@pytest.mark.parametrize(("test_session", "valid_speaker"), [(1, "Ses02F"), (5, "Ses01F")])
def test_iemocap_leaves_one_session_out(iemocap, tmp_path, test_session, valid_speaker):
    iemocap_prepare.prepare_iemocap(str(iemocap), str(tmp_path), test_session=test_session)
    splits = {s: read_csv(tmp_path / f"{s}.csv") for s in ("train", "valid", "test")}
    assert list(splits["train"][0]) == ["ID", "duration", "wav", "spk_id", "emotion"]
    assert {s: len(r) for s, r in splits.items()} == {
        "train": 7 * KEPT_PER_SPEAKER,
        "valid": KEPT_PER_SPEAKER,
        "test": 2 * KEPT_PER_SPEAKER,
    }
    speakers = {s: {r["spk_id"] for r in rows} for s, rows in splits.items()}
    assert speakers["test"] == {f"Ses0{test_session}F", f"Ses0{test_session}M"}
    assert speakers["valid"] == {valid_speaker}
    assert len(speakers["train"]) == 7 and not speakers["train"] & (speakers["valid"] | speakers["test"])
    assert all(r["ID"].startswith(f"Ses0{test_session}") for r in splits["test"])
    for rows in splits.values():
        assert sorted(r["emotion"] for r in rows) == sorted(["neu", "hap", "hap", "sad", "ang"] * (len(rows) // 5))
    every = [r for rows in splits.values() for r in rows]
    # Utterance 2 of every speaker was labelled exc; 5 (fru) and 6 (xxx) are left out.
    assert {r["emotion"] for r in every if r["ID"].endswith("002")} == {"hap"}
    assert not [r for r in every if r["ID"].endswith(("005", "006"))]
    # The speaker is the gender of the utterance, not of the dialog (Ses01M_script01_1_F001 is Ses01F's).
    assert all(r["spk_id"] == r["ID"][:5] + r["ID"].rsplit("_", 1)[1][0] for r in every)
    row = next(r for r in every if r["ID"] == "Ses03M_script01_1_F001")
    assert row["wav"] == "$data_root/Session3/sentences/wav/Ses03M_script01_1/Ses03M_script01_1_F001.wav"
    path = Path(row["wav"].replace("$data_root", str(iemocap)))
    assert float(row["duration"]) == pytest.approx(sf.info(path).duration, abs=1e-3)


def test_iemocap_skips_work_already_done(iemocap, tmp_path):
    iemocap_prepare.prepare_iemocap(str(iemocap), str(tmp_path), test_session=2)
    (tmp_path / "test.csv").write_text("kept\n")
    iemocap_prepare.prepare_iemocap(str(iemocap), str(tmp_path), test_session=2)
    assert (tmp_path / "test.csv").read_text() == "kept\n", "the same options prepared again"
    iemocap_prepare.prepare_iemocap(str(iemocap), str(tmp_path), test_session=3)
    assert {r["spk_id"] for r in read_csv(tmp_path / "test.csv")} == {"Ses03F", "Ses03M"}


def test_iemocap_refuses_another_folder_and_session(common_voice, iemocap, tmp_path):
    with pytest.raises(FileNotFoundError, match="is not an IEMOCAP folder") as error:
        iemocap_prepare.prepare_iemocap(str(common_voice), str(tmp_path))
    assert str(common_voice) in str(error.value) and "Session1/dialog/EmoEvaluation/" in str(error.value)
    with pytest.raises(ValueError, match="test_session must be one of"):
        iemocap_prepare.prepare_iemocap(str(iemocap), str(tmp_path), test_session=6)
    assert not (tmp_path / "train.csv").exists()


def test_iemocap_names_a_missing_wav_and_a_broken_line(iemocap, tmp_path):
    broken = tmp_path / "iemocap"
    shutil.copytree(iemocap, broken)
    (broken / "Session4/sentences/wav/Ses04F_impro01/Ses04F_impro01_M000.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"Ses04F_impro01_M000 is labelled .* Session4/sentences/wav"):
        iemocap_prepare.prepare_iemocap(str(broken), str(tmp_path / "out"))
    shutil.copytree(iemocap, broken, dirs_exist_ok=True)
    labels = broken / "Session2/dialog/EmoEvaluation/Ses02F_impro01.txt"
    lines = labels.read_text().splitlines(keepends=True)
    lines[2] = "[6.2901 - 8.2357]\tSes02F_impro01_F000\n"
    labels.write_text("".join(lines))
    with pytest.raises(ValueError, match=r"Ses02F_impro01.txt, line 3: expected"):
        iemocap_prepare.prepare_iemocap(str(broken), str(tmp_path / "out"))


# -- Common Voice -------------------------------------------------------------


def test_common_voice_manifests_and_16khz_clips(common_voice, tiny_corpus, tmp_path):
    cv_prepare.prepare_common_voice(str(common_voice), str(tmp_path))
    rows = {s: read_csv(tmp_path / f"{s}.csv") for s in ("train", "valid", "test")}
    assert list(rows["train"][0]) == ["ID", "duration", "wav", "spk_id", "transcript"]
    assert {s: len(r) for s, r in rows.items()} == CV_COUNTS, "the punctuation-only sentence is left out"
    for split, name in (("train", "train.tsv"), ("valid", "dev.tsv"), ("test", "test.tsv")):
        with open(common_voice / name, newline="") as f:
            listed = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        originals = read_csv(tiny_corpus[0] / "asr" / "source" / f"{split}.csv")
        for row, tsv, original in zip(rows[split], listed, originals):
            assert row["ID"] == tsv["path"].removesuffix(".mp3") and row["spk_id"] == tsv["client_id"]
            mp3 = sf.info(common_voice / "clips" / tsv["path"])
            assert (mp3.format, mp3.samplerate) == ("MP3", 48000), "the replica's clips are real 48 kHz MP3s"
            assert row["transcript"] == original["transcript"], tsv["sentence"]
            info = sf.info(row["wav"])
            assert (info.samplerate, info.channels, info.format) == (16000, 1, "WAV")
            assert Path(row["wav"]).parent == tmp_path / "wavs"
            # An MP3 decodes a little longer than what was encoded (encoder delay and padding).
            assert float(row["duration"]) == pytest.approx(float(original["duration"]), abs=0.1)


def test_common_voice_normalization():
    normalize = cv_prepare.normalize_text
    assert normalize("\u201cHello,\u201d she said -- \u2018twice\u2019!") == "hello she said twice"
    assert normalize("Umwana w\u2019umukobwa n'abandi 'yego' ''") == "umwana w'umukobwa n'abandi yego"
    assert normalize("In 2020, snake_case & co.") == "in 2020 snake case co"
    assert normalize("\u0928\u092e\u0938\u094d\u0924\u0947, \u0926\u0941\u0928\u093f\u092f\u093e!") == (
        "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e"
    ), "combining vowel signs are letters' marks, not punctuation"
    assert normalize("\uff21\uff22\uff23 \u00c9T\u00c9") == "abc \u00e9t\u00e9"
    assert normalize(" ?! ... ") == ""


def test_common_voice_skips_work_already_done(common_voice, tmp_path):
    cv_prepare.prepare_common_voice(str(common_voice), str(tmp_path))
    (tmp_path / "test.csv").write_text("kept\n")
    cv_prepare.prepare_common_voice(str(common_voice), str(tmp_path))
    assert (tmp_path / "test.csv").read_text() == "kept\n"
    # An interrupted run (no options file yet) keeps the clips it had converted.
    clip = next((tmp_path / "wavs").glob("*.wav"))
    stamp = clip.stat().st_mtime_ns - 10**9
    os.utime(clip, ns=(stamp, stamp))
    (tmp_path / cv_prepare.OPTIONS_FILE).unlink()
    cv_prepare.prepare_common_voice(str(common_voice), str(tmp_path))
    assert clip.stat().st_mtime_ns == stamp and len(read_csv(tmp_path / "test.csv")) == CV_COUNTS["test"]


def test_common_voice_refuses_another_folder(iemocap, tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a Common Voice language folder") as error:
        cv_prepare.prepare_common_voice(str(iemocap), str(tmp_path))
    assert str(iemocap) in str(error.value) and "train.tsv" in str(error.value) and "clips/" in str(error.value)


def test_common_voice_names_a_missing_clip(common_voice, tmp_path):
    broken = tmp_path / "rw"
    shutil.copytree(common_voice, broken)
    with open(broken / "dev.tsv", newline="") as f:
        missing = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1]["path"]
    (broken / "clips" / missing).unlink()
    with pytest.raises(FileNotFoundError, match=rf"dev.tsv, line 3: clips/{missing} is not in"):
        cv_prepare.prepare_common_voice(str(broken), str(tmp_path / "out"))


# -- the recipes, end to end --------------------------------------------------


@pytest.mark.slow
def test_iemocap_recipe_prepares_trains_and_tests(iemocap, tiny_wav2vec2, tmp_path):
    out = tmp_path / "run"
    result = run_offline(
        IEMOCAP_RECIPE,
        "wav2vec2_l2sp.yaml",
        "--data_folder",
        iemocap,
        "--output_folder",
        out,
        "--test_session",
        2,
        "--pretrained_source",
        tiny_wav2vec2,
        *TINY_TRAINING,
        hf_home=tmp_path / "hf",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metric"] == "accuracy" and 0.0 <= summary["test"]["accuracy"] <= 1.0
    assert summary["steps"] == 2
    assert {r["spk_id"] for r in read_csv(out / "manifests" / "test.csv")} == {"Ses02F", "Ses02M"}
    labels = (out / "save" / "label_encoder_emotion.txt").read_text()
    assert all(f"'{label}' =>" in labels for label in ("neu", "hap", "sad", "ang"))
    assert "R_l2sp" in (out / "train_log.txt").read_text()
    encoder = torch.load(next((out / "save").glob("CKPT+*/encoder.ckpt")), weights_only=True)
    assert encoder["layer_weights"].shape == (3,)  # the front end and the tiny model's 2 layers


@pytest.mark.slow
def test_common_voice_recipe_prepares_trains_and_tests(common_voice, tiny_wav2vec2, tmp_path):
    out = tmp_path / "run"
    vocab_size = 30
    result = run_offline(
        CV_RECIPE,
        "wav2vec2_ctc_l2sp.yaml",
        "--data_folder",
        common_voice,
        "--output_folder",
        out,
        "--pretrained_source",
        tiny_wav2vec2,
        "--vocab_size",
        vocab_size,
        *TINY_TRAINING,
        hf_home=tmp_path / "hf",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    # CTCBrain picks its checkpoint (and its summary metric) by an error rate; both are reported.
    assert summary["metric"] == "WER" and summary["higher_is_better"] is False  # select_by: WER
    assert summary["test"]["WER"] >= 0.0 and summary["test"]["CER"] >= 0.0
    assert summary["steps"] == 2
    assert (out / "save" / "sentencepiece" / f"{vocab_size}_unigram.model").is_file()
    assert len(read_csv(out / "manifests" / "test.csv")) == CV_COUNTS["test"]
    assert (out / "wer.txt").is_file() and "R_l2sp" in (out / "train_log.txt").read_text()
    head = torch.load(next((out / "save").glob("CKPT+*/ctc_head.ckpt")), weights_only=True)
    assert head["linear.weight"].shape == (vocab_size, 32)
