"""The end of a validation or test stage of a transfer run: the history, early stopping, learning-rate
annealing, the log and the checkpoint kept."""

import speechbrain as sb


def end_evaluation(brain, stage, epoch, stats, checkpoint_meta, annealing_metric):
    """The end of a validation or test stage of ``brain``, a :class:`~speechbrain_xfer.brains.TransferBrain`.

    Validation: the history, early stopping (when the epoch counter is
    SpeechBrain's ``EpochCounterWithStopper``), learning-rate annealing on
    ``annealing_metric`` (lower is better), the log, and a checkpoint
    keeping the best ``summary_metric``. Test: the log.
    """
    log = getattr(brain.hparams, "train_logger", None)
    if stage == sb.Stage.VALID:
        brain.record.add(brain.optimizer_step, stats[brain.summary_metric])
        counter = getattr(brain.hparams, "epoch_counter", None)
        if hasattr(counter, "update_metric"):
            counter.update_metric(stats[brain.summary_metric])
        rates = brain.anneal_learning_rates(annealing_metric)
        if log is not None:
            log.log_stats({"epoch": epoch, **rates}, train_stats=brain.train_stats, valid_stats=stats)
        if brain.checkpointer is not None:
            keep = "max_keys" if brain.higher_is_better else "min_keys"
            brain.checkpointer.save_and_keep_only(meta=checkpoint_meta, **{keep: [brain.summary_metric]})
        brain.valid_stats = stats
    else:
        if log is not None:
            log.log_stats({"Epoch loaded": brain.hparams.epoch_counter.current}, test_stats=stats)
        brain.test_stats = stats
