"""The SynthSpeech recipes end to end: real SpeechBrain training loops of a few steps on the tiny corpus."""

import csv
import shutil
from pathlib import Path

import pytest
import torch
from recipe_runs import CORPUS, EPOCHS, STEPS_PER_EPOCH, TINY_TRAINING, checkpoints, read_summary

from speechbrain_xfer.hub.loading import exported_interface
from speechbrain_xfer.synthspeech.synth import read_manifest

pytestmark = pytest.mark.slow

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "SynthSpeech"
TARGETS = {"KWS": ["word"], "intent": ["action", "object", "location"], "emotion": ["emotion"]}
# The ConvEncoder's recipes; the hub-format encoder's (hf_*.yaml) are in test_hf_recipes.py.
KWS_METHODS = sorted(p.stem for p in (RECIPES / "KWS" / "hparams").glob("*.yaml") if not p.stem.startswith("hf_"))
# The encoder checkpoints' buffers (batch-norm statistics, ConvEncoder's strides): everything else is a parameter.
BUFFERS = ("running_mean", "running_var", "num_batches_tracked", "frame_strides")
OTHER_METHODS = ("scratch", "l2sp", "frozen")  # intent and emotion: the baseline, a regularizer, the feature cache
RUNS = [("KWS", m) for m in KWS_METHODS] + [(t, m) for t in ("intent", "emotion") for m in OTHER_METHODS]


def test_pretraining_exports_a_loadable_encoder(pretrained_encoder):
    state = torch.load(pretrained_encoder / "encoder.ckpt", weights_only=True)
    assert state and all(isinstance(v, torch.Tensor) for v in state.values())
    assert any(k.startswith("blocks.0.conv.") for k in state)
    ewc = torch.load(pretrained_encoder / "ewc.ckpt", weights_only=True)
    fisher = [v for k, v in ewc.items() if k.startswith("fisher__")]
    assert fisher and max(float(f.max()) for f in fisher) == pytest.approx(1.0)  # normalized to its largest entry
    summary = read_summary(pretrained_encoder.parent)
    # The folder is an sbx export: SpeechBrain's EncoderASR loads it (tests/recipes/test_export.py checks its
    # outputs), and the task recipes fine-tune from it.
    assert exported_interface(str(pretrained_encoder)) == "EncoderASR"
    files = {p.name for p in pretrained_encoder.iterdir()}
    assert {"ctc_head.ckpt", "tokenizer.ckpt", "README.md", "example.wav"} <= files
    assert summary["metric"] == "CER" and summary["higher_is_better"] is False
    assert summary["steps"] == 2  # one epoch of 32 utterances in batches of 16


def test_source_words_stage_fine_tunes_the_pretrained_encoder_and_exports_it(
    words_encoder, pretrained_encoder, run_recipe, tiny_corpus, tmp_path
):
    words, pretrained = (torch.load(f / "encoder.ckpt", weights_only=True) for f in (words_encoder, pretrained_encoder))
    assert words.keys() == pretrained.keys()
    assert any(not torch.equal(words[k], pretrained[k]) for k in words)  # it trained, from the CTC encoder's weights
    ewc = torch.load(words_encoder / "ewc.ckpt", weights_only=True)
    assert max(float(v.max()) for k, v in ewc.items() if k.startswith("fisher__")) == pytest.approx(1.0)
    assert all(
        torch.equal(ewc["anchor__" + k.replace(".", "__")], words[k])
        for k in words
        if k.rsplit(".", 1)[-1] not in BUFFERS
    )
    assert exported_interface(str(words_encoder)) == "EncoderClassifier"
    labels = (words_encoder / "label_encoder.ckpt").read_text()
    assert "'zero' => 0" in labels and "'yes'" not in labels  # the source words, none of the target ones
    # The keyword recipes (EWC included) start from it as from any pretrained_source.
    root, _ = tiny_corpus
    result = run_recipe(
        "KWS",
        "ewc.yaml",
        "--data_folder",
        root / "words" / "target",
        "--pretrained_source",
        words_encoder,
        "--output_folder",
        tmp_path / "run",
        *TINY_TRAINING,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert read_summary(tmp_path / "run")["steps"] > 0


@pytest.mark.parametrize(("task", "method"), RUNS, ids=[f"{t}-{m}" for t, m in RUNS])
def test_recipe_trains_tests_and_summarizes(trained, tiny_corpus, task, method):
    run = trained(task, method) / "run"
    summary = read_summary(run)
    assert summary["metric"] == "accuracy" and summary["higher_is_better"] is True
    assert 0.0 <= summary["test"]["accuracy"] <= 1.0
    history = summary["valid_history"]
    assert 1 <= len(history) <= EPOCHS  # fewer epochs only if stopped early
    assert [step for step, _ in history] == [STEPS_PER_EPOCH * (i + 1) for i in range(len(history))]
    assert all(0.0 <= score <= 1.0 for _, score in history)
    # The steps trained, as train_time_s is the time trained; not those of the best checkpoint.
    assert summary["steps"] == history[-1][0], "summary.json: steps is not the number of steps trained"
    if len(TARGETS[task]) > 1:  # an utterance is right only when every slot is
        slots = [summary["test"][f"accuracy_{t}"] for t in TARGETS[task]]
        assert summary["test"]["accuracy"] <= min(slots) + 1e-6
    for target in TARGETS[task]:
        assert (run / f"confusion_{target}.tsv").is_file()
    # One row per test utterance; its all-slots-right rate is the test accuracy.
    with open(run / "predictions.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    test_ids = [row["ID"] for row in read_manifest(tiny_corpus[0] / CORPUS[task] / "test.csv")]
    assert sorted(row["ID"] for row in rows) == sorted(test_ids)
    right = [all(row[t] == row[f"predicted_{t}"] for t in TARGETS[task]) for row in rows]
    assert sum(right) / len(rows) == pytest.approx(summary["test"]["accuracy"])


@pytest.mark.parametrize("task", ["KWS", "intent", "emotion"])
def test_frozen_keeps_the_pretrained_encoder_and_caches_its_outputs(trained, pretrained_encoder, tiny_corpus, task):
    out = trained(task, "frozen")
    folders = {folder: [p.name for p in folder.iterdir()] for folder in (out / "feature_cache").iterdir()}
    assert folders and all(folders.values()), "the feature cache is empty"
    (names,) = folders.values()
    assert not any(".view" in name for name in names)
    root, _ = tiny_corpus
    ids = {
        split: {f"{row['ID']}.pt" for row in read_manifest(root / CORPUS[task] / f"{split}.csv")}
        for split in ("train", "valid")
    }
    assert ids["valid"] <= set(names)
    if task == "intent":  # its training audio is augmented anew at every step: only valid and test are cached
        assert not ids["train"] & set(names)
        assert "wav_augment" in (out / "run" / "hyperparams.yaml").read_text()
    else:
        assert ids["train"] & set(names)
    pretrained = torch.load(pretrained_encoder / "encoder.ckpt", weights_only=True)
    for saved in checkpoints(out / "run", "encoder"):
        assert saved.keys() == pretrained.keys()
        changed = [k for k in saved if not torch.equal(saved[k], pretrained[k])]
        assert not changed, f"the frozen encoder changed: {changed[:5]}"


@pytest.mark.parametrize("task", ["KWS", "intent", "emotion"])
def test_l2sp_logs_its_term_and_anchors_at_the_pretrained_weights(trained, pretrained_encoder, task):
    run = trained(task, "l2sp") / "run"
    assert "R_l2sp" in (run / "train_log.txt").read_text()
    pretrained = torch.load(pretrained_encoder / "encoder.ckpt", weights_only=True)
    # One anchor per encoder parameter (not the buffers), equal to the pretrained weight.
    parameters = [n for n in pretrained if n.rsplit(".", 1)[-1] not in BUFFERS]
    for anchors in checkpoints(run, "regularizer_l2sp"):
        assert sorted(anchors) == sorted("anchor__" + n.replace(".", "__") for n in parameters)
        for name in parameters:
            assert torch.equal(anchors["anchor__" + name.replace(".", "__")], pretrained[name]), name
    for encoder in checkpoints(run, "encoder"):
        assert any(not torch.equal(encoder[n], pretrained[n]) for n in parameters), "the encoder did not train"


def test_lora_trains_adapters_and_saves_no_pretrained_weights(trained, pretrained_encoder):
    pretrained = torch.load(pretrained_encoder / "encoder.ckpt", weights_only=True)
    weights = {k for k in pretrained if k.rsplit(".", 1)[-1] not in BUFFERS}
    for saved in checkpoints(trained("KWS", "lora") / "run", "encoder"):
        up = {k: v for k, v in saved.items() if k.endswith("adapter_up_proj.weight")}
        assert len(up) == 3, sorted(saved)  # one LoRA per conv block
        assert all(v.abs().sum() > 0 for v in up.values()), "LoRA up projections start at zero and must have trained"
        # The frozen pretrained weights come from pretrained_source; the checkpoint holds only what trains or drifts.
        leaked = [k for k in saved if k.removeprefix("adapted_model.").replace(".pretrained_module", "") in weights]
        assert not leaked, leaked


@pytest.fixture(scope="module")
def rerun(trained, run_recipe, tiny_corpus, tmp_path_factory):
    """A finished KWS scratch run, and the same command run again on a copy of its folder."""
    root, _ = tiny_corpus
    run = tmp_path_factory.mktemp("rerun") / "run"
    shutil.copytree(trained("KWS", "scratch") / "run", run)
    before = {
        "summary": read_summary(run),
        "log": (run / "train_log.txt").read_text(),
        "checkpoints": sorted(p.name for p in (run / "save").glob("CKPT+*")),
    }
    result = run_recipe(
        "KWS", "scratch.yaml", "--data_folder", root / CORPUS["KWS"], "--output_folder", run, *TINY_TRAINING
    )
    return before, result, run


def test_rerunning_a_finished_run_trains_no_more(rerun):
    before, result, run = rerun
    assert result.returncode == 0, result.stderr[-4000:]
    after = read_summary(run)
    assert after["steps"] == before["summary"]["steps"]
    assert after["test"] == before["summary"]["test"]  # the same best checkpoint, tested again
    log = (run / "train_log.txt").read_text()
    assert log.count("epoch:") == before["log"].count("epoch:"), "an epoch was trained again"
    assert sorted(p.name for p in (run / "save").glob("CKPT+*")) == before["checkpoints"]


def test_rerunning_a_finished_run_keeps_its_summary(rerun):
    before, result, run = rerun
    after = read_summary(run)
    assert after["valid_history"] == before["summary"]["valid_history"]
    assert after["train_time_s"] == pytest.approx(before["summary"]["train_time_s"], rel=0.5)


ASR_METHODS = sorted(p.stem for p in (RECIPES / "ASR" / "hparams").glob("*.yaml") if not p.stem.startswith("hf_"))


@pytest.mark.parametrize("method", ASR_METHODS)
def test_asr_recipe_trains_tests_and_summarizes(trained, pretrained_encoder, method):
    run = trained("ASR", method) / "run"
    summary = read_summary(run)
    assert summary["metric"] == "CER" and summary["higher_is_better"] is False
    assert 0.0 <= summary["test"]["CER"] and summary["test"]["WER"] >= 0.0
    assert summary["valid_history"] and summary["steps"] > 0
    assert (run / "wer.txt").is_file()
    if method != "scratch":
        # The pretraining's CTC head was loaded too, with its character set, in its order.
        assert f"ctc_head ({pretrained_encoder / 'ctc_head.ckpt'})" in (run / "log.txt").read_text()
        tokens = (run / "save" / "char_tokenizer.txt").read_text()
        assert tokens == (pretrained_encoder / "tokenizer.ckpt").read_text()
        # The pretrained encoder was loaded: the first checkpoint's encoder (or, for LoRA, its frozen base)
        # started from it, so the frozen run's encoder still equals it.
        if method == "frozen":
            # The best checkpoint, and the latest one when it is not the best: the encoder is in each unchanged.
            ckpts = sorted((run / "save").glob("CKPT*/encoder.ckpt"))
            assert 1 <= len(ckpts) <= 2
            pretrained = torch.load(pretrained_encoder / "encoder.ckpt", weights_only=True)
            weights = [k for k in pretrained if not k.endswith(BUFFERS)]
            for ckpt in ckpts:
                saved = torch.load(ckpt, weights_only=True)
                assert all(torch.equal(saved[k], pretrained[k]) for k in weights)
