"""The export of a source-task run: a ``pretrained_source`` folder for the transfer recipes, with EWC's Fisher."""

import logging
import os

import speechbrain as sb
import torch

from speechbrain_xfer.encoders.hf import HFEncoder
from speechbrain_xfer.encoders.hf_folders import add_to_hf_cache, save_encoder_folder
from speechbrain_xfer.hub.export import export_experiment
from speechbrain_xfer.regularization import EWC

logger = logging.getLogger(__name__)


def export_source(brain, train_set):
    """Exports a source-task run as a ``pretrained_source`` folder, with the source task's Fisher for EWC.

    The folder (``export_folder``) is the one ``sbx export`` writes (``encoder.ckpt``, the encoder alone,
    and what SpeechBrain's inference class for the task loads); for an :class:`HFEncoder`, the encoder's
    hub-format folder (:func:`_export_hf_source`). Either way it also holds ``ewc.ckpt``: the anchors and the
    diagonal Fisher of the source task for EWC, the mean squared gradient of the task's loss over
    ``fisher_batches`` training batches, scaled so that its largest entry is 1. The ``ewc`` recipes load it.
    """
    ewc = EWC(brain.hparams.encoder)
    loader = sb.dataio.dataloader.make_dataloader(train_set, batch_size=brain.hparams.batch_size, shuffle=True)
    brain.modules.eval()

    def loss(batch):
        return brain.compute_task_loss(brain.compute_forward(batch, sb.Stage.TRAIN), batch, sb.Stage.TRAIN)

    torch.manual_seed(brain.hparams.seed)
    ewc.estimate_fisher(loss, loader, max_batches=brain.hparams.fisher_batches, normalize=True)
    if isinstance(brain.hparams.encoder, HFEncoder):
        _export_hf_source(brain, {"ewc.ckpt": ewc.state_dict()})
        return
    export_experiment(
        brain.hparams.output_folder,
        brain.hparams.export_folder,
        overwrite=True,
        extra_files={"ewc.ckpt": ewc.state_dict()},
    )


def _export_hf_source(brain, extra_files):
    """Writes a source run's best :class:`HFEncoder` as a hub-format folder, with what its task adds.

    ``export_folder`` gets ``config.json``, ``model.safetensors`` and ``preprocessor_config.json`` (what
    ``save_pretrained`` writes, so ``HFEncoder`` and ``AutoModel.from_pretrained`` load it as they load a hub
    model), and beside them ``extra_files``, the CTC head (``ctc_head.ckpt``) and its character set
    (``tokenizer.ckpt``) when the run has them, for the ASR recipes that fine-tune the head too.
    ``hf_cache_id`` (``<org>/<name>``), when the YAML has it, also puts the folder in the HF cache under that
    hub id, where ``HF_HUB_OFFLINE=1`` finds it as it finds a model downloaded once.
    """
    # The modules hold the best checkpoint already: run_experiment's test pass loaded it.
    hparams = brain.hparams
    files = dict(extra_files)
    if "ctc_head" in brain.modules:
        files["ctc_head.ckpt"] = brain.modules["ctc_head"].state_dict()
        chars = os.path.join(hparams.save_folder, "char_tokenizer.txt")
        if os.path.isfile(chars):
            files["tokenizer.ckpt"] = chars
    encoder = hparams.encoder
    save_encoder_folder(encoder.model, encoder.wrapper.feature_extractor, hparams.export_folder, files)
    logger.info("exported the encoder in hub format to %s", hparams.export_folder)
    if getattr(hparams, "hf_cache_id", None):
        add_to_hf_cache(hparams.export_folder, hparams.hf_cache_id)
