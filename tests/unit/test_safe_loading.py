"""Safe loading: a checkpoint crafted to run code when unpickled is refused, and the code never runs."""

import pathlib

import pytest
import torch

from speechbrain_xfer.checkpoints import AtomicCheckpointer
from speechbrain_xfer.pretrained.errors import PretrainedSourceError
from speechbrain_xfer.pretrained.loading import load_speechbrain_modules


class RunsCodeWhenLoaded:
    """Unpickling this calls ``Path.touch(marker)``: any code could run in its place."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def craft(path, marker):
    """A .ckpt that looks like a state dict and runs code when unpickled by a full (not weights-only) load."""
    torch.save({"weight": torch.zeros(2, 4), "bias": RunsCodeWhenLoaded(marker)}, path)


def test_the_crafted_file_does_run_code_under_a_full_load(tmp_path):
    # The control: without weights_only the payload runs, so the tests below test something.
    craft(tmp_path / "x.ckpt", tmp_path / "ran")
    torch.load(tmp_path / "x.ckpt", weights_only=False)
    assert (tmp_path / "ran").exists()


def test_a_pretrained_folder_with_a_crafted_checkpoint_is_refused(tmp_path):
    (tmp_path / "source").mkdir()
    craft(tmp_path / "source" / "encoder.ckpt", tmp_path / "ran")
    with pytest.raises(PretrainedSourceError, match="encoder.ckpt"):
        load_speechbrain_modules({"encoder": torch.nn.Linear(4, 2)}, tmp_path / "source")
    assert not (tmp_path / "ran").exists()


def test_a_crafted_training_checkpoint_is_never_loaded(tmp_path):
    layer = torch.nn.Linear(4, 2)
    checkpointer = AtomicCheckpointer(tmp_path / "save", {"layer": layer})
    saved = checkpointer.save_checkpoint()
    craft(saved.path / "layer.ckpt", tmp_path / "ran")
    with pytest.raises(RuntimeError):
        AtomicCheckpointer(tmp_path / "save", {"layer": torch.nn.Linear(4, 2)}).recover_if_possible()
    assert not (tmp_path / "ran").exists()
