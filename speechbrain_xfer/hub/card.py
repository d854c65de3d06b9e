"""The model card (``README.md``) of an exported model: hub metadata, test figures, usage code that runs."""

from huggingface_hub import EvalResult, ModelCardData

PIPELINES = {
    "classifier": "audio-classification",
    "multi_classifier": "audio-classification",
    "ctc": "automatic-speech-recognition",
}
TASK_TAGS = {
    "KWS": "keyword-spotting",
    "intent": "spoken-language-understanding",
    "emotion": "emotion-recognition",
    "ASR": "speech-recognition",
}

_USAGE = {
    "speechbrain.inference.classifiers.EncoderClassifier": """\
from speechbrain.inference.classifiers import EncoderClassifier

classifier = EncoderClassifier.from_hparams(source="{source}", savedir="pretrained_models/{name}")
out_prob, score, index, label = classifier.classify_file("{audio}")
print(label[0], float(score[0].exp()))""",
    "speechbrain.inference.ASR.EncoderASR": """\
from speechbrain.inference.ASR import EncoderASR

asr = EncoderASR.from_hparams(source="{source}", savedir="pretrained_models/{name}")
print(asr.transcribe_file("{audio}"))""",
    "speechbrain_xfer.hub.interfaces.MultiTargetClassifier": """\
from speechbrain.inference.interfaces import foreign_class

classifier = foreign_class(source="{source}", pymodule_file="custom_interface.py",
                           classname="MultiTargetClassifier", savedir="pretrained_models/{name}")
log_probs, labels = classifier.classify_file("{audio}")
print(labels)""",
}


def card_metrics(info):
    """``[(metric type, value, display name)]`` of the run's test split, in percent."""
    test = info["summary"].get("test") or {}
    if info["kind"] == "ctc":
        return [(key.lower(), round(float(test[key]), 2), f"Test {key}") for key in ("WER", "CER") if key in test]
    metrics = [("accuracy", round(100 * float(test["accuracy"]), 2), "Test accuracy")]
    if "macro_f1" in test:
        metrics.append(("f1", round(100 * float(test["macro_f1"]), 2), "Test macro-F1"))
    return metrics


def usage_code(info):
    """Python that loads the model and runs it on its example file (or on ``your_audio.wav``)."""
    audio = f"{info['source']}/example.wav" if info["example"] else "your_audio.wav"
    return _USAGE[info["interface"]].format(source=info["source"], name=info["name"], audio=audio)


def card_data(info):
    """The card's YAML front matter, as ``huggingface_hub.ModelCardData``."""
    pipeline = PIPELINES[info["kind"]]
    results = [
        EvalResult(
            task_type=pipeline,
            dataset_type=info["dataset"],
            dataset_name=f"{info['dataset']} {info['task']}",
            dataset_split="test",
            metric_type=kind,
            metric_value=value,
            metric_name=name,
        )
        for kind, value, name in card_metrics(info)
    ]
    tags = ["speechbrain", "speechbrain_xfer", "transfer-learning", pipeline]
    if info["task"] in TASK_TAGS:
        tags.append(TASK_TAGS[info["task"]])
    return ModelCardData(
        language=info["language"],
        license=info["license"],
        library_name="speechbrain",
        tags=tags,
        pipeline_tag=pipeline,
        datasets=[info["dataset"]],
        metrics=[m[0] for m in card_metrics(info)],
        model_name=info["name"],
        eval_results=results,
    )


def write_model_card(path, info):
    """Writes the model card for an export described by ``info`` (see ``export._Export.card_info``)."""
    summary = info["summary"]
    rows = "\n".join(f"| {name} | {value} |" for _, value, name in card_metrics(info))
    what = {
        "classifier": f"utterance classification ({', '.join(info['targets'])})",
        "multi_classifier": f"utterance classification, one label per slot ({', '.join(info['targets'])})",
        "ctc": "speech recognition (CTC)",
    }[info["kind"]]
    regularizers = ", ".join(info["regularizers"]) or "none"
    interface_note = ""
    if info["kind"] == "multi_classifier":
        interface_note = (
            "\nSpeechBrain's stock `EncoderClassifier` has one head; this model has one per slot, so "
            "it loads through `foreign_class` and the folder's `custom_interface.py`, which re-exports "
            "`speechbrain_xfer.hub.interfaces.MultiTargetClassifier`.\n"
        )
    body = f"""
# {info["name"]}

{what.capitalize()} on {info["dataset"]} ({info["task"]}), fine-tuned with
speechbrain_xfer recipes, method `{info["method"]}`:
a `{info["encoder"]}` encoder (pretrained source: `{info["pretrained_source"] or "none, trained from scratch"}`;
regularizers: {regularizers}) and its task head, trained on {info["train_examples"] or "an unknown number of"}
utterances for {summary.get("steps", "?")} steps ({summary.get("train_time_s", 0):.0f} s).

## Results on the test split

| metric | value (%) |
|---|---|
{rows}

Measured by the training run on its test split, once, with the checkpoint of the best validation score.

## Usage

Needs `pip install speechbrain speechbrain_xfer` (the model's modules are speechbrain_xfer classes).
{interface_note}
```python
{usage_code(info)}
```

Audio at any sample rate and channel count is resampled to 16 kHz and down-mixed by SpeechBrain's `load_audio`.

## Files

- `hyperparams.yaml`: the modules (the training run's own definitions) and the pretrainer that loads the weights;
- `encoder.ckpt`: the encoder's `state_dict` alone, so this folder also serves as `pretrained_source` for
  further fine-tuning with speechbrain_xfer recipes; the other `*.ckpt` weight files are `state_dict`s too
  (loadable with `torch.load(..., weights_only=True)`); `label_encoder*.ckpt` and `tokenizer.ckpt` are
  SpeechBrain's label and token lists.

## Limitations

The test split is the run's own; on other data (other voices, microphones, languages) expect lower figures.
Loading a `hyperparams.yaml` runs the code it names (`!new:`, `!name:`): load models from sources you trust.
"""
    with open(path, "w") as f:
        f.write(f"---\n{card_data(info).to_yaml()}\n---\n{body}")
