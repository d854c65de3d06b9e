"""A finished recipe run, read from its own files for the export: its YAML, summary and best checkpoint."""

import json
import os
from pathlib import Path

from speechbrain_xfer.data.manifest import read_manifest
from speechbrain_xfer.hub import yaml_nodes
from speechbrain_xfer.hub.loading import ExportError
from speechbrain_xfer.recipe_config import load_pretrained, load_recipe_hparams


class FinishedRun:
    """A finished run: its hyperparameters, built, with the best validation checkpoint loaded.

    Arguments
    ---------
    folder : str
        The run's ``output_folder``: ``hyperparams.yaml``, ``summary.json`` and ``save/``.
    """

    def __init__(self, folder):
        self.folder = os.path.abspath(folder)
        hparams_file = os.path.join(self.folder, "hyperparams.yaml")
        summary_file = os.path.join(self.folder, "summary.json")
        for path, what in ((hparams_file, "a recipe's output_folder"), (summary_file, "a finished run")):
            if not os.path.isfile(path):
                raise ExportError(
                    f"{self.folder} has no {os.path.basename(path)}: give {what} (its "
                    f"hyperparams.yaml, summary.json and save/ folder)"
                )
        with open(summary_file) as f:
            self.summary = json.load(f)
        self.tree = yaml_nodes.read_tree(hparams_file)
        self.hparams = _load_run_hparams(hparams_file)
        self.modules = self.hparams["modules"]
        self.targets = list(self.hparams.get("targets") or []) if "heads" in self.modules else []
        self.checkpoint = self._load_best_checkpoint()
        for module in self.modules.values():
            module.eval()

    def _load_best_checkpoint(self):
        from speechbrain_xfer.encoders.adapters import AdaptedEncoder

        if isinstance(self.modules["encoder"], AdaptedEncoder):
            # Adapter checkpoints hold only what trained; the frozen weights come from the pretrained source.
            load_pretrained(self.hparams)
        key = "max_key" if self.summary.get("higher_is_better", True) else "min_key"
        checkpoint = self.hparams["checkpointer"].recover_if_possible(**{key: self.summary["metric"]})
        if checkpoint is None:
            raise ExportError(
                f"no checkpoint in {self.hparams['checkpointer'].checkpoints_dir}; was the run's "
                f"save folder moved or cleaned?"
            )
        return checkpoint.path

    def recipe(self):
        """``(dataset, task, method)`` of the recipe, from the YAML path the run recorded in ``summary.json``.

        A recipe YAML lives at ``recipes/<dataset>/<task>/hparams/<method>.yaml``; a run of a YAML kept
        elsewhere (or older than the record) is ``unknown`` where the path does not say.
        """
        path = self.summary.get("recipe_file")
        if not path:
            return "unknown", "unknown", "unknown"
        path = Path(path)
        if path.parent.name != "hparams" or len(path.parents) < 4:
            return "unknown", "unknown", path.stem
        return path.parents[2].name, path.parents[1].name, path.stem

    def dataset(self):
        """The data set the run trained on, for the model card: the recipe's, or, for a SynthSpeech recipe (or
        a YAML kept elsewhere) run on other data (``sbx curve --recipe ... --data-folder <folder>``), the name of
        that data folder."""
        recipe_dataset = self.recipe()[0]
        folder = self.hparams.get("data_folder")
        if recipe_dataset in ("SynthSpeech", "unknown") and folder and not self.is_synthetic_corpus():
            return os.path.basename(os.path.normpath(str(folder)))
        return recipe_dataset

    def is_synthetic_corpus(self):
        """Whether the run's data is a SynthSpeech folder (it holds ``synth_options.json``), free to copy."""
        return os.path.isfile(os.path.join(self.hparams.get("data_folder") or "", "synth_options.json"))

    def first_test_file(self):
        """The audio file of the first test utterance, or None."""
        path = self.hparams.get("test_csv")
        if not path or not os.path.isfile(path):
            return None
        rows = read_manifest(path, ("wav",), data_root=self.hparams["data_folder"]).rows
        return rows[0]["wav"] if rows else None

    def train_examples(self):
        """How many training utterances the run had, or None."""
        path = self.hparams.get("train_csv")
        if not path or not os.path.isfile(path):
            return None
        return len(read_manifest(path).rows)


def _load_run_hparams(hparams_file):
    seed = os.environ.get("SB_GLOBAL_SEED")
    try:
        return load_recipe_hparams(hparams_file)
    finally:
        # The run's YAML seeds SpeechBrain globally when built; exporting must not change the caller's seed.
        if seed is None:
            os.environ.pop("SB_GLOBAL_SEED", None)
        else:
            os.environ["SB_GLOBAL_SEED"] = seed
