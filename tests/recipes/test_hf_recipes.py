"""The hub-format encoder's recipes end to end: the source stage (a Whisper-architecture encoder trained with CTC
and distillation, written with save_pretrained) and the hf_*.yaml transfer recipes that start from it, each a real
SpeechBrain training loop of a few steps on the tiny corpus."""

import json
from pathlib import Path

import pytest
import torch
from recipe_runs import CORPUS, HF_CACHE_ID, RECIPES, TINY_TRAINING, checkpoints, read_summary
from safetensors.torch import load_file

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

HF_METHODS = sorted(p.stem for p in (RECIPES / "KWS" / "hparams").glob("hf_*.yaml"))
RUNS = (
    [("KWS", m) for m in HF_METHODS]
    + [("intent", "hf_finetune"), ("emotion", "hf_frozen")]
    + [("ASR", m) for m in ("hf_finetune", "hf_frozen", "hf_lora")]
)
# The encoder's weights inside an HFEncoder's state dict: SpeechBrain's wrapper holds the transformers model.
PREFIX = "wrapper.model."


def last_checkpoint(run_folder, name):
    return checkpoints(run_folder, name)[-1]


def source_weights(folder):
    return {PREFIX + k: v for k, v in load_file(folder / "model.safetensors").items()}


def relative_change(state, source):
    """How far the transformer layers' weight matrices moved, relative to their norm (what a new model of the
    architecture starts from equal, layer norms at one and Whisper's sinusoidal positions, is left out)."""
    keys = [k for k in source if k in state and ".layers." in k and source[k].dim() == 2]
    moved = sum(float((state[k].float() - source[k].float()).norm() ** 2) for k in keys) ** 0.5
    return moved / sum(float(source[k].float().norm() ** 2) for k in keys) ** 0.5


@pytest.fixture(scope="module")
def trained_hf(tiny_corpus, hf_source_encoder, tmp_path_factory, run_recipe):
    """``trained_hf(task, method)``: the output folder of that hf_*.yaml run from the tiny hub-format source."""
    root, _ = tiny_corpus
    source, _ = hf_source_encoder
    folders = {}

    def get(task, method):
        if (task, method) not in folders:
            out = tmp_path_factory.mktemp(f"{task}-{method}")
            args = [
                "--data_folder",
                root / CORPUS[task],
                "--output_folder",
                out / "run",
                *TINY_TRAINING,
                "--pretrained_source",
                source,
            ]
            if method == "hf_frozen" and task != "ASR":
                args += ["--feature_cache", out / "feature_cache"]
            result = run_recipe(task, f"{method}.yaml", *args)
            assert result.returncode == 0, result.stderr[-4000:]
            folders[task, method] = out / "run"
        return folders[task, method]

    return get


def test_source_stage_writes_a_hub_format_encoder_that_transformers_and_hf_encoder_load(
    hf_source_encoder, pretrained_encoder, monkeypatch
):
    from transformers import AutoModel

    from speechbrain_xfer.encoders import HFEncoder

    folder, cache = hf_source_encoder
    files = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= files
    assert {"ctc_head.ckpt", "tokenizer.ckpt", "ewc.ckpt"} <= files
    # The student writes with its teacher's characters, in the teacher's order.
    assert (folder / "tokenizer.ckpt").read_text() == (pretrained_encoder / "tokenizer.ckpt").read_text()
    assert json.loads((folder / "config.json").read_text())["model_type"] == "whisper"
    saved = load_file(folder / "model.safetensors")
    model = AutoModel.from_pretrained(folder)
    key = "encoder.layers.1.self_attn.k_proj.weight"
    assert torch.equal(model.state_dict()[key], saved[key])
    assert torch.equal(HFEncoder(folder).model.state_dict()[key], saved[key])

    run = folder.parent
    summary = read_summary(run)
    assert summary["metric"] == "CER" and summary["steps"] == 2
    assert "R_distillation" in (run / "train_log.txt").read_text(), "the distillation term is logged"
    initial = load_file(run / "save" / "init" / "model.safetensors")
    assert not torch.equal(initial[key], saved[key]), "the exported encoder is the trained one"
    ewc = torch.load(folder / "ewc.ckpt", weights_only=True)
    assert max(float(v.max()) for k, v in ewc.items() if k.startswith("fisher__")) == pytest.approx(1.0)

    # The hub-id path of a model downloaded once: offline, from the HF cache layout.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    by_id = HFEncoder(HF_CACHE_ID, save_path=cache)
    assert torch.equal(by_id.model.state_dict()[key], saved[key])


@pytest.mark.parametrize(("task", "method"), RUNS, ids=[f"{t}-{m}" for t, m in RUNS])
def test_hf_recipe_trains_tests_and_summarizes(trained_hf, task, method):
    summary = read_summary(trained_hf(task, method))
    metric = "CER" if task == "ASR" else "accuracy"
    assert summary["metric"] == metric and summary["steps"] > 0 and summary["valid_history"]
    assert summary["test"][metric] >= 0.0


def test_hf_scratch_trains_the_architecture_from_random_weights(trained_hf, hf_source_encoder):
    source = source_weights(hf_source_encoder[0])
    scratch = last_checkpoint(trained_hf("KWS", "hf_scratch"), "encoder")
    finetuned = last_checkpoint(trained_hf("KWS", "hf_finetune"), "encoder")
    assert set(source) <= set(scratch), "the same architecture"
    # A few steps move fine-tuned weights by far less than their norm; random ones are another point altogether.
    assert relative_change(finetuned, source) < 0.1
    assert relative_change(scratch, source) > 0.5


@pytest.mark.parametrize("task", ["KWS", "emotion"])
def test_hf_frozen_trains_layer_weights_on_cached_hidden_states(trained_hf, hf_source_encoder, task):
    run = trained_hf(task, "hf_frozen")
    encoder = last_checkpoint(run, "encoder")
    source = source_weights(hf_source_encoder[0])
    assert all(torch.equal(encoder[k], v) for k, v in source.items() if k in encoder), "the encoder changed"
    weights = encoder["layer_weights"]
    assert weights.shape == (3,) and weights.abs().sum() > 0, "layer weights start at zero and must have trained"
    items = list((run.parent / "feature_cache").rglob("*.pt"))
    assert items, "nothing was cached"
    cached = torch.load(items[0], weights_only=True)["encoded"]
    assert cached.dim() == 3 and cached.shape[1:] == (3, 32), "every hidden state is cached: (frames, 3, 32)"


def test_hf_frozen_with_output_layer_auto_probes_the_layer_logme_chose_and_its_export_keeps_it(
    tiny_corpus, hf_source_encoder, run_recipe, tmp_path, monkeypatch
):
    from speechbrain.inference.classifiers import EncoderClassifier

    from speechbrain_xfer.hub.export import export_experiment

    root, _ = tiny_corpus
    run = tmp_path / "run"
    args = ["--data_folder", root / CORPUS["KWS"], "--output_folder", run, *TINY_TRAINING]
    args += ["--pretrained_source", hf_source_encoder[0], "--feature_cache", tmp_path / "cache"]
    result = run_recipe("KWS", "hf_frozen.yaml", *args, "--layer_sum", "False", "--output_layer", "auto")
    assert result.returncode == 0, result.stderr[-4000:]
    rows = (run / "output_layer.csv").read_text().splitlines()[1:]
    scores = [float(row.split(",")[2]) for row in rows]  # module, layer, logme, hscore, chosen
    chosen = scores.index(max(scores))
    assert len(rows) == 3 and rows[chosen].endswith("True")
    assert f"output_layer auto for encoder: hidden state {chosen} of 2" in (run / "log.txt").read_text()
    assert int(last_checkpoint(run, "encoder")["chosen_layer"]) == chosen
    assert "layer_weights" not in last_checkpoint(run, "encoder")

    export = tmp_path / "model"
    assert export_experiment(str(run), str(export)).max_abs_diff <= 1e-4
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    classifier = EncoderClassifier.from_hparams(source=str(export), savedir=tmp_path / "savedir")
    assert classifier.mods.embedding_model.encoder.selected_layer == chosen


def test_hf_lora_adapts_the_attention_projections_only(trained_hf):
    saved = last_checkpoint(trained_hf("KWS", "hf_lora"), "encoder")
    up = [k for k in saved if k.endswith("adapter_up_proj.weight")]
    assert len(up) == 2 * 4, sorted(saved)  # q, k, v and out projections of both layers
    assert all("self_attn" in k for k in up)
    assert all(saved[k].abs().sum() > 0 for k in up), "LoRA up projections start at zero and must have trained"
    assert not [k for k in saved if k.endswith("fc1.weight") or k.endswith("k_proj.weight")], "frozen weights saved"


def test_hf_layer_decay_gives_lower_layers_smaller_learning_rates(trained_hf):
    run = trained_hf("KWS", "hf_layer_decay")
    groups = last_checkpoint(run, "encoder_optimizer")["param_groups"]
    rates = [group["lr"] for group in groups]
    assert len(rates) == 3 and rates == sorted(rates), rates  # front end, layer 1, layer 2 (+ layer weights)
    assert rates[0] == pytest.approx(0.0005 * 0.7**2) and rates[-1] == pytest.approx(0.0005)


def test_hf_asr_fine_tunes_the_source_ctc_head(trained_hf, hf_source_encoder):
    folder, _ = hf_source_encoder
    run = trained_hf("ASR", "hf_finetune")
    assert f"ctc_head ({folder / 'ctc_head.ckpt'})" in (run / "log.txt").read_text()
    assert (run / "save" / "char_tokenizer.txt").read_text() == (folder / "tokenizer.ckpt").read_text()


@pytest.fixture(scope="module")
def hf_exported(trained_hf, tmp_path_factory):
    """``hf_exported(method)``: ``(run folder, export folder)`` of that KWS run, exported with ``sbx export``."""
    from speechbrain_xfer.hub.export import export_experiment

    exports = {}

    def get(method):
        if method not in exports:
            run = trained_hf("KWS", method)
            out = tmp_path_factory.mktemp(f"export-{method}") / "model"
            exports[method] = (run, out, export_experiment(str(run), str(out)))
        return exports[method]

    return get


def test_hf_export_classifies_a_44k_stereo_file_in_stock_encoder_classifier(
    hf_exported, hf_source_encoder, tiny_corpus, tmp_path, monkeypatch
):
    import soundfile
    import torchaudio
    from speechbrain.inference.classifiers import EncoderClassifier

    from speechbrain_xfer.synthspeech.synth import read_manifest

    run, export, exported = hf_exported("hf_finetune")
    assert exported.max_abs_diff <= 1e-4
    files = {p.name for p in export.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "encoder.ckpt", "head.ckpt"} <= files
    text = (export / "hyperparams.yaml").read_text()
    assert str(hf_source_encoder[0]) not in text, "the export must not point back at the pretrained source"
    assert torch.load(export / "encoder.ckpt", weights_only=True).keys() == {"layer_weights", "wrapper._mel_filters"}

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    classifier = EncoderClassifier.from_hparams(source=str(export), savedir=tmp_path / "savedir")
    root, _ = tiny_corpus
    row = read_manifest(root / CORPUS["KWS"] / "test.csv")[0]
    path = row["wav"].replace("$data_root", str(root / CORPUS["KWS"]))
    wav, rate = soundfile.read(path, dtype="float32")
    stereo = torchaudio.functional.resample(torch.from_numpy(wav), rate, 44100).repeat(2, 1)
    soundfile.write(tmp_path / "stereo44k.wav", stereo.numpy().T, 44100)
    mono_prob, _, _, mono_label = classifier.classify_file(path)
    prob, _, _, label = classifier.classify_file(str(tmp_path / "stereo44k.wav"))
    assert label == mono_label and label[0] in (export / "label_encoder.ckpt").read_text()
    assert float((prob - mono_prob).abs().max()) < 0.5  # the same clip, resampled twice


def test_hf_lora_export_is_merged_into_a_plain_encoder(hf_exported, hf_source_encoder):
    run, export, exported = hf_exported("hf_lora")
    assert exported.max_abs_diff <= 1e-4, "the merged encoder must compute what the adapted one did"
    assert "AdaptedEncoder" not in (export / "hyperparams.yaml").read_text()
    merged = load_file(export / "model.safetensors")
    assert not [k for k in merged if "adapter" in k or "pretrained_module" in k]
    # W + (alpha / rank) U D, from the pretrained W and the adapters the run trained (alpha = rank = 8).
    source = load_file(hf_source_encoder[0] / "model.safetensors")
    adapters = last_checkpoint(run, "encoder")
    name = "encoder.layers.0.self_attn.q_proj"
    lora = f"adapted_model.{PREFIX}{name}"
    up, down = adapters[f"{lora}.adapter_up_proj.weight"], adapters[f"{lora}.adapter_down_proj.weight"]
    expected = source[f"{name}.weight"] + up @ down
    torch.testing.assert_close(merged[f"{name}.weight"], expected, rtol=0, atol=1e-6)
    assert not torch.equal(merged[f"{name}.weight"], source[f"{name}.weight"]), "the adapters trained"


def test_hf_export_fine_tunes_again_as_a_pretrained_source(hf_exported, tiny_corpus, run_recipe, tmp_path):
    _, export, _ = hf_exported("hf_finetune")
    root, _ = tiny_corpus
    result = run_recipe(
        "KWS",
        "hf_finetune.yaml",
        "--data_folder",
        root / CORPUS["KWS"],
        "--output_folder",
        tmp_path / "again",
        *TINY_TRAINING,
        "--pretrained_source",
        export,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "did not have parameters for the key" not in result.stderr
    assert read_summary(tmp_path / "again")["steps"] > 0


def test_hf_export_pushed_to_the_hub_loads_from_its_hub_id(hf_exported, tiny_corpus, tmp_path, monkeypatch):
    """The network call of the upload is replaced (the one replacement in tests): the recorder puts what would be
    uploaded into an HF cache, where the stock class then loads it by hub id, offline."""
    import huggingface_hub.constants
    from speechbrain.inference.classifiers import EncoderClassifier
    from speechbrain.utils.fetching import FetchConfig

    from speechbrain_xfer.encoders.hf_folders import add_to_hf_cache
    from speechbrain_xfer.hub.push import push_export

    _, export, _ = hf_exported("hf_finetune")
    cache = tmp_path / "hub"

    class UploadToCache:
        def create_repo(self, repo_id, private, exist_ok, repo_type):
            return f"https://hub.example/{repo_id}"

        def upload_folder(self, folder_path, repo_id, repo_type, commit_message):
            self.files = sorted(p.name for p in Path(folder_path).iterdir())
            add_to_hf_cache(folder_path, repo_id, cache_dir=cache)

    api = UploadToCache()
    push_export(str(export), "someone/tiny-kws", token="hf_test", api=api)
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "encoder.ckpt"} <= set(api.files)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    fetch_config = FetchConfig(huggingface_cache_dir=str(cache))
    by_id = EncoderClassifier.from_hparams(
        source="someone/tiny-kws", savedir=tmp_path / "by_id", fetch_config=fetch_config
    )
    local = EncoderClassifier.from_hparams(source=str(export), savedir=tmp_path / "local")
    wav = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0)) * 0.1
    torch.testing.assert_close(by_id.classify_batch(wav)[0], local.classify_batch(wav)[0])
