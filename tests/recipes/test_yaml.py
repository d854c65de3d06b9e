"""Every recipe YAML loads, every key of it is used, and a misspelt override is refused."""

import glob
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.run_opts import RunOptions

from speechbrain_xfer.recipe_config import class_count_overrides, load_recipe_hparams

REPO = Path(__file__).resolve().parents[2]
YAMLS = sorted(Path(p).relative_to(REPO) for p in glob.glob(str(REPO / "recipes" / "**" / "*.yaml"), recursive=True))
# The tiny-corpus folder each recipe trains on; a recipe not listed here gets the corpus root (loading reads no data).
CORPUS_FOLDER = {
    "pretrain": "asr/source",
    "KWS": "words/target",
    "intent": "intent",
    "emotion": "emotion",
    "ASR": "asr/target",
}
# YAMLs that train on another corpus folder than their recipe's others.
YAML_CORPUS_FOLDER = {"words_conv.yaml": "words/source", "words_conv_bandlimit.yaml": "words/source"}

TOP_LEVEL_KEY = re.compile(r"^([A-Za-z_]\w*)\s*:", re.MULTILINE)
COMMENT = re.compile(r"(^|\s)#.*$", re.MULTILINE)
# How code reads a hyperparameter: hparams["x"], hparams[f"{split}_x"], hparams.get("x"), getattr(self.hparams,
# "x"), hasattr(...), self.hparams.x, brain.hparams.x.
CODE_READS = (
    re.compile(r"""hparams\[\s*f?["']([^"']+)["']"""),
    re.compile(r"""hparams\.get\(\s*f?["']([^"']+)["']"""),
    re.compile(r"""(?:getattr|hasattr)\(\s*(?:\w+\.)?hparams\s*,\s*f?["']([^"']+)["']"""),
    re.compile(r"hparams\.([A-Za-z_]\w*)"),
)


def top_level_keys(text):
    return TOP_LEVEL_KEY.findall(text)


def code_read_patterns():
    """Regexes of the keys that the package and the recipes' scripts read, with f-string fields as wildcards."""
    sources = [*(REPO / "speechbrain_xfer").rglob("*.py"), *(REPO / "recipes").rglob("train*.py")]
    names = set()
    for source in sources:
        text = source.read_text()
        for pattern in CODE_READS:
            names.update(pattern.findall(text))
    # SpeechBrain's Brain takes its run options (max_grad_norm, precision, ...) from the hparams when they are there.
    names.update(RunOptions().as_dict())
    return [re.compile(re.sub(r"\\\{[^}]*\\\}", r"\\w+", re.escape(name)) + "$") for name in sorted(names)]


def unused_keys(text, read_patterns):
    """Top-level keys that no other key references (``<key>``, ``<key[...]>``, ``<key.x>``) and no code reads."""
    body = COMMENT.sub("", text)
    unused = []
    for key in top_level_keys(text):
        if key.startswith("__"):  # hyperpyyaml runs these (e.g. __set_seed) as it loads
            continue
        if re.search(rf"<{re.escape(key)}[>\[.]", body) or any(p.match(key) for p in read_patterns):
            continue
        unused.append(key)
    return unused


@pytest.fixture(scope="module")
def read_patterns():
    return code_read_patterns()


def overrides_for(path, text, corpus_root, output_folder, hf_folder=None):
    recipe = path.parts[-3]
    folder = YAML_CORPUS_FOLDER.get(path.name, CORPUS_FOLDER.get(recipe, ""))
    overrides = {"data_folder": str(corpus_root / folder), "output_folder": str(output_folder)}
    if "pretrained_source" in top_level_keys(text):
        # An HFEncoder loads its source as the YAML loads, so it needs a real (tiny) model folder.
        builds_hf = "speechbrain_xfer.encoders.HFEncoder" in text
        overrides["pretrained_source"] = str(hf_folder) if builds_hf else "a/pretrained/folder"
    return overrides


def test_the_glob_finds_every_recipe():
    recipes = {p.parts[-3] for p in YAMLS}
    assert {"pretrain", "KWS", "intent", "emotion"} <= recipes


@pytest.mark.parametrize("path", YAMLS, ids=str)
def test_yaml_loads_and_builds_its_objects(path, tiny_corpus, tiny_wav2vec2, tmp_path, monkeypatch):
    root, _ = tiny_corpus
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # Loading runs the YAML's seed_everything, which sets this for the whole process: undo it afterwards.
    monkeypatch.setenv("SB_GLOBAL_SEED", "0")
    text = (REPO / path).read_text()
    # As run_experiment does: `n_classes: auto` counts the labels of the training manifest.
    overrides = class_count_overrides(REPO / path, overrides_for(path, text, root, tmp_path / "out", tiny_wav2vec2))
    hparams = load_recipe_hparams(REPO / path, overrides)

    assert hparams["output_folder"] == str(tmp_path / "out")
    assert "<seed>" in re.search(r"^output_folder:.*$", text, re.MULTILINE).group(0), "output_folder must name the seed"
    modules = hparams["modules"]
    assert modules and all(isinstance(m, torch.nn.Module) for m in modules.values())
    checkpointer = hparams["checkpointer"]
    assert isinstance(checkpointer, Checkpointer)
    assert checkpointer.checkpoints_dir.is_relative_to(tmp_path)
    # Resuming needs every module, the epoch counter and every scheduler in the checkpoint.
    recoverable = {id(obj) for obj in checkpointer.recoverables.values()}
    needed = {**modules, "epoch_counter": hparams["epoch_counter"]}
    needed.update({k: v for k, v in hparams.items() if k.startswith("lr_annealing")})
    missing = [name for name, obj in needed.items() if id(obj) not in recoverable]
    assert not missing, f"{path}: the checkpointer does not save {missing}"


@pytest.mark.parametrize("path", YAMLS, ids=str)
def test_every_key_is_used(path, read_patterns):
    unused = unused_keys((REPO / path).read_text(), read_patterns)
    assert not unused, (
        f"{path}: {unused} are neither referenced by another key (<key>) nor read by the code "
        f"of speechbrain_xfer/ or recipes/**/train.py"
    )


def test_unused_key_check_sees_references_reads_and_comments():
    text = "seed: 1\n__set_seed: 0\na: !ref <seed>\nb: 2  # <c>\nc: 3\nd: [<a[0]>]\ntrain_csv: x\nmax_grad_norm: 1\n"
    patterns = [re.compile(r"\w+_csv$")]
    # ``c`` only appears in a comment, ``a`` is referenced as <a[0]>, train_csv matches hparams[f"{split}_csv"].
    assert unused_keys(text, patterns) == ["b", "c", "d", "max_grad_norm"]


def test_the_code_scan_finds_the_reads_of_the_brains_and_recipes(read_patterns):
    for key in ("targets", "steps_per_epoch", "train_csv", "encoder_opt_class", "export_folder", "max_grad_norm"):
        assert any(p.match(key) for p in read_patterns), key
    assert not any(p.match("number_of_epochs") for p in read_patterns)


def test_a_misspelt_override_names_the_key_and_the_yaml(tmp_path):
    out = tmp_path / "out"
    command = [
        sys.executable,
        "train.py",
        "hparams/scratch.yaml",
        "--data_folder",
        str(tmp_path),
        "--output_folder",
        str(out),
        "--number_of_epoch",
        "3",
    ]
    result = subprocess.run(
        command,
        cwd=REPO / "recipes" / "SynthSpeech" / "KWS",
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=120,
    )
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "'number_of_epoch'" in last_line and "hparams/scratch.yaml" in last_line, result.stderr[-2000:]
    assert not out.exists(), "nothing is created before the YAML loads"


# -- one YAML per method, the shared parts kept identical ---------------------------------------------------------
# Keys a method's YAML may set differently from its task's finetune.yaml (hf_finetune.yaml for hf_*): every other
# key must be the same node, so that a change to the shared parts cannot reach only some methods.
ANY_METHOD = {"output_folder", "lr"}  # the run's folder; the head's rate, chosen per method by `sbx tune`
METHOD_KEYS = {
    # No pretrained weights; one optimizer; intent keeps one attention query per slot (docs/tuning.md); ASR
    # builds its own character set instead of the source's.
    "scratch": {
        "pretrained_source",
        "pretrained_modules",
        "encoder_opt_class",
        "encoder_lr",
        "encoder",
        "attention_heads",
        "alphabet",
        "tokenizer_source",
    },
    # The regularizer; the KWS recipe's l2sp also carries the gradual-unfreezing keys its DDP test uses.
    "l2sp": {"regularizers", "regularizer_weights", "freeze_encoder_steps", "unfreeze_every"},
    "ewc": {"regularizers", "regularizer_weights", "pretrained_modules"},  # + the source task's Fisher
    "delta": {"regularizers", "regularizer_weights"},
    "bss": {"regularizers", "regularizer_weights"},
    # Head only, from cached encoder outputs; intent's heads alone need more epochs.
    "frozen": {
        "freeze_encoder",
        "cache_folder",
        "feature_cache",
        "encoder_opt_class",
        "encoder_lr",
        "encoder",
        "number_of_epochs",
    },
    "lora": {"base_encoder", "encoder", "encoder_opt_class", "encoder_lr", "pretrained_modules"},
    "layer_decay": {"layer_decay"},
}


def _node(value):
    """A YAML node as comparable data: tags and values, no comments."""
    tag = getattr(getattr(value, "tag", None), "value", None)
    if isinstance(value, dict):
        return tag, tuple(sorted((key, _node(item)) for key, item in value.items()))
    if isinstance(value, list):
        return tag, tuple(_node(item) for item in value)
    return tag, str(value)


def _encoder_prefix(path):
    """``hf_`` (a hub-format encoder) or ``ge2e_`` (the GE2E speaker encoder): its own finetune.yaml."""
    return next((p for p in ("hf_", "ge2e_") if path.stem.startswith(p)), "")


METHOD_YAMLS = [
    path
    for path in YAMLS
    if path.parts[1] in ("SynthSpeech", "FSDD", "RAVDESS")
    and path.parts[2] != "pretrain"
    and path.stem.removeprefix(_encoder_prefix(path)) not in ("finetune",)
]


def test_every_method_yaml_is_checked_against_its_finetune_yaml():
    methods = {path.stem.removeprefix(_encoder_prefix(path)) for path in METHOD_YAMLS}
    assert methods == set(METHOD_KEYS), f"methods without a rule here: {methods - set(METHOD_KEYS)}"


@pytest.mark.parametrize("path", METHOD_YAMLS, ids=str)
def test_a_method_yaml_differs_from_finetune_only_in_the_keys_of_its_method(path):
    from ruamel.yaml import YAML

    reference = path.with_name(_encoder_prefix(path) + "finetune.yaml")
    method, other = YAML().load((REPO / path).read_text()), YAML().load((REPO / reference).read_text())
    differing = {key for key in set(method) | set(other) if _node(method.get(key)) != _node(other.get(key))}
    owned = ANY_METHOD | METHOD_KEYS[path.stem.removeprefix(_encoder_prefix(path))]
    assert differing <= owned, f"{path} differs from {reference.name} in {sorted(differing - owned)}"


def test_every_key_the_package_reads_is_in_the_key_reference():
    reference = (REPO / "docs" / "recipe_keys.md").read_text()
    documented = set()
    for line in reference.splitlines():
        if line.startswith("| `"):
            documented.update(re.findall(r"`([A-Za-z_]\w*)`", line.split(" | ")[0]))
    read = set()
    for source in (REPO / "speechbrain_xfer").rglob("*.py"):
        text = source.read_text()
        for pattern in CODE_READS:
            read.update(name for name in pattern.findall(text) if name != "get")  # hparams.get(...) is a call
    assert len(read) > 40  # the patterns still find the package's reads
    missing = []
    for name in sorted(read):
        wildcard = re.compile(re.sub(r"\\\{[^}]*\\\}", r"\\w+", re.escape(name)) + "$")  # {split}_csv
        if not any(wildcard.match(key) for key in documented):
            missing.append(name)
    assert not missing, f"keys the package reads that docs/recipe_keys.md does not list: {missing}"
