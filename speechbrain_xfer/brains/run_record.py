"""What a run keeps across interruptions: its validation history, its training time and its random states.

:class:`RunRecord` is a checkpoint recoverable: a run resumed after a kill
reports the history and training time of the whole run in ``summary.json``
(:meth:`RunRecord.write_summary`, which ``sbx curve`` reads), and draws the
same dropout masks and augmentations as a run that was never interrupted.
"""

import json
import os
import time

import speechbrain as sb

from speechbrain_xfer.checkpoints import read_rng_states, restore_rng_states, save_rng_states


@sb.utils.checkpoints.register_checkpoint_hooks
class RunRecord:
    """The validation history ``[(optimizer step, score), ...]`` and the training time of a run.

    Saved with each checkpoint (the random generators' states beside it).
    Only the first recovery is read, the resume: once :meth:`start` has been
    called the record is this run's, and ``evaluate``'s reload of the best
    checkpoint must not cut the history back to that checkpoint's epoch.

    Example
    -------
    >>> record = RunRecord()
    >>> record.start()
    >>> record.add(40, 0.5)
    >>> path = getfixture("tmp_path") / "run_record.ckpt"
    >>> record.save(path)
    >>> resumed = RunRecord()
    >>> resumed.load(path, end_of_epoch=True)
    >>> resumed.valid_history
    [(40, 0.5)]
    """

    def __init__(self):
        self.valid_history = []
        self.previous_train_time = 0.0
        self._started = None
        self._recovered = False
        self._pending_rng = None  # the random states of an intra-epoch checkpoint, until their moment comes
        self._resumed_epoch_started = False

    def start(self):
        """Marks the start of training in this process: no later recovery changes the record."""
        self._recovered = True
        self._started = time.perf_counter()

    def add(self, step, score):
        """Appends a validation score reached after ``step`` optimizer steps."""
        self.valid_history.append((step, float(score)))

    def train_time(self):
        """Seconds of training of the whole run: earlier processes' and this one's."""
        return self.previous_train_time + (time.perf_counter() - self._started if self._started else 0.0)

    @sb.utils.checkpoints.mark_as_saver
    def save(self, path):
        with open(path, "w") as f:
            json.dump({"valid_history": self.valid_history, "train_time_s": self.train_time()}, f)
        save_rng_states(f"{path}.rng.pt")

    @sb.utils.checkpoints.mark_as_loader
    def load(self, path, end_of_epoch):
        if self._recovered:
            return
        with open(path) as f:
            saved = json.load(f)
        self.valid_history = [tuple(item) for item in saved["valid_history"]]
        self.previous_train_time = saved["train_time_s"]
        if os.path.isfile(f"{path}.rng.pt"):
            states = read_rng_states(f"{path}.rng.pt")
            if end_of_epoch:
                restore_rng_states(states)
            else:
                # Saved in the middle of an epoch, after the epoch's data loader drew its seed from the generator:
                # the resumed epoch draws it again, so the states are restored after that (kept in memory: the
                # checkpoint may be gone by then).
                self._pending_rng = states
        self._recovered = True

    def restore_pending_rng(self):
        """Restores the random states of an intra-epoch checkpoint, once: called at the first training batch after
        it, and at the start of any other stage (the resumed epoch may have had no batch left)."""
        if self._pending_rng is not None:
            restore_rng_states(self._pending_rng)
            self._pending_rng = None

    def train_stage_started(self):
        """Called at the start of each training stage: the first after an intra-epoch resume is the resumed
        epoch's, whose data loader draws first (the states wait for its first batch); a later one means that
        epoch had no batch left and no validation, so the states are restored now, before the next loader draws."""
        if self._pending_rng is not None and self._resumed_epoch_started:
            self.restore_pending_rng()
        self._resumed_epoch_started = self._pending_rng is not None

    def write_summary(self, path, metric, higher_is_better, test_stats, train_time, steps, recipe_file=None):
        """Writes ``summary.json``: the test metric, the validation history, the run's cost and its recipe.

        ``train_time`` covers this process only; the time of earlier,
        interrupted processes of the same run is added to it. ``recipe_file``
        is the YAML the run was started from (``sbx export`` names the recipe
        and the method after it).
        """
        summary = {
            "metric": metric,
            "higher_is_better": higher_is_better,
            "test": test_stats,
            "valid_history": self.valid_history,
            "train_time_s": self.previous_train_time + train_time,
            "steps": steps,
        }
        if recipe_file is not None:
            summary["recipe_file"] = str(recipe_file)
        with open(path, "w") as f:
            json.dump(summary, f, indent=1)
