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

Optional hparams read here (all others belong to the task Brain):
``encoder`` (the pretrained module, also in ``modules``),
``encoder_opt_class`` and ``encoder_lr`` (a separate encoder optimizer),
``layer_decay`` (layer-wise lr decay), ``freeze_encoder_steps``,
``unfreeze_every`` (gradual unfreezing), ``freeze_encoder`` (linear probing),
``lr_annealing`` and ``lr_annealing_encoder`` (SpeechBrain schedulers such
as NewBobScheduler, stepped on the validation metric), ``steps_per_epoch``
(batches drawn with replacement per epoch) and ``length_grouping`` (random
training batches, drawn or shuffled, of similar durations: sorted in pools
of that many batches, :class:`~speechbrain_xfer.data.sampling.LengthGroupedSampler`;
default 8, 0 for plain random batches).
"""

import json
import logging
import os
import time

import speechbrain as sb
import torch
from speechbrain.dataio.sampler import ReproducibleRandomSampler
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from speechbrain_xfer.brains.schedules import LayerSchedule, encoder_layers, layerwise_param_groups
from speechbrain_xfer.checkpoints import is_plain_checkpointer, load_rng_states, save_rng_states
from speechbrain_xfer.data.sampling import LengthGroupedSampler, item_durations
from speechbrain_xfer.lobes.inference import encode_waveforms

logger = logging.getLogger(__name__)


@sb.utils.checkpoints.register_checkpoint_hooks
class TransferBrain(sb.Brain):
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
        self.regularizers = dict(hparams.get("regularizers") or {})
        weights = dict(hparams.get("regularizer_weights") or {})
        unknown = set(weights) - set(self.regularizers)
        if unknown:
            raise ValueError(f"regularizer_weights names {sorted(unknown)}, which are not in regularizers "
                             f"({sorted(self.regularizers)})")  # fmt: skip
        self.regularizer_weights = {name: float(weights.get(name, 1.0)) for name in self.regularizers}
        for name, regularizer in self.regularizers.items():
            regularizer.to(self.device)
            if self.checkpointer is not None and f"regularizer_{name}" not in self.checkpointer.recoverables:
                self.checkpointer.add_recoverable(f"regularizer_{name}", regularizer)
        self._anchors_captured = False
        self._term_sums, self._term_count = {}, 0
        self.valid_history = []
        self._previous_train_time, self._history_recovered = 0.0, False

    # -- regularization -------------------------------------------------
    def regularization_terms(self, outputs):
        """Returns ``{name: R_k}`` for the configured regularizers.

        Each regularizer names the forward outputs it takes in its ``inputs``
        attribute (e.g. DELTA: features, encoder input, lengths); weight-space
        terms such as L2-SP take none.
        """
        terms = {}
        for name, regularizer in self.regularizers.items():
            if _has_closed_form_gradient(regularizer):
                # No graph: optimizers_step adds the gradient itself (see there).
                terms[name] = regularizer.penalty()
                continue
            needs = getattr(regularizer, "inputs", ())
            missing = [key for key in needs if outputs.get(key) is None]
            if missing:
                raise ValueError(f"regularizer {name!r} needs the outputs {missing}, which "
                                 f"{type(self).__name__}.compute_forward did not provide (a frozen-encoder "
                                 f"feature cache provides no encoder input)")  # fmt: skip
            terms[name] = regularizer(*(outputs[key] for key in needs))
        return terms

    def encode(self, batch, stage):
        """Waveforms to encoder outputs: augmentation (training only), then :func:`encode_waveforms`.

        Returns the outputs, the encoder's input, the input's relative lengths
        and the outputs' ones, exact to the frame.
        """
        wavs, lens = batch.sig
        augment = getattr(self.hparams, "wav_augment", None)
        if stage == sb.Stage.TRAIN and augment is not None:
            wavs, lens = augment(wavs, lens)
        return encode_waveforms(self.modules.encoder, wavs, lens, getattr(self.hparams, "compute_features", None),
                                getattr(self.hparams, "mean_var_norm", None))  # fmt: skip

    def compute_task_loss(self, outputs, batch, stage):
        """The task's own loss L(y, f_w(x)); implemented by task Brains."""
        raise NotImplementedError

    def compute_objectives(self, outputs, batch, stage):
        task_loss = self.compute_task_loss(outputs, batch, stage)
        if stage != sb.Stage.TRAIN or not self.regularizers:
            return task_loss
        terms = self.regularization_terms(outputs)
        loss = task_loss
        for name, value in terms.items():
            loss = loss + self.regularizer_weights[name] * value
        self._accumulate_terms(task_loss, terms)
        return loss

    def _accumulate_terms(self, task_loss, terms):
        values = {"task_loss": task_loss, **{f"R_{name}": value for name, value in terms.items()}}
        for key, value in values.items():
            # Summed on the device: reading a value here would make a GPU wait for the forward pass before
            # the backward pass is even queued (benchmarks/hf_step.py on a GPU showed it at small batches).
            value = value.detach().to(torch.float64)
            self._term_sums[key] = self._term_sums[key] + value if key in self._term_sums else value
        self._term_count += 1

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        self._show_terms()

    def _show_terms(self):
        """Shows the running average of each term on the training progress bar.

        SpeechBrain rewrites the bar's postfix with the total loss after every
        batch, so the terms go in its description.
        """
        colour = self.tqdm_barcolor["train"]
        bars = [bar for bar in list(tqdm._instances) if not bar.disable and getattr(bar, "colour", None) == colour]
        if not self._term_count or not bars:
            return
        text = " ".join(f"{key}={value:.3g}" for key, value in self.term_averages().items())
        for bar in bars:
            bar.set_description_str(text, refresh=False)

    def term_averages(self):
        """Average of the task loss and of each R_k over the current epoch."""
        return {key: float(total) / max(self._term_count, 1) for key, total in self._term_sums.items()}

    # -- validation history and run summary -----------------------------
    #: The test metric of ``summary.json``, whether higher is better, and the
    #: ``evaluate`` argument that picks the best validation checkpoint.
    summary_metric, higher_is_better = "accuracy", True
    best_checkpoint_key = {"max_key": "accuracy"}

    def end_evaluation(self, stage, epoch, stats, checkpoint_meta, annealing_metric):
        """The end of a validation or test stage, shared by the task Brains.

        Validation: the history and early stopping (:meth:`record_validation`),
        learning-rate annealing on ``annealing_metric`` (lower is better), the
        log, and a checkpoint keeping the best ``summary_metric``. Test: the log.
        """
        log = getattr(self.hparams, "train_logger", None)
        if stage == sb.Stage.VALID:
            self.record_validation(stats[self.summary_metric])
            rates = self.anneal_learning_rates(annealing_metric)
            if log is not None:
                log.log_stats({"epoch": epoch, **rates}, train_stats=self.train_stats, valid_stats=stats)
            if self.checkpointer is not None:
                keep = "max_keys" if self.higher_is_better else "min_keys"
                self.checkpointer.save_and_keep_only(meta=checkpoint_meta, **{keep: [self.summary_metric]})
            self.valid_stats = stats
        else:
            if log is not None:
                log.log_stats({"Epoch loaded": self.hparams.epoch_counter.current}, test_stats=stats)
            self.test_stats = stats

    def record_validation(self, score):
        """Appends ``(optimizer step, score)`` to the history and steps an early stopper.

        The epoch counter stops training early when it is SpeechBrain's
        ``EpochCounterWithStopper`` (patience on the validation score).
        """
        self.valid_history.append((self.optimizer_step, float(score)))
        counter = getattr(self.hparams, "epoch_counter", None)
        if hasattr(counter, "update_metric"):
            counter.update_metric(score)

    def write_summary(self, path, train_time, steps):
        """Writes the run's test metric, validation history and cost, for ``sbx curve``.

        ``train_time`` and ``steps`` cover this process only; with the time
        and steps of earlier, interrupted processes of the same run (kept in
        the checkpoints), the summary reports the whole run's cost.
        """
        summary = {
            "metric": self.summary_metric,
            "higher_is_better": self.higher_is_better,
            "test": self.test_stats,
            "valid_history": self.valid_history,
            "train_time_s": self._previous_train_time + train_time,
            "steps": steps,
        }
        with open(path, "w") as f:
            json.dump(summary, f, indent=1)

    @sb.utils.checkpoints.mark_as_saver
    def _save(self, path):
        super()._save(path)
        # A resumed run keeps the history (and time) of the epochs before the interruption.
        with open(f"{path}.history.json", "w") as f:
            json.dump({"valid_history": self.valid_history, "train_time_s": self._train_time()}, f)
        # ... and draws the same dropout masks and augmentations as a run that was never interrupted.
        save_rng_states(f"{path}.rng.pt")
        self._warn_if_plain_checkpointer()

    _warned_plain_checkpointer = False

    def _warn_if_plain_checkpointer(self):
        if is_plain_checkpointer(self.checkpointer) and not TransferBrain._warned_plain_checkpointer:
            TransferBrain._warned_plain_checkpointer = True
            logger.warning("The checkpointer is SpeechBrain's Checkpointer, which a kill during a save leaves with a "
                           "half-written checkpoint that fails on resume; use "
                           "speechbrain_xfer.checkpoints.AtomicCheckpointer in the YAML instead")  # fmt: skip

    @sb.utils.checkpoints.mark_as_loader
    def _recover(self, path, end_of_epoch):
        super()._recover(path, end_of_epoch)
        if os.path.isfile(f"{path}.history.json"):
            with open(f"{path}.history.json") as f:
                saved = json.load(f)
            if not self._history_recovered:
                # Only the first recovery (resume) counts; evaluate's reload of the best checkpoint must not
                # shorten the history to that checkpoint's epoch.
                self.valid_history = [tuple(item) for item in saved["valid_history"]]
                self._previous_train_time = saved["train_time_s"]
                if os.path.isfile(f"{path}.rng.pt"):  # absent from checkpoints saved before RNG states were
                    load_rng_states(f"{path}.rng.pt")
                self._history_recovered = True

    # -- non-finite losses and gradients ---------------------------------
    _nonfinite_loss = False

    def check_loss_isfinite(self, loss):
        """Counts a batch whose loss is NaN or inf; ``check_gradients`` then skips its step.

        Called by ``fit_batch`` before ``backward``. SpeechBrain's version
        counts too, but its message names neither the count nor the option.
        """
        if not torch.isfinite(loss):
            self._nonfinite_loss = True
            self._count_nonfinite_batch("loss")

    def check_gradients(self, grad_norms=None):
        """Skips the whole step when its loss or any gradient is not finite: every gradient is dropped.

        SpeechBrain drops only the non-finite gradients and steps the other
        parameters, and a NaN loss with finite gradients (e.g. a NaN that does
        not depend on the weights) would still update them. Called by
        ``optimizers_step`` while ``skip_nonfinite_grads`` is on (the default
        here), after clipping, with the total gradient norms that clipping
        computed: a gradient is finite everywhere if and only if the norm is
        (one check instead of one per parameter, which is slow for an encoder
        of hundreds of tensors). The parameters are searched only to name a
        culprit.

        Arguments
        ---------
        grad_norms : list of torch.Tensor, optional
            Total gradient norms covering every gradient; computed here if None.
        """
        named = [(name, p.grad) for name, p in self.modules.named_parameters() if p.grad is not None]
        if grad_norms is None:
            grad_norms = torch._foreach_norm([grad for _, grad in named]) if named else []
        finite = not grad_norms or bool(torch.stack([n.float() for n in grad_norms]).isfinite().all())
        bad = [] if finite else [name for name, grad in named if not grad.isfinite().all()] or ["(total norm)"]
        if bad and not self._nonfinite_loss:
            self._count_nonfinite_batch(f"gradient of {bad[0]}" + (f" (and {len(bad) - 1} more)" if bad[1:] else ""))
        if bad or self._nonfinite_loss:
            for param in self.modules.parameters():
                param.grad = None
        self._nonfinite_loss = False

    def _count_nonfinite_batch(self, what):
        self.nonfinite_count += 1
        if self.nonfinite_count > self.nonfinite_patience:
            raise ValueError(f"Training stopped: the {what} was not finite (NaN or inf) at batch {self.step}, "
                             f"making {self.nonfinite_count} such batches in this epoch, more than nonfinite_patience="
                             f"{self.nonfinite_patience}. Lower the learning rate or check the data; to tolerate more "
                             f"bad batches per epoch, set nonfinite_patience in the YAML or --nonfinite_patience on "
                             f"the command line.")  # fmt: skip
        logger.warning(f"The {what} is not finite at batch {self.step}: step skipped ({self.nonfinite_count} such "
                       f"batches in this epoch; training stops after more than nonfinite_patience="
                       f"{self.nonfinite_patience})")  # fmt: skip

    def _train_time(self):
        started = getattr(self, "_fit_started", None)
        return self._previous_train_time + (time.perf_counter() - started if started else 0.0)

    def _train_loader_specifics(self, dataset, loader_kwargs):
        # With ``steps_per_epoch``, an epoch is that many batches drawn with
        # replacement: validation (and early stopping) then come at the same
        # step counts whatever the size of the k-shot training set. These
        # draws, or a shuffled epoch, are grouped into batches of similar
        # durations (less padding) unless ``length_grouping`` is 0 or the
        # manifest has no duration column.
        steps = getattr(self.hparams, "steps_per_epoch", None)
        random_order = steps or loader_kwargs.get("shuffle", False)
        if not random_order or loader_kwargs.get("sampler") is not None or loader_kwargs.get("batch_sampler"):
            return super()._train_loader_specifics(dataset, loader_kwargs)
        batch_size = loader_kwargs.get("batch_size", 1)
        draws = {"seed": getattr(self.hparams, "seed", 563375142)}
        if steps:
            draws.update(replacement=True, num_samples=steps * batch_size * _world_size())
        pool_groups = getattr(self.hparams, "length_grouping", 8)
        durations = item_durations(dataset) if pool_groups else None
        if durations is not None:
            sampler = LengthGroupedSampler(dataset, durations, group_size=batch_size * _world_size(),
                                           pool_groups=pool_groups, **draws)  # fmt: skip
        elif steps:
            sampler = ReproducibleRandomSampler(dataset, **draws)
        else:
            return super()._train_loader_specifics(dataset, loader_kwargs)  # SpeechBrain's shuffling
        loader_kwargs = {**loader_kwargs, "sampler": sampler}
        loader_kwargs.pop("shuffle", None)
        loader_kwargs = super()._train_loader_specifics(dataset, loader_kwargs)
        if self.train_sampler is None:
            self.train_sampler = sampler  # so that SpeechBrain calls set_epoch: a new draw each epoch
        return loader_kwargs

    # -- stages and schedules ------------------------------------------
    def on_fit_start(self):
        # The anchors are the weights at the start of fine-tuning (the
        # pretrained ones); a checkpoint recovered below then restores the
        # anchors it saved, never the weights being resumed.
        if not self._anchors_captured:
            for regularizer in self.regularizers.values():
                if hasattr(regularizer, "capture"):
                    regularizer.capture()
                if torch.distributed.is_available() and torch.distributed.is_initialized():
                    for buffer in regularizer.buffers():
                        torch.distributed.broadcast(buffer, src=0)
            self._anchors_captured = True
        super().on_fit_start()
        # From here on the history is this run's; a later reload of the best
        # checkpoint (evaluate) must not cut it back to that checkpoint's.
        self._history_recovered = True
        self._fit_started = time.perf_counter()
        # Imported here: the encoders package loads transformers, which a Brain without a hub encoder never needs.
        from speechbrain_xfer.encoders.adapters import parameter_summary

        # Logged after init_optimizers, which freezes the encoder for linear probing.
        logger.info(parameter_summary(self.modules))

    def on_stage_start(self, stage, epoch=None):
        if stage == sb.Stage.TRAIN:
            self._term_sums, self._term_count = {}, 0

    def on_fit_batch_start(self, batch, should_step):
        # A schedule that never freezes changes nothing: skip walking the encoder's layers at every batch.
        if "encoder" in self.modules and self.schedule.ever_freezes:
            self.schedule.apply(encoder_layers(self.modules.encoder), self.optimizer_step)

    def encoder_trainable(self):
        """Whether any encoder layer trains at the current step."""
        layers = encoder_layers(self.modules.encoder)
        return self.schedule.trainable_count(self.optimizer_step, len(layers)) > 0

    def _wrap_distributed(self):
        """Wraps modules in DDP; converts batch norm to SyncBatchNorm on GPUs only.

        SpeechBrain always converts, and SyncBatchNorm refuses CPU tensors, so
        multi-process training on CPUs (gloo) would fail at the first batch.
        On CPUs each rank keeps plain batch norm, and DDP broadcasts rank 0's
        statistics at every forward.
        """
        if not self.distributed_launch or torch.device(self.device).type != "cpu":
            return super()._wrap_distributed()
        for name, module in self.modules.items():
            if any(p.requires_grad for p in module.parameters()):
                self.modules[name] = DistributedDataParallel(module, find_unused_parameters=self.find_unused_parameters)

    # -- optimizers -----------------------------------------------------
    def init_optimizers(self):
        encoder_opt_class = getattr(self.hparams, "encoder_opt_class", None)
        if encoder_opt_class is None or "encoder" not in self.modules or self.schedule.frozen:
            if self.schedule.frozen and "encoder" in self.modules:
                # The encoder's own layers; what it adds outside them (an HFEncoder's layer-sum weights) trains.
                for layer in encoder_layers(self.modules.encoder):
                    layer.requires_grad_(False)
            return super().init_optimizers()
        encoder = self.modules.encoder
        encoder_ids = {id(p) for p in encoder.parameters()}
        head_params = [p for p in self.modules.parameters() if id(p) not in encoder_ids]
        groups = layerwise_param_groups(
            encoder, encoder_layers(encoder), self.hparams.encoder_lr, getattr(self.hparams, "layer_decay", 1.0)
        )
        self.encoder_optimizer = encoder_opt_class(groups)
        self.optimizer = self.opt_class(head_params)
        self.optimizers_dict = {"encoder": self.encoder_optimizer, "head": self.optimizer}
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("encoder_optimizer", self.encoder_optimizer)
            self.checkpointer.add_recoverable("optimizer", self.optimizer)

    def freeze_optimizers(self, optimizers):
        if "encoder" in optimizers and not self.encoder_trainable():
            return {name: opt for name, opt in optimizers.items() if name != "encoder"}
        return optimizers

    def optimizers_step(self):
        """Like ``sb.Brain.optimizers_step``, but clips every parameter group, and adds closed-form gradients.

        SpeechBrain clips only ``param_groups[0]`` of each optimizer, which
        would leave the layer-wise learning-rate groups unclipped.

        A regularizer with a closed-form gradient (``penalty`` and
        ``add_gradient_``, as L2-SP has) is not back-propagated: its value
        joins the loss without a graph, and its gradient, times its weight, is
        added here to the unscaled gradients, before clipping, once per
        optimizer step (so once for all micro-batches of gradient
        accumulation, whose penalties are the same: the weights do not move
        between them). That is the gradient autograd would give, at a fraction
        of the memory traffic for a large encoder (benchmarks/hf_step.py).
        Under DDP it is added after the all-reduce, which is the same, since
        every process holds the same weights and anchors.
        """
        optimizers = self.freeze_optimizers(self.optimizers_dict or {"optimizer": self.optimizer})
        for opt in optimizers.values():
            self.scaler.unscale_(opt)
        for name, regularizer in self.regularizers.items():
            if _has_closed_form_gradient(regularizer):
                regularizer.add_gradient_(self.regularizer_weights[name])
        norms = []
        for opt in optimizers.values():
            params = [p for group in opt.param_groups for p in group["params"]]
            norms.append(torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm))
        if not self.scaler.is_enabled() and self.skip_nonfinite_grads:
            self.check_gradients(norms)
        for opt in optimizers.values():
            self.scaler.step(opt)
        self.scaler.update()
        for opt in optimizers.values():
            opt.zero_grad(set_to_none=True)
        self.optimizer_step += 1

    def anneal_learning_rates(self, metric):
        """Steps ``lr_annealing`` (head) and ``lr_annealing_encoder`` on ``metric``.

        Each optimizer's groups are scaled by the scheduler's new/old ratio,
        which keeps the layer-wise ratios intact. Returns the learning rates.
        """
        rates = {}
        for key, name in (("lr_annealing", "head"), ("lr_annealing_encoder", "encoder")):
            scheduler = getattr(self.hparams, key, None)
            optimizer = self.optimizer if name == "head" else getattr(self, "encoder_optimizer", None)
            if scheduler is None or optimizer is None:
                continue
            old, new = scheduler(metric)
            for group in optimizer.param_groups:
                group["lr"] *= new / old if old else 1.0
            rates[f"lr_{name}"] = new
        return rates


def _has_closed_form_gradient(regularizer):
    return callable(getattr(regularizer, "penalty", None)) and callable(getattr(regularizer, "add_gradient_", None))


def _world_size():
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1
