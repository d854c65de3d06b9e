import os

import pytest
import torch

from speechbrain_xfer.encoders.ge2e import (
    GE2EEncoder,
    GE2EFeatures,
    louder,
    resemblyzer_weights,
    write_pretrained_folder,
)


@pytest.fixture(scope="module")
def weights():
    try:
        return resemblyzer_weights()
    except FileNotFoundError as err:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(str(err))
        pytest.skip(str(err))


def test_the_converted_weights_compute_what_resemblyzers_lstm_computes(weights, tmp_path):
    state = torch.load(weights, map_location="cpu", weights_only=True)["model_state"]
    reference = torch.nn.LSTM(40, 256, 3, batch_first=True)
    reference.load_state_dict({k.removeprefix("lstm."): v for k, v in state.items() if k.startswith("lstm.")})
    encoder = GE2EEncoder()
    encoder.load_state_dict(torch.load(write_pretrained_folder(tmp_path, weights), weights_only=True))
    feats = torch.rand(2, 60, 40)
    with torch.no_grad():
        assert torch.equal(encoder(feats), reference(feats)[0])
    assert sum(p.numel() for p in encoder.parameters()) == 1_357_824  # 1.42 M with GE2E's output layer


def test_each_layer_is_its_own_module_and_the_layer_sum_learns():
    encoder = GE2EEncoder(input_dim=8, hidden_size=16, layer_sum=True)
    assert [type(layer) for layer in encoder.layers()] == [torch.nn.LSTM] * 3
    encoder(torch.rand(2, 10, 8), torch.tensor([1.0, 0.6])).sum().backward()
    assert encoder.layer_weights.grad is not None and encoder.layer_weights.grad.abs().sum() > 0


def test_the_loudness_ignores_the_padding_of_a_batch():
    _ = torch.manual_seed(0)
    wav = torch.randn(1, 4000) * 0.001
    padded = torch.cat([wav, torch.zeros(1, 4000)], dim=1)
    assert torch.allclose(louder(padded)[:, :4000], louder(wav))
    features = GE2EFeatures()
    assert features(wav).shape == (1, 1 + 4000 // 160, 40)
