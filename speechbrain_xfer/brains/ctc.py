"""CTCBrain: speech recognition with a CTC head on a (pretrained) encoder.

wavs -> (filterbanks) -> encoder -> CTCHead -> per-frame token log-probabilities,
trained with the CTC loss and decoded greedily or with a prefix beam search.
WER and CER (in %, as SpeechBrain reports them) are computed on the
validation and test sets.

hparams read here: ``tokenizer`` (from ``asr_datasets``: ``encode``,
``decode``, ``blank_index``, ``vocabulary()``, ``len()``), ``blank_index``
(optional; must match the tokenizer's), ``decoding`` (``"greedy"``, the
default, or ``"beam"``), ``beam_size`` (default 10), ``compute_features``
and ``mean_var_norm`` (for filterbank encoders), ``wav_augment`` (a
SpeechBrain Augmenter, training only), ``checkpointer``, ``train_logger``,
``epoch_counter``, ``output_folder``, ``select_by`` (``"CER"``, the
default, or ``"WER"``: the validation metric for early stopping, learning-rate
annealing, the best checkpoint and ``summary.json``). Modules: ``encoder``
and ``ctc_head``.
"""

import logging
import os

import speechbrain as sb
from speechbrain.decoders import ctc_greedy_decode
from speechbrain.decoders.ctc import CTCBeamSearcher
from speechbrain.utils.metric_stats import ErrorRateStats

from speechbrain_xfer.brains.transfer import TransferBrain
from speechbrain_xfer.lobes.pooling import MeanPooling

logger = logging.getLogger(__name__)

DECODINGS = ("greedy", "beam")


class CTCBrain(TransferBrain):
    """CTC speech recognition on top of a (pretrained) encoder.

    The best checkpoint, and the run's ``summary.json`` metric, is the one of
    lowest validation WER.

    Example
    -------
    >>> import torch
    >>> from speechbrain_xfer.data.tokenizers import CharTokenizer
    >>> from speechbrain_xfer.encoders.conv import ConvEncoder
    >>> from speechbrain_xfer.lobes import CTCHead
    >>> tok = CharTokenizer.load_or_create(getfixture("tmp_path") / "chars.txt", ["hi ho"])
    >>> modules = {"encoder": ConvEncoder(40, channels=(16,), strides=(2,)), "ctc_head": CTCHead(16, len(tok))}
    >>> brain = CTCBrain(modules, hparams={"tokenizer": tok}, run_opts={"device": "cpu"})
    >>> path = [tok.encode(c)[0] if c != "-" else tok.blank_index for c in "hh-i--ii"]
    >>> log_probs = torch.nn.functional.one_hot(torch.tensor([path]), len(tok)).float().log()
    >>> brain.decode(log_probs, torch.tensor([1.0])), brain.decode(log_probs, torch.tensor([0.5]))
    (['hii'], ['hi'])
    """

    summary_metric, higher_is_better = "CER", False
    best_checkpoint_key = {"min_key": "CER"}

    def __init__(self, modules=None, opt_class=None, hparams=None, run_opts=None, checkpointer=None):
        super().__init__(modules, opt_class, hparams, run_opts, checkpointer)
        tokenizer = self.hparams.tokenizer
        self.blank_index = getattr(self.hparams, "blank_index", tokenizer.blank_index)
        if self.blank_index != tokenizer.blank_index:
            raise ValueError(
                f"blank_index is {self.blank_index} but the tokenizer's blank is "
                f"{tokenizer.blank_index}; drop blank_index or set it to the tokenizer's"
            )
        n_tokens = getattr(self.modules.ctc_head, "n_tokens", len(tokenizer))
        if n_tokens != len(tokenizer):
            raise ValueError(
                f"ctc_head has {n_tokens} outputs but the tokenizer has {len(tokenizer)} tokens; "
                f"build the head with n_tokens = len(tokenizer)"
            )
        self.summary_metric = getattr(self.hparams, "select_by", "CER")
        if self.summary_metric not in ("CER", "WER"):
            raise ValueError(f"select_by is {self.summary_metric!r}; use 'CER' or 'WER'")
        self.best_checkpoint_key = {"min_key": self.summary_metric}
        self.decoding = getattr(self.hparams, "decoding", "greedy")
        if self.decoding not in DECODINGS:
            raise ValueError(f"decoding is {self.decoding!r}; use one of {DECODINGS}")
        self.beam_searcher = None
        if self.decoding == "beam":
            self.beam_searcher = CTCBeamSearcher(
                self.blank_index, tokenizer.vocabulary(), beam_size=getattr(self.hparams, "beam_size", 10)
            )
        self._pool = MeanPooling()
        self._warned_short = set()

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        features, x, lens, output_lens = self.encode(batch, stage)
        return {
            "features": features,
            "encoder_input": x,
            "lens": lens,
            "output_lens": output_lens,
            "log_probs": self.modules.ctc_head(features),
            # One vector per utterance, for batch-spectral regularizers (BSS).
            "pooled": self._pool(features, output_lens),
        }

    def compute_task_loss(self, outputs, batch, stage):
        tokens, token_lens = batch.tokens
        augment = getattr(self.hparams, "wav_augment", None)
        if stage == sb.Stage.TRAIN and augment is not None:
            tokens, token_lens = augment.replicate_labels(tokens), augment.replicate_labels(token_lens)
        log_probs, lens = outputs["log_probs"], outputs["output_lens"]
        self._warn_if_too_short(batch.id, log_probs.shape[1] * lens, tokens.shape[1] * token_lens)
        loss = sb.nnet.losses.ctc_loss(log_probs, tokens, lens, token_lens, self.blank_index)
        if stage != sb.Stage.TRAIN:
            hypotheses = [text.split() for text in self.decode(log_probs, lens)]
            references = [text.split() for text in batch.transcript]
            self.wer_metric.append(batch.id, hypotheses, references)
            self.cer_metric.append(batch.id, hypotheses, references)
        return loss

    def decode(self, log_probs, lens):
        """The best text of each utterance: greedy or prefix beam search (hparam ``decoding``).

        Arguments
        ---------
        log_probs : torch.Tensor
            (batch, frames, tokens) CTC log-probabilities.
        lens : torch.Tensor
            Relative lengths, as SpeechBrain keeps them.

        Returns
        -------
        list of str
            One text per utterance, words separated by single spaces for beam search.
        """
        if self.beam_searcher is None:
            ids = ctc_greedy_decode(log_probs, lens, blank_id=self.blank_index)
            return [self.hparams.tokenizer.decode(seq) for seq in ids]
        # decode_beams truncates relative lengths to whole frames where the greedy decoder and the
        # loss round them, which can drop an utterance's last frame; round here for the same frames.
        frames = (lens * log_probs.shape[1]).round().int().tolist()
        scores = log_probs.detach().float().cpu().numpy()
        return [self.beam_searcher.decode_log_probs(s, n)[0].text for s, n in zip(scores, frames)]

    def _warn_if_too_short(self, ids, frames, targets):
        # CTC needs a frame per token; the loss (zero_infinity) silently gives 0 otherwise.
        for utt_id, n_frames, n_tokens in zip(ids, frames.round().tolist(), targets.round().tolist()):
            if n_frames < n_tokens and utt_id not in self._warned_short:
                self._warned_short.add(utt_id)
                logger.warning(
                    f"utterance {utt_id}: {int(n_tokens)} tokens but only {int(n_frames)} encoder "
                    f"frames, so CTC cannot learn it; use less subsampling or larger tokens"
                )

    def on_stage_start(self, stage, epoch=None):
        super().on_stage_start(stage, epoch)
        if stage != sb.Stage.TRAIN:
            self.wer_metric = ErrorRateStats()
            self.cer_metric = ErrorRateStats(split_tokens=True)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.train_stats = {"loss": stage_loss, **self.term_averages()}
            return
        stats = {
            "loss": stage_loss,
            "WER": self.wer_metric.summarize("error_rate"),
            "CER": self.cer_metric.summarize("error_rate"),
        }
        self.end_evaluation(
            stage,
            epoch,
            stats,
            checkpoint_meta={"WER": stats["WER"], "CER": stats["CER"]},
            annealing_metric=stats[self.summary_metric],
        )
        if stage == sb.Stage.TEST:
            self._write_wer()

    def _write_wer(self):
        folder = getattr(self.hparams, "output_folder", None)
        if folder is None:
            return
        with open(os.path.join(folder, "wer.txt"), "w") as f:
            self.wer_metric.write_stats(f)
