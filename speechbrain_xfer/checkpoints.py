"""Checkpoints that a killed process never leaves half written, and the RNG states a resumed run needs.

SpeechBrain's ``Checkpointer.save_checkpoint`` creates the ``CKPT+<time>``
folder, writes its ``CKPT.yaml`` first and then one file per recoverable: a
process killed in between leaves a folder that lists as a checkpoint and
fails, or half loads, on resume. :class:`AtomicCheckpointer` writes the whole
checkpoint into a hidden staging folder next to the others and renames it into
place once every file is on disk; a deleted checkpoint leaves the listing by a
rename too, before its files go. A rename within one folder is atomic on POSIX
file systems, so the listing only ever holds complete checkpoints.

A recipe uses it in place of SpeechBrain's class::

    checkpointer: !new:speechbrain_xfer.checkpoints.AtomicCheckpointer
        checkpoints_dir: !ref <save_folder>
        recoverables: ...
"""

import logging
import os
import pickle
import random
import shutil

import numpy as np
import torch
import yaml
from speechbrain.utils.checkpoints import Checkpoint, Checkpointer, ckpt_recency
from speechbrain.utils.distributed import ddp_barrier, if_main_process

from speechbrain_xfer.speechbrain_overrides import StagedCheckpointDirs

logger = logging.getLogger(__name__)

STAGING_PREFIX = StagedCheckpointDirs.staging_prefix
TRASH_PREFIX = ".trash+"
#: What a truncated or otherwise damaged checkpoint file raises when loaded.
LOAD_ERRORS = (RuntimeError, EOFError, OSError, pickle.UnpicklingError, yaml.YAMLError, KeyError, ValueError)


class AtomicCheckpointer(StagedCheckpointDirs, Checkpointer):
    """A SpeechBrain ``Checkpointer`` whose checkpoints appear whole or not at all.

    Saving writes into ``<checkpoints_dir>/.staging+CKPT+...``, flushes it to
    disk and renames it to ``CKPT+...``; deleting renames to ``.trash+...``
    first. Leftovers of a killed process (hidden folders) are removed when the
    next run builds its checkpointer. ``recover_if_possible`` falls back to the
    next checkpoint when one cannot be loaded (e.g. one written by a plain
    ``Checkpointer`` that was killed mid-save). The arguments are
    ``Checkpointer``'s.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> layer = torch.nn.Linear(2, 2)
    >>> checkpointer = AtomicCheckpointer(tmp, {"layer": layer})
    >>> saved = checkpointer.save_checkpoint()
    >>> saved.path.name.startswith("CKPT+"), sorted(p.name for p in saved.path.iterdir())
    (True, ['CKPT.yaml', 'layer.ckpt'])
    >>> [p.name for p in tmp.iterdir() if p.name.startswith(".")]
    []
    >>> checkpointer.recover_if_possible().path == saved.path
    True
    """

    def __init__(
        self,
        checkpoints_dir,
        recoverables=None,
        custom_load_hooks=None,
        custom_save_hooks=None,
        allow_partial_load=False,
    ):
        super().__init__(checkpoints_dir, recoverables, custom_load_hooks, custom_save_hooks, allow_partial_load)
        # Only at start-up: later, a hidden folder may be a save in progress.
        if if_main_process():
            self._remove_leftovers()

    def save_checkpoint(self, meta={}, end_of_epoch=True, name=None, verbosity=logging.INFO):  # noqa: B006 (SB's)
        """Saves a checkpoint as ``Checkpointer.save_checkpoint`` does, then renames it into place.

        Returns the ``Checkpoint`` on the main process, ``None`` on the others.
        """
        final = None
        if if_main_process():
            final = self.checkpoint_dirpath(name)
            shutil.rmtree(self.checkpoints_dir / f"{STAGING_PREFIX}{final.name}", ignore_errors=True)
        # SpeechBrain's own saving (hooks, meta file, DDP broadcast of the folder) into the staging folder:
        # a staging name maps to a folder of that name (StagedCheckpointDirs).
        staged = super().save_checkpoint(
            meta, end_of_epoch, f"{STAGING_PREFIX}{final.name}" if final else None, verbosity=logging.DEBUG
        )
        ddp_barrier()  # every process has written its files before the folder moves
        if staged is None:
            return None
        _flush_folder(staged.path)
        self._move_into_place(staged.path, final)
        kind = "end-of-epoch" if end_of_epoch else "intra-epoch"
        logger.log(verbosity, f"Saved an {kind} checkpoint in {final}")
        return Checkpoint(final, staged.meta, {key: final / path.name for key, path in staged.paramfiles.items()})

    def delete_checkpoints(
        self,
        *,
        num_to_keep=1,
        min_keys=None,
        max_keys=None,
        importance_keys=[ckpt_recency],  # noqa: B006
        ckpt_predicate=None,
        verbosity=logging.INFO,
    ):
        """Deletes the least important checkpoints; the same choice as ``Checkpointer.delete_checkpoints``.

        SpeechBrain removes a checkpoint's files in place, so a kill can leave
        a listed checkpoint with some files gone; here it leaves the listing
        (one rename) before its files are removed.
        """
        if num_to_keep < 0:
            raise ValueError(f"num_to_keep must be 0 or more, got {num_to_keep}")
        keys = [{"min_key": key} for key in min_keys or []] + [{"max_key": key} for key in max_keys or []]
        keys += [{"importance_key": key} for key in importance_keys]
        candidates, kept = set(), set()
        for key in keys:
            candidates.update(self.find_checkpoints(ckpt_predicate=ckpt_predicate, **key))
            kept.update(self.find_checkpoints(ckpt_predicate=ckpt_predicate, max_num_checkpoints=num_to_keep, **key))
        ddp_barrier()  # no process may still be listing (or saving) while the main one deletes
        if if_main_process():
            for checkpoint in candidates - kept:
                self._remove(checkpoint.path)
                logger.log(verbosity, f"Deleted checkpoint in {checkpoint.path}")
        ddp_barrier()

    def recover_if_possible(self, importance_key=None, max_key=None, min_key=None, ckpt_predicate=None):
        """Loads the checkpoint ``Checkpointer.recover_if_possible`` would, or the next one that loads.

        Raises a ``RuntimeError`` when checkpoints exist but none loads: a
        changed model, not damage, is the likely cause then.
        """
        candidates = self.find_checkpoints(importance_key, max_key, min_key, ckpt_predicate)
        if not candidates:
            logger.info("Would load a checkpoint here, but none found yet.")
            return None
        first_error = None
        for checkpoint in candidates:
            try:
                self.load_checkpoint(checkpoint)
                return checkpoint
            except LOAD_ERRORS as err:
                logger.warning(
                    f"Cannot load the checkpoint {checkpoint.path} ({type(err).__name__}: {err}); "
                    f"trying the one before it"
                )
                first_error = first_error or err
        raise RuntimeError(
            f"None of the {len(candidates)} checkpoints in {self.checkpoints_dir} loads; the newest "
            f"failed with: {first_error}. If the model or its YAML changed since they were saved, "
            f"use a new output folder (or delete this one to start over)."
        ) from first_error

    def _move_into_place(self, staging, final):
        if final.exists():  # a custom name saved again: the old one goes, then the new one comes
            self._remove(final)
        os.rename(staging, final)
        _flush_folder_entry(self.checkpoints_dir)

    def _remove(self, path):
        trash = self.checkpoints_dir / f"{TRASH_PREFIX}{path.name}"
        shutil.rmtree(trash, ignore_errors=True)
        os.rename(path, trash)
        shutil.rmtree(trash)

    def _remove_leftovers(self):
        for path in self.checkpoints_dir.iterdir():
            if path.is_dir() and path.name.startswith((STAGING_PREFIX, TRASH_PREFIX)):
                logger.info(f"Removing {path}, left by a process stopped while saving or deleting a checkpoint")
                shutil.rmtree(path)


def _flush_folder(folder):
    """Puts the folder's files on disk, so that a crash of the machine (not only of the process) keeps them."""
    for path in folder.iterdir():
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    _flush_folder_entry(folder)


def _flush_folder_entry(folder):
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def is_plain_checkpointer(checkpointer):
    """Whether ``checkpointer`` is SpeechBrain's non-atomic ``Checkpointer`` itself.

    Example
    -------
    >>> is_plain_checkpointer(Checkpointer(getfixture("tmp_path")))
    True
    >>> is_plain_checkpointer(AtomicCheckpointer(getfixture("tmp_path")))
    False
    """
    return type(checkpointer) is Checkpointer


_warned_plain = False


def warn_if_plain_checkpointer(checkpointer):
    """Warns once per process when a run saves with SpeechBrain's non-atomic ``Checkpointer``."""
    global _warned_plain
    if is_plain_checkpointer(checkpointer) and not _warned_plain:
        _warned_plain = True
        logger.warning(
            "The checkpointer is SpeechBrain's Checkpointer, which a kill during a save leaves with a "
            "half-written checkpoint that fails on resume; use "
            "speechbrain_xfer.checkpoints.AtomicCheckpointer in the YAML instead"
        )


def save_rng_states(path):
    """Saves the states of torch's (CPU and initialized CUDA), numpy's and Python's random generators.

    A run resumed from a checkpoint then draws the same dropout masks and
    augmentations as the run that was not interrupted.

    Example
    -------
    >>> path = getfixture("tmp_path") / "rng.pt"
    >>> save_rng_states(path)
    >>> drawn = torch.rand(1), np.random.rand(), random.random()
    >>> load_rng_states(path)
    >>> (torch.rand(1), np.random.rand(), random.random()) == drawn
    True
    """
    name, keys, position, has_gauss, gauss = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(states, path)


def load_rng_states(path):
    """Restores the random generators' states saved by :func:`save_rng_states`."""
    restore_rng_states(read_rng_states(path))


def read_rng_states(path):
    """The states :func:`save_rng_states` saved, to restore later with :func:`restore_rng_states`."""
    return torch.load(path, weights_only=True)


def restore_rng_states(states):
    """Sets the random generators to ``states`` (:func:`read_rng_states`)."""
    torch.set_rng_state(states["torch"])
    name, keys, position, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    cuda = states.get("cuda")
    if cuda is not None and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all(cuda)


__all__ = [
    "AtomicCheckpointer",
    "is_plain_checkpointer",
    "load_rng_states",
    "read_rng_states",
    "restore_rng_states",
    "save_rng_states",
    "warn_if_plain_checkpointer",
]
