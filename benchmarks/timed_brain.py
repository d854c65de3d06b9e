"""The Brain the benchmarks time: an UtteranceClassifierBrain that records its training epochs."""

import resource
import time

import speechbrain as sb

from speechbrain_xfer.brains import UtteranceClassifierBrain


class TimedBrain(UtteranceClassifierBrain):
    """Records the wall time of each training epoch, its batches and the peak RSS after it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.epoch_times = []

    def on_stage_start(self, stage, epoch=None):
        super().on_stage_start(stage, epoch)
        if stage == sb.Stage.TRAIN:
            self._epoch_start = time.perf_counter()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.epoch_times.append(time.perf_counter() - self._epoch_start)
            self.epoch_steps = self.step
            self.train_max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        super().on_stage_end(stage, stage_loss, epoch)
