"""Guards of the private SpeechBrain methods that speechbrain_xfer.speechbrain_overrides overrides or calls.

Each test fails with a message naming the SpeechBrain method when a SpeechBrain release changes the
method's signature or the call that makes the override take effect.
"""

import inspect

import speechbrain as sb
import torch
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_xfer.checkpoints import AtomicCheckpointer
from speechbrain_xfer.speechbrain_overrides import CPUDistributedWrapping, StagedCheckpointDirs


def _parameters(function):
    return list(inspect.signature(function).parameters)


def _guard(condition, method, what):
    assert condition, (
        f"SpeechBrain {sb.__version__} changed {method}, which speechbrain_xfer overrides or "
        f"calls (speechbrain_xfer/speechbrain_overrides.py): {what}"
    )


class _Brain(sb.Brain):
    def compute_forward(self, batch, stage):
        return self.modules.model(batch)

    def compute_objectives(self, predictions, batch, stage):
        return predictions.sum()


def test_brain_wrap_distributed_is_what_on_fit_start_calls():
    method = "speechbrain.Brain._wrap_distributed"
    _guard(hasattr(sb.Brain, "_wrap_distributed"), method, "it is gone")
    _guard(_parameters(sb.Brain._wrap_distributed) == ["self"], method, "its signature is no longer (self)")
    calls = []

    class Spy(CPUDistributedWrapping, _Brain):
        def _wrap_distributed(self):
            calls.append("wrap")
            return super()._wrap_distributed()

    brain = Spy(modules={"model": torch.nn.Linear(2, 1)}, opt_class=lambda p: torch.optim.SGD(p, lr=0.1))
    brain.on_fit_start()
    _guard(calls == ["wrap"], method, "Brain.on_fit_start no longer calls it, so modules are wrapped elsewhere")


def test_brain_wrap_distributed_still_converts_batch_norm_for_every_backend():
    # The reason for the override: SyncBatchNorm refuses CPU tensors. If SpeechBrain stops converting on CPUs,
    # the override can go.
    source = inspect.getsource(sb.Brain._wrap_distributed)
    _guard(
        "convert_sync_batchnorm" in source,
        "speechbrain.Brain._wrap_distributed",
        "it no longer converts batch norm to SyncBatchNorm: the CPU override may be unnecessary now",
    )


def test_checkpointer_dirpath_methods_keep_their_signatures_and_roles(tmp_path):
    custom, new = "Checkpointer._custom_checkpoint_dirpath", "Checkpointer._new_checkpoint_dirpath"
    _guard(_parameters(Checkpointer._custom_checkpoint_dirpath) == ["self", "name"], custom, "signature changed")
    _guard(_parameters(Checkpointer._new_checkpoint_dirpath) == ["self"], new, "signature changed")
    plain = Checkpointer(tmp_path / "plain", {"model": torch.nn.Linear(2, 1)})
    _guard(plain._new_checkpoint_dirpath().name.startswith("CKPT+"), new, "new folders are no longer CKPT+...")
    saved = plain.save_checkpoint(name="given")
    _guard(
        saved.path == plain._custom_checkpoint_dirpath("given"),
        custom,
        "save_checkpoint(name=...) no longer saves into the folder it returns",
    )


def test_the_staging_name_maps_to_a_folder_of_that_name(tmp_path):
    checkpointer = AtomicCheckpointer(tmp_path, {"model": torch.nn.Linear(2, 1)})
    assert isinstance(checkpointer, StagedCheckpointDirs)
    name = f"{StagedCheckpointDirs.staging_prefix}CKPT+x"
    assert checkpointer.checkpoint_dirpath(name) == tmp_path / name
    assert checkpointer.checkpoint_dirpath("best").name == "CKPT+best"
    final = checkpointer.save_checkpoint(name="best")
    assert final.path == tmp_path / "CKPT+best" and (final.path / "model.ckpt").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["CKPT+best"]  # nothing left under the staging name


def test_make_dataloader_still_hands_a_given_sampler_to_the_loader():
    # TransferBrain.make_dataloader passes its sampler to SpeechBrain's, which must use it (and, under DDP,
    # wrap it) rather than replace it.
    brain = _Brain(modules={"model": torch.nn.Linear(2, 1)})
    sampler = torch.utils.data.SequentialSampler(range(4))
    loader = brain.make_dataloader(list(range(4)), sb.Stage.TRAIN, ckpt_prefix=None, sampler=sampler, batch_size=2)
    _guard(
        loader.sampler is sampler,
        "speechbrain.Brain._train_loader_specifics (through make_dataloader)",
        "a sampler given to make_dataloader is not used",
    )
