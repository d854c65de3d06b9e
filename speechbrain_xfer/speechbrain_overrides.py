"""The private SpeechBrain methods this package overrides, all here, each for a reason SpeechBrain has no hook for.

A private method can change in any SpeechBrain release without notice, so
``tests/unit/test_speechbrain_overrides.py`` checks each one's signature and
the call that makes the override work, and fails naming the method when
SpeechBrain changes it:

- ``Brain._wrap_distributed`` (:class:`CPUDistributedWrapping`): SpeechBrain
  converts batch norm to ``SyncBatchNorm`` before wrapping modules in DDP,
  and ``SyncBatchNorm`` refuses CPU tensors, so multi-process training on
  CPUs (gloo) would fail at the first batch.
- ``Checkpointer._custom_checkpoint_dirpath`` and ``_new_checkpoint_dirpath``
  (:class:`StagedCheckpointDirs`): the atomic checkpointer lets SpeechBrain
  save into a hidden staging folder, then renames it into place.
"""

import torch
from torch.nn.parallel import DistributedDataParallel


class CPUDistributedWrapping:
    """A ``speechbrain.Brain`` mixin: DDP on CPUs without ``SyncBatchNorm``; GPUs as SpeechBrain does.

    On CPUs each rank keeps plain batch norm, and DDP broadcasts rank 0's
    statistics at every forward.
    """

    def _wrap_distributed(self):
        if not self.distributed_launch or torch.device(self.device).type != "cpu":
            return super()._wrap_distributed()
        for name, module in self.modules.items():
            if any(p.requires_grad for p in module.parameters()):
                self.modules[name] = DistributedDataParallel(module, find_unused_parameters=self.find_unused_parameters)


class StagedCheckpointDirs:
    """A ``speechbrain.utils.checkpoints.Checkpointer`` mixin: checkpoint folders under a staging name.

    ``save_checkpoint(name=...)`` puts a checkpoint in ``_custom_checkpoint_dirpath(name)``; a name that starts
    with ``staging_prefix`` maps to a folder of that very name, where SpeechBrain then writes every file.
    """

    staging_prefix = ".staging+"

    def _custom_checkpoint_dirpath(self, name):
        if name.startswith(self.staging_prefix):
            return self.checkpoints_dir / name
        return super()._custom_checkpoint_dirpath(name)

    def checkpoint_dirpath(self, name=None):
        """The folder SpeechBrain gives a checkpoint saved under ``name``, or a new one saved without a name."""
        return self._new_checkpoint_dirpath() if name is None else self._custom_checkpoint_dirpath(name)
