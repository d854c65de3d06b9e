import pytest

from speechbrain_xfer.cli import main
from speechbrain_xfer.hub.loading import untrusted_code

HEADER = "# inference class: speechbrain.inference.classifiers.EncoderClassifier\n"


def test_code_outside_the_trusted_packages_is_found_by_tag_and_module():
    text = (
        "a: !new:torch.nn.Linear [2, 2]\n"
        "b: !name:speechbrain_xfer.lobes.ClassifierHead\n"
        "c: !new:subprocess.Popen [ls]\n"
        "d: !module:os\n"
        "e: !include:other.yaml\n"
        "f: !apply:speechbrain.utils.seed_everything [1]\n"
        "g: !new:torchaudio_evil.X\n"
    )
    assert untrusted_code(text) == [
        ("!new:", "subprocess.Popen"),
        ("!module:", "os"),
        ("!include:", "other.yaml"),
        ("!new:", "torchaudio_evil.X"),
    ]


def test_classify_refuses_a_model_that_runs_other_code_unless_trusted(tmp_path, capsys):
    marker = tmp_path / "it_ran"
    model = tmp_path / "model"
    model.mkdir()
    (model / "hyperparams.yaml").write_text(HEADER + f'run: !apply:os.system ["touch {marker}"]\n')
    with pytest.raises(SystemExit) as refused:
        main(["classify", str(model), str(tmp_path / "a.wav")])
    message = str(refused.value)
    assert "runs code outside torch, speechbrain, speechbrain_xfer" in message
    assert "!apply:os.system (module os)" in message and "--trust-remote-code" in message
    assert not marker.exists(), "nothing may run before the user trusts the model"
    # Trusted, the YAML is loaded and its code runs (this folder is no model, so the load fails after it).
    with pytest.raises(Exception):  # noqa: B017 - whatever SpeechBrain raises for a folder without modules
        main(["classify", str(model), str(tmp_path / "a.wav"), "--trust-remote-code"])
    assert marker.exists()
