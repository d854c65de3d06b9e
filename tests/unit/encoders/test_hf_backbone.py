"""The HF encoder split into backbone and layer selection: checkpoints written before the split load into the
split classes, strictly, and give the same outputs; the backbone alone gives every hidden state."""

from pathlib import Path

import pytest
import torch

from speechbrain_xfer.encoders import HFEncoder
from speechbrain_xfer.encoders.hf_backbone import HFBackbone

# A tiny random Whisper-architecture encoder (save_pretrained folder), with the state_dicts of HFEncoders built
# on it by the code before the split (layer_sum with set weights; output_layer="auto" with layer 1 chosen) and
# their outputs on fixed waveforms.
BEFORE = Path(__file__).resolve().parents[2] / "data" / "hf_encoder_before_split"


@pytest.mark.parametrize(("name", "options"), [("sum", {"layer_sum": True}), ("auto", {"output_layer": "auto"})])
def test_a_checkpoint_from_before_the_split_loads_and_gives_the_same_output(name, options):
    expected = torch.load(BEFORE / "expected.pt", weights_only=True)
    encoder = HFEncoder(str(BEFORE), whisper_window="batch", **options).eval()
    state = torch.load(BEFORE / f"state_{name}.ckpt", weights_only=True)
    assert set(encoder.state_dict()) == set(state)  # the same names: checkpoints and exports stay valid
    encoder.load_state_dict(state, strict=True)
    with torch.no_grad():
        out = encoder(expected["wavs"], expected["lens"])
    torch.testing.assert_close(out, expected["outputs"][name], atol=1e-5, rtol=1e-4)
    if name == "auto":
        assert encoder.selected_layer == 1


def test_an_export_built_from_its_config_alone_takes_the_same_weights():
    """How an sbx export's hyperparams.yaml builds the encoder: from config.json and preprocessor_config.json."""
    import json

    config = json.loads((BEFORE / "config.json").read_text())
    extractor = json.loads((BEFORE / "preprocessor_config.json").read_text())
    expected = torch.load(BEFORE / "expected.pt", weights_only=True)
    encoder = HFEncoder(config=config, feature_extractor=extractor, layer_sum=True, whisper_window="batch").eval()
    assert encoder.source == "<config>"
    encoder.load_state_dict(torch.load(BEFORE / "state_sum.ckpt", weights_only=True), strict=True)
    with torch.no_grad():
        out = encoder(expected["wavs"], expected["lens"])
    torch.testing.assert_close(out, expected["outputs"]["sum"], atol=1e-5, rtol=1e-4)


def test_the_backbone_alone_gives_every_hidden_state_and_has_no_selection():
    backbone = HFBackbone(str(BEFORE), whisper_window="batch").eval()
    with torch.no_grad():
        states = backbone.hidden_states(torch.randn(1, 8000) * 0.1)
    assert states.shape[2] == backbone.num_layers + 1 == 3 and states.shape[-1] == backbone.output_dim
    assert not hasattr(backbone, "layer_weights") and not hasattr(backbone, "chosen_layer")
    assert len(backbone.layers()) == backbone.num_layers + 1
