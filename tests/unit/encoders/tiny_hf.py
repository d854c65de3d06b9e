"""Sizes and builders of the tiny hub-style models of the encoder tests (the fixtures are in conftest.py)."""

from speechbrain_xfer.encoders.hf_folders import model_classes

FAMILIES = ("wav2vec2", "hubert", "wavlm", "whisper")
DIM = 32
LAYERS = 2
SSL_CONFIG = dict(
    hidden_size=DIM,
    num_hidden_layers=LAYERS,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=(32, 32),
    conv_stride=(5, 4),
    conv_kernel=(10, 8),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
)
WHISPER_CONFIG = dict(
    d_model=DIM,
    encoder_layers=LAYERS,
    decoder_layers=1,
    encoder_attention_heads=2,
    decoder_attention_heads=2,
    encoder_ffn_dim=64,
    decoder_ffn_dim=64,
    num_mel_bins=80,
    max_source_positions=1500,
)
BUILDERS = {family: model_classes(family) for family in FAMILIES}
