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
as NewBobScheduler, stepped on the validation metric).
"""

import logging

import speechbrain as sb
import torch

from speechbrain_xfer.brains.schedules import LayerSchedule, encoder_layers, layerwise_param_groups

logger = logging.getLogger(__name__)


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
        run_opts = dict(run_opts or {})
        # A non-finite gradient must never reach the weights.
        run_opts.setdefault("skip_nonfinite_grads", True)
        # DDP errors on parameters that get no gradient, as frozen layers do.
        if self.schedule.ever_freezes:
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

    # -- regularization -------------------------------------------------
    def regularization_terms(self, outputs):
        """Returns ``{name: R_k}`` for the configured regularizers."""
        terms = {}
        for name, regularizer in self.regularizers.items():
            kind = type(regularizer).__name__
            if kind == "DELTA":
                terms[name] = regularizer(outputs["features"], outputs["encoder_input"], lengths=outputs["lens"])
            elif kind == "BSS":
                terms[name] = regularizer(outputs["pooled"])
            else:
                terms[name] = regularizer()
        return terms

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
            self._term_sums[key] = self._term_sums.get(key, 0.0) + float(value.detach())
        self._term_count += 1

    def term_averages(self):
        """Average of the task loss and of each R_k over the current epoch."""
        return {key: total / max(self._term_count, 1) for key, total in self._term_sums.items()}

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

    def on_stage_start(self, stage, epoch=None):
        if stage == sb.Stage.TRAIN:
            self._term_sums, self._term_count = {}, 0

    def on_fit_batch_start(self, batch, should_step):
        if "encoder" in self.modules:
            self.schedule.apply(encoder_layers(self.modules.encoder), self.optimizer_step)

    def encoder_trainable(self):
        """Whether any encoder layer trains at the current step."""
        layers = encoder_layers(self.modules.encoder)
        return self.schedule.trainable_count(self.optimizer_step, len(layers)) > 0

    # -- optimizers -----------------------------------------------------
    def init_optimizers(self):
        encoder_opt_class = getattr(self.hparams, "encoder_opt_class", None)
        if encoder_opt_class is None or "encoder" not in self.modules or self.schedule.frozen:
            if self.schedule.frozen and "encoder" in self.modules:
                for param in self.modules.encoder.parameters():
                    param.requires_grad_(False)
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
        """Like ``sb.Brain.optimizers_step``, but clips every parameter group.

        SpeechBrain clips only ``param_groups[0]`` of each optimizer, which
        would leave the layer-wise learning-rate groups unclipped.
        """
        optimizers = self.freeze_optimizers(self.optimizers_dict or {"optimizer": self.optimizer})
        for opt in optimizers.values():
            self.scaler.unscale_(opt)
            params = [p for group in opt.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        if not self.scaler.is_enabled() and self.skip_nonfinite_grads:
            self.check_gradients()
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
