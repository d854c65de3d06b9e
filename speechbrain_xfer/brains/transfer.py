"""TransferBrain: fine-tuning with a regularized objective and layer schedules.

The training loss is

    loss = task_loss + sum_k weight_k * R_k(w)

with the regularizers ``R_k`` and their weights set in the recipe's YAML::

    regularizers:
        l2sp: !new:speechbrain_xfer.regularization.L2SP
            source: !ref <encoder>
            head: !ref <heads>
            alpha: 0.01
    regularizer_weights:
        l2sp: 1.0

Optional hparams read here (all others belong to the task Brain): ``encoder``
(the pretrained module, also in ``modules``), ``encoder_opt_class`` and
``encoder_lr`` (a separate encoder optimizer), ``layer_decay`` (layer-wise lr
decay), ``freeze_encoder_steps``, ``unfreeze_every`` (gradual unfreezing),
``freeze_encoder`` (linear probing), ``lr_annealing`` and
``lr_annealing_encoder`` (SpeechBrain schedulers stepped on the validation
metric), ``steps_per_epoch`` and ``length_grouping`` (the training batches:
:func:`~speechbrain_xfer.data.sampling.training_sampler`).
"""

import logging

import speechbrain as sb
import torch
from speechbrain.dataio.dataset import DynamicItemDataset

from speechbrain_xfer.brains.nonfinite import count_nonfinite_batch, drop_nonfinite_step
from speechbrain_xfer.brains.objective import RegularizedObjective
from speechbrain_xfer.brains.optimizers import anneal_learning_rates, clip_every_group, encoder_and_head_optimizers
from speechbrain_xfer.brains.progress import describe_bars
from speechbrain_xfer.brains.run_record import RunRecord
from speechbrain_xfer.brains.schedules import LayerSchedule, encoder_layers
from speechbrain_xfer.brains.stage_end import end_evaluation
from speechbrain_xfer.checkpoints import warn_if_plain_checkpointer
from speechbrain_xfer.data.padding import padded_batch
from speechbrain_xfer.data.sampling import training_sampler
from speechbrain_xfer.lobes.inference import encode_waveforms
from speechbrain_xfer.preemption import CHECKPOINTED_EXIT, StopSignal
from speechbrain_xfer.speechbrain_overrides import CPUDistributedWrapping

logger = logging.getLogger(__name__)


class TransferBrain(CPUDistributedWrapping, sb.Brain):
    """A Brain that adds weighted regularizers to the task loss of a subclass.

    Subclasses implement ``compute_forward`` (returning a dict with at least
    ``features``, ``lens`` and ``encoder_input``; ``pooled`` for batch-spectral
    terms) and ``compute_task_loss``.
    """

    def __init__(self, modules=None, opt_class=None, hparams=None, run_opts=None, checkpointer=None):
        hparams = hparams or {}
        self.schedule = LayerSchedule(
            freeze_steps=hparams.get("freeze_encoder_steps", 0),
            unfreeze_every=hparams.get("unfreeze_every", 0),
            frozen=hparams.get("freeze_encoder", False),
        )
        # Only the options given explicitly (command line or dict) override
        # the YAML's; a RunOptions object holds every option, so keep those only.
        if run_opts is not None and not isinstance(run_opts, dict):
            run_opts = {key: run_opts[key] for key in run_opts.overridden_args}
        run_opts = dict(run_opts or {})
        # A non-finite gradient must never reach the weights.
        if "skip_nonfinite_grads" not in hparams:
            run_opts.setdefault("skip_nonfinite_grads", True)
        # DDP errors on parameters that get no gradient, as frozen layers do.
        if self.schedule.ever_freezes and "find_unused_parameters" not in hparams:
            run_opts.setdefault("find_unused_parameters", True)
        super().__init__(modules, opt_class, hparams, run_opts, checkpointer)
        self.objective = RegularizedObjective(hparams.get("regularizers"), hparams.get("regularizer_weights"))
        # The run's validation history, training time and random states survive a kill with the checkpoints
        # (optional: checkpoints saved without them still load).
        self.record = RunRecord()
        recoverables = {f"regularizer_{name}": reg.to(self.device) for name, reg in self.regularizers.items()}
        if self.checkpointer is not None:
            for name, recoverable in recoverables.items():
                if name not in self.checkpointer.recoverables:
                    self.checkpointer.add_recoverable(name, recoverable)
            self.checkpointer.add_recoverable("run_record", self.record, optional_load=True)
            warn_if_plain_checkpointer(self.checkpointer)
        self._anchors_captured = False
        self._nonfinite_loss = False
        self._stop = StopSignal()
        self._applied_schedule = None  # (the encoder's layers, the trainable count last applied)

    @property
    def regularizers(self):
        """The ``R_k`` by name (:class:`~speechbrain_xfer.brains.objective.RegularizedObjective`)."""
        return self.objective.regularizers

    @property
    def valid_history(self):
        """``[(optimizer step, validation score), ...]`` of the whole run, resumed parts included."""
        return self.record.valid_history

    # -- the regularized objective (speechbrain_xfer.brains.objective) -------
    def encode(self, batch, stage):
        """Waveforms to encoder outputs: augmentation (training only), then :func:`encode_waveforms`.

        Returns the outputs, the encoder's input, the input's relative lengths
        and the outputs' ones, exact to the frame.
        """
        wavs, lens = batch.sig
        augment = getattr(self.hparams, "wav_augment", None)
        if stage == sb.Stage.TRAIN and augment is not None:
            wavs, lens = augment(wavs, lens)
        return encode_waveforms(
            self.modules.encoder,
            wavs,
            lens,
            getattr(self.hparams, "compute_features", None),
            getattr(self.hparams, "mean_var_norm", None),
        )

    def compute_task_loss(self, outputs, batch, stage):
        """The task's own loss L(y, f_w(x)); implemented by task Brains."""
        raise NotImplementedError

    def compute_objectives(self, outputs, batch, stage):
        task_loss = self.compute_task_loss(outputs, batch, stage)
        if stage != sb.Stage.TRAIN or not self.regularizers:
            return task_loss
        return self.objective(task_loss, outputs, caller=f"{type(self).__name__}.compute_forward")

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        if self.objective.count:
            text = " ".join(f"{key}={value:.3g}" for key, value in self.objective.averages().items())
            describe_bars(text, self.tqdm_barcolor["train"])

    def term_averages(self):
        """Average of the task loss and of each R_k over the current epoch; a decoupled term's value now."""
        return {**self.objective.averages(), **self.objective.decoupled_values()}

    # -- validation, early stopping and the run summary ------------------
    #: The test metric of ``summary.json``, whether higher is better, and the
    #: ``evaluate`` argument that picks the best validation checkpoint.
    summary_metric, higher_is_better = "accuracy", True
    best_checkpoint_key = {"max_key": "accuracy"}

    def end_evaluation(self, stage, epoch, stats, checkpoint_meta, annealing_metric):
        """The end of a validation or test stage, shared by the task Brains (:func:`stage_end.end_evaluation`)."""
        end_evaluation(self, stage, epoch, stats, checkpoint_meta, annealing_metric)

    def write_summary(self, path, train_time, steps, recipe_file=None):
        """Writes ``summary.json`` (:meth:`RunRecord.write_summary`) for ``sbx curve`` and ``sbx export``."""
        metric = self.summary_metric, self.higher_is_better
        self.record.write_summary(path, *metric, self.test_stats, train_time, steps, recipe_file=recipe_file)

    # -- non-finite losses and gradients (speechbrain_xfer.brains.nonfinite) --
    def check_loss_isfinite(self, loss):
        """Counts a batch whose loss is NaN or inf; ``check_gradients`` then skips its step."""
        if not torch.isfinite(loss):
            self._nonfinite_loss = True
            count_nonfinite_batch(self, "loss")

    def check_gradients(self, grad_norms=None):
        """Drops every gradient when the step's loss or any gradient is not finite (after clipping, with the
        norms clipping computed, while ``skip_nonfinite_grads`` is on: the default here)."""
        drop_nonfinite_step(self, self._nonfinite_loss, grad_norms)
        self._nonfinite_loss = False

    # -- batches, stages and schedules ------------------------------------
    def make_dataloader(self, dataset, stage, ckpt_prefix="dataloader-", **loader_kwargs):
        """SpeechBrain's loaders, their batches padded by :func:`~speechbrain_xfer.data.padding.pad_right`; the
        training sampler is :func:`~speechbrain_xfer.data.sampling.training_sampler`'s (``steps_per_epoch``,
        ``length_grouping``), which SpeechBrain wraps for DDP as it wraps its own."""
        if isinstance(dataset, DynamicItemDataset):  # where SpeechBrain would collate with PaddedBatch
            loader_kwargs.setdefault("collate_fn", padded_batch)
        sampler = None
        if stage == sb.Stage.TRAIN:
            steps, grouping = (
                getattr(self.hparams, "steps_per_epoch", None),
                getattr(self.hparams, "length_grouping", 8),
            )
            seed = getattr(self.hparams, "seed", 563375142)
            sampler = training_sampler(dataset, loader_kwargs, steps, grouping, seed)
        if sampler is None:
            return super().make_dataloader(dataset, stage, ckpt_prefix, **loader_kwargs)
        loader_kwargs = {key: value for key, value in loader_kwargs.items() if key != "shuffle"}
        loader = super().make_dataloader(dataset, stage, ckpt_prefix, sampler=sampler, **loader_kwargs)
        if self.train_sampler is None:
            self.train_sampler = sampler  # so that SpeechBrain calls set_epoch: a new draw each epoch
        return loader

    def on_fit_start(self):
        # The anchors are the weights at the start of fine-tuning (the
        # pretrained ones); a checkpoint recovered below then restores the
        # anchors it saved, never the weights being resumed.
        if not self._anchors_captured:
            self.objective.capture_anchors()
            self._anchors_captured = True
        super().on_fit_start()
        self.record.start()
        self._stop.install()
        # Imported here: the encoders package loads transformers, which a Brain without a hub encoder never needs.
        from speechbrain_xfer.encoders.adapters import parameter_summary

        # Logged after init_optimizers, which freezes the encoder for linear probing.
        logger.info(parameter_summary(self.modules))

    def on_stage_start(self, stage, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.objective.reset()
            self._applied_schedule = None  # SpeechBrain has just put every module back in training mode
            self.record.train_stage_started()
        else:
            self.record.restore_pending_rng()

    # -- a scheduler's warning signal (speechbrain_xfer.preemption) --------
    def _should_save_intra_epoch_ckpt(self, last_ckpt_time, steps_since_ckpt):
        return self._stop_requested() or super()._should_save_intra_epoch_ckpt(last_ckpt_time, steps_since_ckpt)

    def _save_intra_epoch_ckpt(self):
        super()._save_intra_epoch_ckpt()
        if self._stop.received:
            logger.warning("stopped by a signal after step %d, checkpoint saved: the same command resumes", self.step)
            raise SystemExit(CHECKPOINTED_EXIT)

    def _stop_requested(self):
        """Whether the stop signal arrived (rank 0's word under DDP, so that every process saves and exits)."""
        if self._stop.signum is None or self.checkpointer is None:
            return False
        decision = [self._stop.received]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.broadcast_object_list(decision, src=0)
            self._stop.received = decision[0]
        return decision[0]

    def on_fit_batch_start(self, batch, should_step):
        self.record.restore_pending_rng()
        # A schedule that never freezes changes nothing; one that does is applied when the number of trainable
        # layers changes, and at the start of each epoch (SpeechBrain's train() undoes the frozen layers' eval
        # mode): not at every batch, whose walk over the layers was 5 % of a cached linear-probing epoch.
        if "encoder" in self.modules and self.schedule.ever_freezes:
            if self._applied_schedule is None:
                self._applied_schedule = (encoder_layers(self.modules.encoder), None)
            layers, applied = self._applied_schedule
            if self.schedule.trainable_count(self.optimizer_step, len(layers)) != applied:
                self._applied_schedule = (layers, self.schedule.apply(layers, self.optimizer_step))

    def encoder_trainable(self):
        """Whether any encoder layer trains at the current step."""
        layers = encoder_layers(self.modules.encoder)
        return self.schedule.trainable_count(self.optimizer_step, len(layers)) > 0

    # -- optimizers (speechbrain_xfer.brains.optimizers) -------------------
    def init_optimizers(self):
        encoder_opt_class = getattr(self.hparams, "encoder_opt_class", None)
        if encoder_opt_class is None or "encoder" not in self.modules or self.schedule.frozen:
            if self.schedule.frozen and "encoder" in self.modules:
                # The encoder's own layers; what it adds outside them (an HFEncoder's layer-sum weights) trains.
                for layer in encoder_layers(self.modules.encoder):
                    layer.requires_grad_(False)
            return super().init_optimizers()
        self.encoder_optimizer, self.optimizer = encoder_and_head_optimizers(
            self.modules,
            self.modules.encoder,
            encoder_opt_class,
            self.opt_class,
            self.hparams.encoder_lr,
            getattr(self.hparams, "layer_decay", 1.0),
        )
        self.optimizers_dict = {"encoder": self.encoder_optimizer, "head": self.optimizer}
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("encoder_optimizer", self.encoder_optimizer)
            self.checkpointer.add_recoverable("optimizer", self.optimizer)

    def freeze_optimizers(self, optimizers):
        if "encoder" in optimizers and not self.encoder_trainable():
            return {name: opt for name, opt in optimizers.items() if name != "encoder"}
        return optimizers

    def optimizers_step(self):
        """Like ``sb.Brain.optimizers_step``, but clips every parameter group (:func:`clip_every_group`), and
        adds the closed-form gradients (:meth:`RegularizedObjective.add_closed_form_gradients`) before clipping,
        and the decoupled terms' pull (:meth:`RegularizedObjective.pull_decoupled`) just before the update."""
        optimizers = self.freeze_optimizers(self.optimizers_dict or {"optimizer": self.optimizer})
        for opt in optimizers.values():
            self.scaler.unscale_(opt)
        self.objective.add_closed_form_gradients()
        norms = clip_every_group(optimizers.values(), self.max_grad_norm)
        if not self.scaler.is_enabled() and self.skip_nonfinite_grads:
            self.check_gradients(norms)
        self.objective.pull_decoupled(optimizers.values())
        for opt in optimizers.values():
            self.scaler.step(opt)
        self.scaler.update()
        for opt in optimizers.values():
            opt.zero_grad(set_to_none=True)
        self.optimizer_step += 1

    def anneal_learning_rates(self, metric):
        """Steps ``lr_annealing`` (head) and ``lr_annealing_encoder`` on ``metric``; returns the rates."""
        head = getattr(self.hparams, "lr_annealing", None), self.optimizer
        encoder = getattr(self.hparams, "lr_annealing_encoder", None), getattr(self, "encoder_optimizer", None)
        return anneal_learning_rates({"head": head, "encoder": encoder}, metric)
