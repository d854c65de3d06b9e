"""sbx export, classify and transcribe on real recipe runs: each SynthSpeech task's run, exported, then loaded back
through SpeechBrain's own inference classes, must give the trained Brain's outputs."""

import csv
import json
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import soundfile
import speechbrain as sb
import torch
import torchaudio
from huggingface_hub import ModelCard
from recipe_runs import CORPUS, RECIPE_ENV
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.dataio.encoder import CategoricalEncoder
from speechbrain.inference.ASR import EncoderASR
from speechbrain.inference.classifiers import EncoderClassifier
from speechbrain.inference.interfaces import foreign_class

from speechbrain_xfer.brains import CTCBrain, UtteranceClassifierBrain
from speechbrain_xfer.cli import main
from speechbrain_xfer.data.tokenizers import CharTokenizer
from speechbrain_xfer.hub.yaml_nodes import foreign_classes
from speechbrain_xfer.recipe_config import load_recipe_hparams

pytestmark = pytest.mark.slow

EXPORTS = {"KWS": "l2sp", "emotion": "scratch", "intent": "l2sp", "ASR": "finetune"}
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """``exported(task)``: ``(run folder, export folder)`` of that task's run, exported with ``sbx export``."""
    folders = {}

    def get(task):
        if task not in folders:
            run = trained(task, EXPORTS[task]) / "run"
            out = tmp_path_factory.mktemp(f"export-{task}") / "model"
            assert main(["export", str(run), str(out)]) == 0
            folders[task] = run, out
        return folders[task]

    return get


def test_files(tiny_corpus, task, count=4):
    """Test utterances of a task, of different durations where the task has them (keywords are all 1 s), so that
    the Brain's batch is padded."""
    root, _ = tiny_corpus
    folder = root / CORPUS[task]
    with open(folder / "test.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    by_duration = {row["duration"]: row for row in rows}
    chosen = list(by_duration.values())[:count] if len(by_duration) >= count else rows[:count]
    return [row["wav"].replace("$data_root", str(folder)) for row in chosen]


test_files.__test__ = False  # a helper, not a test


def brain_outputs(run, task, paths):
    """The trained Brain (best checkpoint, as the run's test used) on one padded batch of ``paths``."""
    hparams = load_recipe_hparams(run / "hyperparams.yaml")
    if task == "ASR":
        hparams["tokenizer"] = CharTokenizer.load_or_create(run / "save" / "char_tokenizer.txt", [])
        brain_class = CTCBrain
    else:
        hparams["label_encoders"] = {}
        for target in hparams["targets"]:
            encoder = hparams["label_encoders"][target] = CategoricalEncoder()
            encoder.load(run / "save" / f"label_encoder_{target}.txt")
        brain_class = UtteranceClassifierBrain
    brain = brain_class(
        modules=hparams["modules"], hparams=hparams, run_opts={"device": "cpu"}, checkpointer=hparams["checkpointer"]
    )
    brain.checkpointer.recover_if_possible(**brain.best_checkpoint_key)
    brain.modules.eval()
    batch = PaddedBatch([{"id": str(i), "sig": sb.dataio.dataio.read_audio(p)} for i, p in enumerate(paths)])
    assert task == "KWS" or len(set(batch.sig.lengths.tolist())) > 1, "the batch should be padded"
    with torch.no_grad():
        return brain, brain.compute_forward(batch, sb.Stage.TEST)


@pytest.mark.parametrize("task", ["KWS", "emotion"])
def test_encoder_classifier_gives_the_trained_brains_log_probs(exported, tiny_corpus, tmp_path, task):
    run, export = exported(task)
    paths = test_files(tiny_corpus, task)
    brain, outputs = brain_outputs(run, task, paths)
    (target,) = brain.hparams.targets
    classifier = EncoderClassifier.from_hparams(source=str(export), savedir=tmp_path / "savedir")
    for i, path in enumerate(paths):
        out_prob, _, index, label = classifier.classify_file(path)
        expected = outputs["log_probs"][target][i]
        assert float((out_prob[0] - expected).abs().max()) <= TOLERANCE
        assert label[0] == brain.hparams.label_encoders[target].decode_ndim(int(expected.argmax()))
        assert int(index[0]) == int(expected.argmax())


def test_three_slot_intent_loads_through_foreign_class(exported, tiny_corpus, tmp_path):
    run, export = exported("intent")
    paths = test_files(tiny_corpus, "intent")
    brain, outputs = brain_outputs(run, "intent", paths)
    model = foreign_class(
        source=str(export),
        pymodule_file="custom_interface.py",
        classname="MultiTargetClassifier",
        savedir=tmp_path / "savedir",
    )
    for i, path in enumerate(paths):
        log_probs, labels = model.classify_file(path)
        assert sorted(log_probs) == sorted(brain.hparams.targets)
        for target, expected in outputs["log_probs"].items():
            assert float((log_probs[target][0] - expected[i]).abs().max()) <= TOLERANCE
            assert labels[target] == brain.hparams.label_encoders[target].decode_ndim(int(expected[i].argmax()))


def test_encoder_asr_gives_the_trained_brains_log_probs_and_text(exported, tiny_corpus, tmp_path):
    run, export = exported("ASR")
    paths = test_files(tiny_corpus, "ASR")
    brain, outputs = brain_outputs(run, "ASR", paths)
    expected_texts = brain.decode(outputs["log_probs"], outputs["output_lens"])
    frames = (outputs["output_lens"] * outputs["log_probs"].shape[1]).round().int().tolist()
    asr = EncoderASR.from_hparams(source=str(export), savedir=tmp_path / "savedir")
    for i, path in enumerate(paths):
        wav = asr.load_audio(path)
        log_probs = asr.encode_batch(wav.unsqueeze(0), torch.ones(1))
        assert log_probs.shape[1] == frames[i]
        assert float((log_probs[0] - outputs["log_probs"][i, : frames[i]]).abs().max()) <= TOLERANCE
        assert asr.transcribe_file(path) == expected_texts[i]


@pytest.mark.parametrize("task", list(EXPORTS))
def test_export_holds_state_dicts_and_only_speechbrain_classes(exported, task):
    _, export = exported(task)
    weights = [p for p in export.glob("*.ckpt") if not p.name.startswith(("label_encoder", "tokenizer"))]
    assert {p.stem for p in weights} >= {"encoder"}
    for path in weights:
        state = torch.load(path, weights_only=True)
        assert state and all(isinstance(v, torch.Tensor) for v in state.values()), path
    text = (export / "hyperparams.yaml").read_text()
    assert foreign_classes(text) == []
    assert "speechbrain_xfer" in text


@pytest.mark.parametrize("task", list(EXPORTS))
def test_model_card_metadata_parses_with_the_test_figures(exported, task):
    run, export = exported(task)
    summary = json.loads((run / "summary.json").read_text())
    card = ModelCard.load(export / "README.md")
    assert card.data.library_name == "speechbrain"
    assert card.data.pipeline_tag == ("automatic-speech-recognition" if task == "ASR" else "audio-classification")
    assert card.data.language == "en" and card.data.license == "apache-2.0"
    # The recipe comes from the YAML path the run recorded: recipes/SynthSpeech/<task>/hparams/<method>.yaml.
    assert summary["recipe_file"].endswith(f"/{task}/hparams/{EXPORTS[task]}.yaml")
    assert card.data.datasets == ["SynthSpeech"]
    values = {result.metric_type: result.metric_value for result in card.data.eval_results}
    if task == "ASR":
        assert values == {"wer": round(summary["test"]["WER"], 2), "cer": round(summary["test"]["CER"], 2)}
    else:
        assert values["accuracy"] == round(100 * summary["test"]["accuracy"], 2)


@pytest.mark.parametrize("task", ["KWS", "intent", "ASR"])
def test_model_card_usage_code_runs_as_pasted(exported, tmp_path, task):
    _, export = exported(task)
    (code,) = re.findall(r"```python\n(.*?)```", (export / "README.md").read_text(), re.DOTALL)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=RECIPE_ENV, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = result.stdout.splitlines()[-1]  # the last print; a few-step ASR model may transcribe nothing
    if task == "intent":
        assert set(eval(printed)) == {"action", "object", "location"}  # the dict of slot labels it printed
    elif task == "KWS":
        label, probability = printed.split()
        assert label in (export / "label_encoder.ckpt").read_text() and 0.0 < float(probability) <= 1.0
    else:
        assert "Traceback" not in result.stderr


def test_export_refuses_an_existing_folder_and_an_unfinished_run(exported, tmp_path):
    run, export = exported("KWS")
    before = sorted(p.name for p in export.iterdir())
    with pytest.raises(SystemExit, match="exists; choose another folder or pass --overwrite"):
        main(["export", str(run), str(export)])
    assert sorted(p.name for p in export.iterdir()) == before
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "hyperparams.yaml").write_text((run / "hyperparams.yaml").read_text())
    with pytest.raises(SystemExit, match="has no summary.json"):
        main(["export", str(tmp_path / "run"), str(tmp_path / "out")])
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def _write(path, wav, rate):
    soundfile.write(str(path), wav.numpy().T if wav.dim() == 2 else wav.numpy(), rate)
    return str(path)


def test_classify_resamples_downmixes_and_reports_bad_files(exported, tiny_corpus, tmp_path, capsys):
    _, export = exported("KWS")
    good = test_files(tiny_corpus, "KWS", count=1)[0]
    wav = sb.dataio.dataio.read_audio(good)
    stereo = _write(tmp_path / "stereo44k.wav", torchaudio.functional.resample(wav, 16000, 44100).repeat(2, 1), 44100)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF" + b"\x00garbage" * 20)
    silent = _write(tmp_path / "zero_samples.wav", torch.zeros(0), 16000)
    missing = str(tmp_path / "missing.wav")
    capsys.readouterr()
    code = main(["classify", str(export), good, stereo, str(empty), str(corrupt), silent, missing, "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 1  # some files failed, and the others were still classified
    assert [row["file"] for row in rows] == [good, stereo, str(empty), str(corrupt), silent, missing]
    assert rows[0]["label"] == rows[1]["label"] and abs(rows[0]["score"] - rows[1]["score"]) < 0.05
    for row, name in zip(rows[2:], ["empty.wav", "corrupt.wav", "zero_samples.wav", "missing.wav"]):
        assert name in row["error"] and "label" not in row
    assert rows[-1]["error"] == f"{missing}: no such file"


def test_transcribe_prints_a_table(exported, tiny_corpus, capsys):
    _, export = exported("ASR")
    paths = test_files(tiny_corpus, "ASR", count=2)
    capsys.readouterr()
    assert main(["transcribe", str(export), *paths]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "file\ttext" and [line.split("\t")[0] for line in lines[1:]] == paths


def test_sbx_never_runs_the_folders_custom_interface(exported, tiny_corpus, tmp_path, capsys):
    _, export = exported("intent")
    copy = tmp_path / "model"
    shutil.copytree(export, copy)
    marker = tmp_path / "custom_interface_ran"
    (copy / "custom_interface.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    capsys.readouterr()
    assert main(["classify", str(copy), *test_files(tiny_corpus, "intent", count=1), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)[0]["label"]) == {"action", "object", "location"}
    assert not marker.exists()


def test_an_export_with_a_crafted_weight_file_is_refused(exported, tmp_path):
    _, export = exported("KWS")
    copy = tmp_path / "model"
    shutil.copytree(export, copy)
    marker = tmp_path / "payload_ran"

    class RunsCodeWhenLoaded:
        def __reduce__(self):
            return pathlib.Path.touch, (marker,)

    state = torch.load(copy / "head.ckpt", weights_only=True)
    torch.save({**state, "extra": RunsCodeWhenLoaded()}, copy / "head.ckpt")
    with pytest.raises(Exception, match="(?i)weights.only|unpickl"):
        EncoderClassifier.from_hparams(source=str(copy), savedir=tmp_path / "savedir")
    assert not marker.exists()
