"""load_speechbrain_modules on tiny modules saved as SpeechBrain checkpoints (state_dicts in <name>.ckpt)."""

import huggingface_hub.constants
import pytest
import torch

from speechbrain_xfer.pretrained import PretrainedSourceError, load_speechbrain_modules


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def tiny(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def assert_same(module, other):
    for (name, tensor), other_tensor in zip(module.state_dict().items(), other.state_dict().values(), strict=True):
        assert torch.equal(tensor, other_tensor), name


@pytest.fixture
def pretrained(tmp_path):
    """A folder with encoder.ckpt and embedding_model.ckpt, and the modules they were saved from."""
    encoder, head = tiny(1), tiny(2)
    torch.save(encoder.state_dict(), tmp_path / "encoder.ckpt")
    torch.save(head.state_dict(), tmp_path / "embedding_model.ckpt")
    return tmp_path, encoder, head


def test_weights_are_loaded_from_name_ckpt(pretrained):
    folder, encoder, _ = pretrained
    fresh = tiny(3)
    assert not torch.equal(fresh[0].weight, encoder[0].weight)
    paths = load_speechbrain_modules({"encoder": fresh}, folder)
    assert_same(fresh, encoder)
    assert paths["encoder"].resolve() == (folder / "encoder.ckpt").resolve()


def test_files_rename_checkpoints_and_savedir_collects_them(pretrained, tmp_path):
    folder, encoder, head = pretrained
    fresh_encoder, fresh_head = tiny(4), tiny(5)
    savedir = tmp_path / "collected"
    paths = load_speechbrain_modules(
        {"encoder": fresh_encoder, "head": fresh_head},
        str(folder),
        files={"head": "embedding_model.ckpt"},
        savedir=savedir,
    )
    assert_same(fresh_encoder, encoder)
    assert_same(fresh_head, head)
    assert (savedir / "head.ckpt").exists() and (savedir / "encoder.ckpt").exists()
    assert set(paths) == {"encoder", "head"}


def test_missing_checkpoint_names_the_file(pretrained):
    folder, _, _ = pretrained
    with pytest.raises(PretrainedSourceError, match="decoder.ckpt") as err:
        load_speechbrain_modules({"encoder": tiny(6), "decoder": tiny(7)}, folder)
    assert "'decoder'" in str(err.value) and str(folder) in str(err.value)
    with pytest.raises(PretrainedSourceError, match="other.ckpt"):
        load_speechbrain_modules({"encoder": tiny(6)}, folder, files={"encoder": "other.ckpt"})


def test_missing_folder_and_unknown_hub_repo_are_reported(tmp_path):
    with pytest.raises(PretrainedSourceError, match="no such folder"):
        load_speechbrain_modules({"encoder": tiny(8)}, tmp_path / "nowhere")
    with pytest.raises(PretrainedSourceError, match="no-such-org/no-such-model"):
        load_speechbrain_modules({"encoder": tiny(8)}, "no-such-org/no-such-model")


def test_files_for_unknown_modules_are_rejected(pretrained):
    folder, _, _ = pretrained
    with pytest.raises(ValueError, match="decoder"):
        load_speechbrain_modules({"encoder": tiny(9)}, folder, files={"decoder": "decoder.ckpt"})
