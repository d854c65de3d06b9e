"""The real-dataset recipes (Speech Commands, Fluent Speech Commands) on miniature replicas of each dataset's own
folder layout and list/CSV files, built from the tiny SynthSpeech audio; a tiny local wav2vec 2.0, saved in the
hub's folder format, stands in for ``facebook/wav2vec2-base`` (nothing comes from the network)."""

import csv
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from replica_tools import RECIPES, TINY_TRAINING, load_module, read_csv, run_offline

SC_RECIPE = RECIPES / "SpeechCommands" / "KWS"
FSC_RECIPE = RECIPES / "FluentSpeechCommands" / "intent"
COMMANDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
UNKNOWN_WORDS = ["zero", "one"]  # two of Speech Commands' auxiliary words, from SynthSpeech's source words
NOISE_SECONDS = (10.0, 10.4)  # -> 10 clips each: 8 train, 1 valid, 1 test


sc_prepare = load_module(SC_RECIPE / "speech_commands_prepare.py")
fsc_prepare = load_module(FSC_RECIPE / "fluent_speech_commands_prepare.py")


def speaker_hash(voice):
    return hashlib.md5(voice.encode()).hexdigest()[:8]


# -- replicas -----------------------------------------------------------------


@pytest.fixture(scope="module")
def speech_commands(tiny_corpus, tmp_path_factory):
    """A Speech Commands v2 folder: 4 files per command (2 train, 1 valid, 1 test), 2 per unknown word (1 train,
    1 held out), 2 background-noise files and the two lists."""
    root, _ = tiny_corpus
    folder = tmp_path_factory.mktemp("speech_commands_v0.02")
    rows = read_csv(root / "words" / "target" / "train.csv") + read_csv(root / "words" / "source" / "train.csv")
    validation, testing = [], []
    for word, count in [*((w, 4) for w in COMMANDS), *((w, 2) for w in UNKNOWN_WORDS)]:
        (folder / word).mkdir()
        chosen = [row for row in rows if row["word"] == word][:count]
        names = []
        for row in chosen:
            prefix = speaker_hash(row["voice"])
            n = sum(name.startswith(prefix) for name in names)
            names.append(f"{prefix}_nohash_{n}.wav")
            source = Path(
                row["wav"].replace("$data_root", str(root / "words" / ("target" if word in COMMANDS else "source")))
            )
            shutil.copy(source, folder / word / names[-1])
        if word in COMMANDS:
            validation.append(f"{word}/{names[0]}")
            testing.append(f"{word}/{names[1]}")
        else:
            (validation if word == "one" else testing).append(f"{word}/{names[0]}")
    (folder / "validation_list.txt").write_text("\n".join(validation) + "\n")
    (folder / "testing_list.txt").write_text("\n".join(testing) + "\n")
    noise = folder / "_background_noise_"
    noise.mkdir()
    rng = np.random.default_rng(0)
    for name, seconds in zip(("white_noise", "running_tap"), NOISE_SECONDS):
        sf.write(noise / f"{name}.wav", (0.1 * rng.standard_normal(int(16000 * seconds))).astype("float32"), 16000)
    (noise / "README.md").write_text("not audio\n")
    (folder / "LICENSE").write_text("CC-BY-4.0\n")
    return folder


@pytest.fixture(scope="module")
def fluent_speech_commands(tiny_corpus, tmp_path_factory):
    """A fluent_speech_commands_dataset folder: one utterance per intent in train (so every slot value is seen),
    6 each in valid and test; the CSVs keep FSC's leading unnamed index column."""
    root, _ = tiny_corpus
    folder = tmp_path_factory.mktemp("fluent_speech_commands_dataset")
    (folder / "data").mkdir()
    for split in ("train", "valid", "test"):
        rows = read_csv(root / "intent" / f"{split}.csv")
        if split == "train":
            by_intent = {}
            for row in rows:
                by_intent.setdefault(row["intent"], row)
            rows = list(by_intent.values())
        else:
            rows = rows[:6]
        with open(folder / "data" / f"{split}_data.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["", "path", "speakerId", "transcription", "action", "object", "location"])
            for index, row in enumerate(rows):
                speaker = speaker_hash(row["voice"])
                relative = f"wavs/speakers/{speaker}/{hashlib.md5(row['ID'].encode()).hexdigest()}.wav"
                (folder / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(row["wav"].replace("$data_root", str(root / "intent")), folder / relative)
                writer.writerow(
                    [
                        index,
                        relative,
                        speaker,
                        row["transcript"].capitalize(),
                        row["action"],
                        row["object"],
                        row["location"],
                    ]
                )
    return folder


# -- Speech Commands ----------------------------------------------------------


def test_speech_commands_12_classes(speech_commands, tmp_path):
    sc_prepare.prepare_speech_commands(str(speech_commands), str(tmp_path), setup="12")
    splits = {s: read_csv(tmp_path / f"{s}.csv") for s in ("train", "valid", "test")}
    assert list(splits["train"][0]) == ["ID", "duration", "wav", "spk_id", "word"]
    # 10 commands x 2 + 2 unknown + 2 x 8 silence clips; the held-out lists: 10 + 1 + 2 x 1 each.
    assert {s: len(r) for s, r in splits.items()} == {"train": 38, "valid": 13, "test": 13}
    assert {r["word"] for r in splits["train"]} == {*COMMANDS, "_unknown_", "_silence_"}
    unknown = [r for rows in splits.values() for r in rows if r["word"] == "_unknown_"]
    assert sorted(r["ID"].split("_")[0] for r in unknown) == ["one", "one", "zero", "zero"]
    valid_unknown = [r["wav"] for r in splits["valid"] if r["word"] == "_unknown_"]
    assert len(valid_unknown) == 1 and valid_unknown[0].startswith("$data_root/one/")
    listed = set((speech_commands / "testing_list.txt").read_text().split())
    assert {r["wav"].removeprefix("$data_root/") for r in splits["test"] if r["word"] != "_silence_"} == listed
    silence = {s: [r for r in rows if r["word"] == "_silence_"] for s, rows in splits.items()}
    assert {s: len(r) for s, r in silence.items()} == {"train": 16, "valid": 2, "test": 2}
    for row in silence["test"]:
        info = sf.info(row["wav"])
        assert info.duration == 1.0 and info.samplerate == 16000
    assert {r["spk_id"] for r in silence["train"]} == {"white_noise", "running_tap"}
    words = [r for r in splits["train"] if r["word"] in COMMANDS]
    assert all(len(r["spk_id"]) == 8 and r["ID"] == f"{r['word']}_{r['spk_id']}_nohash_{r['ID'][-1]}" for r in words)
    every = [r for rows in splits.values() for r in rows]
    assert len({r["ID"] for r in every}) == len(every)
    assert all(os.path.isfile(r["wav"].replace("$data_root", str(speech_commands))) for r in every)


def test_speech_commands_35_classes_use_every_word_folder(speech_commands, tmp_path):
    sc_prepare.prepare_speech_commands(str(speech_commands), str(tmp_path), setup="35")
    rows = {s: read_csv(tmp_path / f"{s}.csv") for s in ("train", "valid", "test")}
    assert {r["word"] for r in rows["train"]} == {*COMMANDS, *UNKNOWN_WORDS}
    assert {s: len(r) for s, r in rows.items()} == {"train": 22, "valid": 11, "test": 11}
    assert not (tmp_path / "silence").exists()


def test_speech_commands_skips_work_already_done(speech_commands, tmp_path):
    sc_prepare.prepare_speech_commands(str(speech_commands), str(tmp_path), setup="12")
    stamp = (tmp_path / "train.csv").stat().st_mtime_ns
    os.utime(tmp_path / "train.csv", ns=(stamp - 10**9, stamp - 10**9))
    sc_prepare.prepare_speech_commands(str(speech_commands), str(tmp_path), setup="12")
    assert (tmp_path / "train.csv").stat().st_mtime_ns == stamp - 10**9, "the same options prepared again"
    sc_prepare.prepare_speech_commands(str(speech_commands), str(tmp_path), setup="35")
    assert "_silence_" not in (tmp_path / "train.csv").read_text(), "other options must prepare again"


def test_speech_commands_refuses_another_folder(fluent_speech_commands, tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a Speech Commands folder") as error:
        sc_prepare.prepare_speech_commands(str(fluent_speech_commands), str(tmp_path))
    assert str(fluent_speech_commands) in str(error.value) and "validation_list.txt" in str(error.value)
    assert not (tmp_path / "train.csv").exists()


# -- Fluent Speech Commands ---------------------------------------------------


def test_fluent_speech_commands_manifests(fluent_speech_commands, tmp_path):
    fsc_prepare.prepare_fluent_speech_commands(str(fluent_speech_commands), str(tmp_path))
    rows = {s: read_csv(tmp_path / f"{s}.csv") for s in ("train", "valid", "test")}
    assert list(rows["train"][0]) == ["ID", "duration", "wav", "spk_id", "transcript", "action", "object", "location"]
    assert {s: len(r) for s, r in rows.items()} == {"train": 31, "valid": 6, "test": 6}
    assert [len({r[slot] for r in rows["train"]}) for slot in ("action", "object", "location")] == [6, 14, 4]
    source = read_csv(fluent_speech_commands / "data" / "valid_data.csv")
    for row, original in zip(rows["valid"], source):
        assert row["wav"] == f"$data_root/{original['path']}" and row["spk_id"] == original["speakerId"]
        assert row["transcript"] == original["transcription"] and row["ID"].startswith(original["speakerId"] + "_")
        assert float(row["duration"]) == pytest.approx(
            sf.info(fluent_speech_commands / original["path"]).duration, abs=1e-3
        )


def test_fluent_speech_commands_skips_work_already_done(fluent_speech_commands, tmp_path):
    fsc_prepare.prepare_fluent_speech_commands(str(fluent_speech_commands), str(tmp_path))
    (tmp_path / "test.csv").write_text("kept\n")
    fsc_prepare.prepare_fluent_speech_commands(str(fluent_speech_commands), str(tmp_path))
    assert (tmp_path / "test.csv").read_text() == "kept\n"


def test_fluent_speech_commands_refuses_another_folder(speech_commands, tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a Fluent Speech Commands folder") as error:
        fsc_prepare.prepare_fluent_speech_commands(str(speech_commands), str(tmp_path))
    assert str(speech_commands) in str(error.value) and "data/train_data.csv" in str(error.value)


def test_fluent_speech_commands_names_a_missing_wav(fluent_speech_commands, tmp_path):
    broken = tmp_path / "fsc"
    shutil.copytree(fluent_speech_commands, broken)
    missing = read_csv(broken / "data" / "test_data.csv")[2]["path"]
    (broken / missing).unlink()
    with pytest.raises(FileNotFoundError, match=r"test_data.csv, line 4: " + missing):
        fsc_prepare.prepare_fluent_speech_commands(str(broken), str(tmp_path / "out"))


# -- the recipes, end to end --------------------------------------------------

RUNS = [
    (SC_RECIPE, "wav2vec2_l2sp.yaml", "speech_commands"),
    (SC_RECIPE, "wav2vec2_finetune.yaml", "speech_commands"),
    (FSC_RECIPE, "wav2vec2_l2sp.yaml", "fluent_speech_commands"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("recipe", "yaml_name", "replica"), RUNS, ids=[f"{r.parent.name}-{y}" for r, y, _ in RUNS])
def test_recipe_prepares_trains_and_tests(recipe, yaml_name, replica, request, tiny_wav2vec2, tmp_path):
    data = request.getfixturevalue(replica)
    out = tmp_path / "run"
    result = run_offline(
        recipe,
        yaml_name,
        "--data_folder",
        data,
        "--output_folder",
        out,
        "--pretrained_source",
        tiny_wav2vec2,
        *TINY_TRAINING,
        hf_home=tmp_path / "hf",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metric"] == "accuracy" and 0.0 <= summary["test"]["accuracy"] <= 1.0
    assert summary["steps"] == 2
    assert (out / "manifests" / "train.csv").is_file()
    log = (out / "train_log.txt").read_text()
    assert ("R_l2sp" in log) == ("l2sp" in yaml_name)
    if recipe == FSC_RECIPE:
        slots = [summary["test"][f"accuracy_{slot}"] for slot in ("action", "object", "location")]
        assert summary["test"]["accuracy"] <= min(slots) + 1e-6
    encoder = torch.load(next((out / "save").glob("CKPT+*/encoder.ckpt")), weights_only=True)
    assert encoder["layer_weights"].shape == (3,)  # the front end and the tiny model's 2 layers
