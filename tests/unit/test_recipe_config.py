from pathlib import Path

import pytest
import torch

from speechbrain_xfer.pretrained.errors import PretrainedSourceError
from speechbrain_xfer.pretrained.loading import save_pretrained_folder
from speechbrain_xfer.recipe_config import RecipeConfigError, load_pretrained, load_recipe_hparams

KWS_HPARAMS = Path(__file__).resolve().parents[2] / "recipes" / "SynthSpeech" / "KWS" / "hparams"


def write_yaml(tmp_path, text):
    path = tmp_path / "method.yaml"
    path.write_text(text)
    return path


def test_an_unknown_override_names_the_key_and_the_file(tmp_path):
    path = write_yaml(tmp_path, "lr: 0.1\n")
    with pytest.raises(RecipeConfigError, match=r"method\.yaml: no such key: 'learning_rate'"):
        load_recipe_hparams(path, "learning_rate: 0.5")


def test_a_missing_placeholder_says_how_to_give_it(tmp_path):
    path = write_yaml(tmp_path, "data_folder: !PLACEHOLDER\ntrain_csv: !ref <data_folder>/train.csv\n")
    with pytest.raises(RecipeConfigError, match=r"method\.yaml: the key 'data_folder' .* --data_folder="):
        load_recipe_hparams(path)
    assert load_recipe_hparams(path, {"data_folder": "d"})["train_csv"] == "d/train.csv"


def test_other_yaml_errors_are_not_disguised(tmp_path):
    with pytest.raises(ValueError, match="reference") as info:
        load_recipe_hparams(write_yaml(tmp_path, "a: !ref <nowhere>\n"))
    assert not isinstance(info.value, RecipeConfigError)


@pytest.fixture
def pretrained_folder(tmp_path):
    """A pretrained folder holding an encoder of the recipes' architecture, with other weights than a fresh one."""
    overrides = {
        "data_folder": "d",
        "output_folder": str(tmp_path),
        "seed": 123,
        "n_classes": 10,
    }  # the recipes seed 1 as they load
    hparams = load_recipe_hparams(KWS_HPARAMS / "scratch.yaml", overrides)
    folder = tmp_path / "pretrained"
    save_pretrained_folder(str(folder), {"encoder": hparams["encoder"]})
    return folder, torch.load(folder / "encoder.ckpt", weights_only=True)


def recipe_hparams(method, tmp_path, source):
    overrides = {"data_folder": "d", "output_folder": str(tmp_path / method), "pretrained_source": str(source)}
    overrides["n_classes"] = 10  # `auto` counts the labels of a training manifest; there is none here
    return load_recipe_hparams(KWS_HPARAMS / f"{method}.yaml", overrides)


@pytest.mark.parametrize("method", ["finetune", "frozen"])
def test_load_pretrained_fills_the_encoder(method, pretrained_folder, tmp_path):
    folder, state = pretrained_folder
    hparams = recipe_hparams(method, tmp_path, folder)
    assert not torch.equal(hparams["encoder"].state_dict()["blocks.0.conv.weight"], state["blocks.0.conv.weight"])
    load_pretrained(hparams)
    loaded = hparams["encoder"].state_dict()
    assert all(torch.equal(loaded[name], value) for name, value in state.items())


def test_load_pretrained_fills_the_base_encoder_under_the_lora_adapters(pretrained_folder, tmp_path):
    folder, state = pretrained_folder
    hparams = recipe_hparams("lora", tmp_path, folder)
    load_pretrained(hparams)
    # Adapted layers keep their weights one level down: blocks.0.conv.weight -> blocks.0.conv.pretrained_module.weight
    base = {k.replace(".pretrained_module", ""): v for k, v in hparams["base_encoder"].state_dict().items()}
    assert all(torch.equal(base[name], value) for name, value in state.items())
    adapters = [k for k in base if "adapter_" in k]
    assert adapters and all(k not in state for k in adapters)
    # The modules trained by the recipe see the same weights: the adapted encoder wraps this base encoder.
    assert hparams["modules"]["encoder"].adapted_model is hparams["base_encoder"]


def test_load_pretrained_without_a_source_changes_nothing(tmp_path):
    overrides = {"data_folder": "d", "output_folder": str(tmp_path), "n_classes": 10}
    hparams = load_recipe_hparams(KWS_HPARAMS / "scratch.yaml", overrides)
    before = {k: v.clone() for k, v in hparams["encoder"].state_dict().items()}
    load_pretrained(hparams)
    assert all(torch.equal(v, before[k]) for k, v in hparams["encoder"].state_dict().items())


def test_load_pretrained_names_the_missing_file(tmp_path):
    (tmp_path / "empty").mkdir()
    hparams = recipe_hparams("finetune", tmp_path, tmp_path / "empty")
    with pytest.raises(PretrainedSourceError, match="encoder.ckpt"):
        load_pretrained(hparams)
