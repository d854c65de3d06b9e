"""SpeechBrain data pipelines shared by the recipes."""

import csv
import os

import speechbrain as sb
from speechbrain.dataio.encoder import CategoricalEncoder


class ManifestError(ValueError):
    """A manifest that cannot be used as it is."""


def _labels_in(path, column):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if column not in (reader.fieldnames or []):
            raise ManifestError(f"{path} has no column {column!r} (columns: {reader.fieldnames}); "
                                f"check the recipe's `targets` or the manifest")  # fmt: skip
        return {row["ID"]: row[column] for row in reader}


def classification_datasets(data_folder, csv_files, targets, save_folder):
    """Datasets yielding ``sig`` and, per target, the label and its index.

    Arguments
    ---------
    data_folder : str
        Replaces ``$data_root`` in the manifests' ``wav`` column.
    csv_files : dict
        ``{"train": path, "valid": path, "test": path}``.
    targets : list of str
        Label columns, e.g. ``["intent"]`` or ``["action", "object", "location"]``.
    save_folder : str
        Where the label encoders are saved (and reloaded on resume).

    Returns
    -------
    datasets : dict
        ``{split: DynamicItemDataset}``.
    label_encoders : dict
        ``{target: CategoricalEncoder}``, built from the training manifest.
    """
    for split, path in csv_files.items():
        if not os.path.isfile(path):
            raise ManifestError(f"the {split} manifest {path} does not exist; prepare the data first")
    datasets = {
        split: sb.dataio.dataset.DynamicItemDataset.from_csv(path, replacements={"data_root": data_folder})
        for split, path in csv_files.items()
    }

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav):
        return sb.dataio.dataio.read_audio(wav)

    sb.dataio.dataset.add_dynamic_item(list(datasets.values()), audio_pipeline)
    label_encoders = {}
    os.makedirs(save_folder, exist_ok=True)
    for target in targets:
        known = set(_labels_in(csv_files["train"], target).values())
        for path in csv_files.values():
            unknown = {(i, label) for i, label in _labels_in(path, target).items() if label not in known}
            if unknown:
                shown = ", ".join(f"{i}={label!r}" for i, label in sorted(unknown)[:5])
                raise ManifestError(f"{path}: {len(unknown)} {target} labels never seen in training ({shown}); "
                                    f"every class needs training examples")  # fmt: skip
        encoder = CategoricalEncoder()
        encoder.load_or_create(
            os.path.join(save_folder, f"label_encoder_{target}.txt"),
            from_didatasets=[datasets["train"]],
            output_key=target,
        )
        label_encoders[target] = encoder
        sb.dataio.dataset.add_dynamic_item(list(datasets.values()), _label_pipeline(target, encoder))
    keys = ["id", "sig", *targets, *(f"{t}_encoded" for t in targets)]
    sb.dataio.dataset.set_output_keys(list(datasets.values()), keys)
    return datasets, label_encoders


def _label_pipeline(target, encoder):
    @sb.utils.data_pipeline.takes(target)
    @sb.utils.data_pipeline.provides(f"{target}_encoded")
    def pipeline(label):
        return encoder.encode_label_torch(label)

    return pipeline
