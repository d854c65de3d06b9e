"""AtomicCheckpointer: a save or a deletion stopped half way never leaves a checkpoint that lists but fails."""

import logging

import pytest
import torch
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_xfer.checkpoints import AtomicCheckpointer


class Stop(BaseException):
    """What a kill is to the process: nothing after it runs (not an Exception, so nothing catches it)."""


def stop_after_first_file(checkpointer):
    """Makes the next save stop after its first recoverable's file is written, before the second one's."""

    def stop(obj, path):
        raise Stop

    checkpointer.custom_save_hooks["second"] = stop


def build(kind, folder, seed):
    torch.manual_seed(seed)
    layers = {"first": torch.nn.Linear(2, 2), "second": torch.nn.Linear(2, 2)}
    return kind(folder, layers), layers


def test_a_save_stopped_half_way_is_not_listed_and_the_previous_checkpoint_loads(tmp_path):
    checkpointer, layers = build(AtomicCheckpointer, tmp_path, seed=0)
    good = checkpointer.save_checkpoint(meta={"epoch": 1})
    saved = {name: layer.weight.detach().clone() for name, layer in layers.items()}
    stop_after_first_file(checkpointer)
    with torch.no_grad():
        layers["first"].weight.add_(1.0)
    with pytest.raises(Stop):
        checkpointer.save_checkpoint(meta={"epoch": 2})
    assert [c.path for c in checkpointer.list_checkpoints()] == [good.path]
    assert any(p.name.startswith(".staging+") for p in tmp_path.iterdir())

    # The next run: its checkpointer clears the leftover, and resumes from the good checkpoint.
    resumed, resumed_layers = build(AtomicCheckpointer, tmp_path, seed=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [good.path.name]
    assert resumed.recover_if_possible().path == good.path
    for name, layer in resumed_layers.items():
        assert torch.equal(layer.weight, saved[name])


def test_speechbrains_checkpointer_lists_the_half_written_checkpoint(tmp_path):
    """Why AtomicCheckpointer exists: the same stop with SpeechBrain's class leaves a checkpoint that fails."""
    checkpointer, _ = build(Checkpointer, tmp_path, seed=0)
    checkpointer.save_checkpoint(meta={"epoch": 1})
    stop_after_first_file(checkpointer)
    with pytest.raises(Stop):
        checkpointer.save_checkpoint(meta={"epoch": 2})
    resumed, _ = build(Checkpointer, tmp_path, seed=1)
    assert len(resumed.list_checkpoints()) == 2
    # SpeechBrain means to raise "missing a load path for second", but its own lookup of whether that
    # recoverable is optional fails first.
    with pytest.raises(KeyError, match="second"):
        resumed.recover_if_possible()
    # AtomicCheckpointer, given such a folder, falls back to the complete checkpoint.
    fallback, _ = build(AtomicCheckpointer, tmp_path, seed=1)
    assert fallback.recover_if_possible().meta["epoch"] == 1


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path, caplog):
    checkpointer, layers = build(AtomicCheckpointer, tmp_path, seed=0)
    older = checkpointer.save_checkpoint(meta={"epoch": 1})
    saved = layers["first"].weight.detach().clone()
    with torch.no_grad():
        layers["first"].weight.add_(1.0)
    newest = checkpointer.save_checkpoint(meta={"epoch": 2})
    newest.paramfiles["first"].write_bytes(newest.paramfiles["first"].read_bytes()[:50])  # as a kill mid-write leaves

    resumed, resumed_layers = build(AtomicCheckpointer, tmp_path, seed=1)
    with caplog.at_level(logging.WARNING, logger="speechbrain_xfer.checkpoints"):
        assert resumed.recover_if_possible().path == older.path
    assert torch.equal(resumed_layers["first"].weight, saved)
    assert f"Cannot load the checkpoint {newest.path}" in caplog.text


def test_no_loadable_checkpoint_is_an_error_that_names_the_folder(tmp_path):
    checkpointer, _ = build(AtomicCheckpointer, tmp_path, seed=0)
    checkpointer.save_checkpoint()
    changed = AtomicCheckpointer(tmp_path, {"first": torch.nn.Linear(3, 3), "second": torch.nn.Linear(2, 2)})
    with pytest.raises(RuntimeError, match=f"None of the 1 checkpoints in {tmp_path} loads"):
        changed.recover_if_possible()


def test_keep_only_the_best_and_the_latest_as_speechbrain_does(tmp_path):
    checkpointer, _ = build(AtomicCheckpointer, tmp_path, seed=0)
    for epoch, accuracy in enumerate([0.5, 0.9, 0.7, 0.6], start=1):
        checkpointer.save_and_keep_only(meta={"epoch": epoch, "accuracy": accuracy}, max_keys=["accuracy"])
    kept = sorted(c.meta["epoch"] for c in checkpointer.list_checkpoints())
    assert kept == [2, 4]
    assert checkpointer.find_checkpoint(max_key="accuracy").meta["epoch"] == 2
    assert checkpointer.find_checkpoint().meta["epoch"] == 4
    assert sorted(p.name.split("+")[0] for p in tmp_path.iterdir()) == ["CKPT", "CKPT"]  # no hidden leftovers


def test_a_named_checkpoint_saved_again_replaces_the_old_one(tmp_path):
    checkpointer, layers = build(AtomicCheckpointer, tmp_path, seed=0)
    checkpointer.save_checkpoint(name="latest", meta={"epoch": 1})
    checkpointer.save_checkpoint(name="latest", meta={"epoch": 2})
    (only,) = checkpointer.list_checkpoints()
    assert only.path.name == "CKPT+latest" and only.meta["epoch"] == 2
    assert set(only.paramfiles) == {"first", "second"}
