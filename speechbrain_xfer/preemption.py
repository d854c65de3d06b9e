"""A run told to stop by a signal saves a checkpoint and exits, so that a scheduler can requeue it.

SLURM warns a job before it preempts it or stops it at its time limit (``sbatch --signal``); the SLURM
launcher of ``sbx curve`` (:mod:`speechbrain_xfer.curves.slurm`) passes that warning on to the recipe run
it started, with :data:`SIGNAL_ENV` naming the signal. The run's Brain
(:class:`~speechbrain_xfer.brains.transfer.TransferBrain`) then finishes its current batch, saves a
checkpoint (SpeechBrain's intra-epoch one: the data loader's position, the optimizers, the random states)
and exits with :data:`CHECKPOINTED_EXIT`. The same command run again resumes from it and ends with the
weights an uninterrupted run ends with.

Plain Python, no torch: the launcher imports it in every job.
"""

import os
import signal

#: The environment variable that names the signal (``USR2``) on which a run saves a checkpoint and exits.
SIGNAL_ENV = "SBX_CHECKPOINT_SIGNAL"
#: The exit code of a run that stopped on that signal with its checkpoint saved (``EX_TEMPFAIL``: run it again).
CHECKPOINTED_EXIT = 75


class StopSignal:
    """Whether the signal named by :data:`SIGNAL_ENV` has arrived; does nothing where the variable is unset.

    Example
    -------
    >>> os.environ[SIGNAL_ENV] = "USR2"
    >>> stop = StopSignal()
    >>> stop.install()
    >>> stop.received
    False
    >>> os.kill(os.getpid(), signal.SIGUSR2)
    >>> stop.received
    True
    >>> stop.uninstall(); del os.environ[SIGNAL_ENV]
    """

    def __init__(self):
        self.received = False
        self._previous = None
        name = os.environ.get(SIGNAL_ENV)
        self.signum = None if not name else getattr(signal, f"SIG{name.upper().removeprefix('SIG')}")

    def install(self):
        """Starts listening (in the main thread only, as Python's signal handlers must be set there)."""
        if self.signum is not None and self._previous is None:
            self._previous = signal.signal(self.signum, self._handle)

    def uninstall(self):
        """Gives the signal back its previous handler."""
        if self._previous is not None:
            signal.signal(self.signum, self._previous)
            self._previous = None

    def _handle(self, signum, frame):
        self.received = True
