import torch
from torch import nn

from speechbrain_xfer.brains.schedules import LayerSchedule, layerwise_param_groups
from speechbrain_xfer.encoders.conv import ConvEncoder


def _trainable(layers):
    return [all(p.requires_grad for p in layer.parameters()) for layer in layers]


def test_freeze_then_gradual_unfreezing_top_layer_first():
    encoder = ConvEncoder(8, channels=(8, 8, 8), strides=(1, 1, 1))
    layers = encoder.layers()
    schedule = LayerSchedule(freeze_steps=2, unfreeze_every=3)
    seen = {step: (schedule.apply(layers, step), _trainable(layers)) for step in (0, 1, 2, 4, 5, 8, 20)}
    assert seen[0] == (0, [False, False, False])
    assert seen[1] == (0, [False, False, False])
    assert seen[2] == (1, [False, False, True])
    assert seen[4] == (1, [False, False, True])
    assert seen[5] == (2, [False, True, True])
    assert seen[8] == (3, [True, True, True])
    assert seen[20] == (3, [True, True, True])


def test_frozen_layers_get_no_gradient_and_keep_batchnorm_stats():
    encoder = ConvEncoder(8, channels=(8, 8), strides=(1, 1))
    encoder.train()
    LayerSchedule(freeze_steps=10).apply(encoder.layers(), step=0)
    stats = encoder.blocks[0].norm.running_mean.clone()
    out = encoder(torch.randn(2, 20, 8))
    assert not out.requires_grad, "a frozen encoder must not build a graph"
    assert torch.equal(stats, encoder.blocks[0].norm.running_mean)


def test_layerwise_learning_rates_decay_downwards_and_cover_every_parameter():
    encoder = ConvEncoder(8, channels=(8, 8, 8), strides=(1, 1, 1), rnn_dim=4)
    groups = layerwise_param_groups(encoder, encoder.layers(), lr=1e-3, decay=0.5)
    assert [g["lr"] for g in groups] == [1e-3 * 0.5**3, 1e-3 * 0.5**2, 1e-3 * 0.5, 1e-3]
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in encoder.parameters())
    extra = nn.Parameter(torch.zeros(1))
    encoder.register_parameter("layer_weights", extra)
    groups = layerwise_param_groups(encoder, encoder.layers(), lr=1.0, decay=0.5)
    assert any(p is extra for p in groups[-1]["params"])


def test_parameters_frozen_by_the_encoder_itself_stay_frozen():
    encoder = ConvEncoder(8, channels=(8, 8), strides=(1, 1))
    encoder.blocks[0].conv.requires_grad_(False)  # as freeze_feature_extractor does
    schedule = LayerSchedule(freeze_steps=1)
    schedule.apply(encoder.layers(), step=0)
    schedule.apply(encoder.layers(), step=5)
    assert not encoder.blocks[0].conv.weight.requires_grad
    assert encoder.blocks[0].norm.weight.requires_grad and encoder.blocks[1].conv.weight.requires_grad
