"""Parameter-efficient fine-tuning: LoRA and bottleneck (Houlsby) adapters inside a pretrained encoder.

The adapters are SpeechBrain's (:mod:`speechbrain.nnet.adapters`): :class:`~speechbrain.nnet.adapters.LoRA`
(Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022), which wraps ``nn.Linear`` and
``nn.Conv1d`` layers alike, and :class:`~speechbrain.nnet.adapters.HoulsbyAdapterLinear` (Houlsby et al.,
"Parameter-Efficient Transfer Learning for NLP", ICML 2019), inserted with its
:class:`~speechbrain.nnet.adapters.AdaptedModel`. :class:`AdaptedEncoder` adds what transfer learning with this
project's encoders needs: default targets for the hub encoders and :class:`~speechbrain_xfer.encoders.ConvEncoder`,
the encoder interface (``forward(x, lengths)``, ``output_dim``, ``layers()``) so that TransferBrain's schedules and
regularizers work unchanged, adapters that start as the identity, and checkpoints that hold the adapters whether
or not a schedule has frozen them.
"""

import copy
from fnmatch import fnmatch

import torch
from speechbrain.nnet.activations import Swish
from speechbrain.nnet.adapters import AdaptedModel, HoulsbyAdapterLinear, LoRA
from speechbrain.utils import checkpoints
from torch import nn

# Module-name patterns (fnmatch, as in SpeechBrain's AdaptedModel) of the layers adapted by default.
ATTENTION_TARGETS = (
    "*.layers.*.attention.[qkv]_proj",  # wav2vec 2.0, HuBERT
    "*.layers.*.attention.out_proj",
    "*.layers.*.self_attn.[qkv]_proj",  # Whisper encoder
    "*.layers.*.self_attn.out_proj",
)
FEED_FORWARD_TARGETS = (
    "*.layers.*.feed_forward.intermediate_dense",  # wav2vec 2.0, HuBERT, WavLM
    "*.layers.*.feed_forward.output_dense",
    "*.layers.*.fc[12]",  # Whisper encoder
)
CONV_TARGETS = ("blocks.*.conv",)  # ConvEncoder
DEFAULT_TARGETS = ATTENTION_TARGETS + FEED_FORWARD_TARGETS + CONV_TARGETS

# Attention modules that hand their projections' weights to a fused kernel instead of calling the projections, so
# an adapter around one would never run: torch's MultiheadAttention, and WavLM's (F.multi_head_attention_forward).
FUSED_ATTENTION = ("MultiheadAttention", "WavLMAttention")
CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class HoulsbyAdapter(HoulsbyAdapterLinear):
    """SpeechBrain's bottleneck adapter, starting as the identity and freezing the layer it wraps.

    ``y = W x + b + U act(D (W x + b))``, with the up projection ``U`` initialised to zero (Houlsby et al. start
    near the identity so that fine-tuning starts from the pretrained function). SpeechBrain's class initialises
    ``U`` randomly, so inserting it changes the pretrained model's output, and sets ``requires_grad`` as a plain
    attribute of the wrapped layer, which leaves its weights trainable.

    Arguments
    ---------
    target_linear : torch.nn.Linear
        The pretrained layer to wrap.
    projection_size : int
        Bottleneck size.
    activation : type
        Activation class between the projections.
    bias : bool
        Whether the projections have biases.

    Example
    -------
    >>> layer = nn.Linear(16, 16)
    >>> adapter = HoulsbyAdapter(layer, projection_size=4)
    >>> x = torch.randn(2, 5, 16)
    >>> torch.equal(adapter(x), layer(x)), layer.weight.requires_grad
    (True, False)
    """

    def __init__(self, target_linear, projection_size=64, activation=Swish, bias=True):
        super().__init__(target_linear, projection_size, activation=activation, bias=bias)
        target_linear.requires_grad_(False)
        nn.init.zeros_(self.adapter_up_proj.weight)


ADAPTERS = {"lora": LoRA, "houlsby": HoulsbyAdapter}


@checkpoints.register_checkpoint_hooks
class AdaptedEncoder(AdaptedModel):
    """A pretrained encoder with LoRA or bottleneck adapters in its layers; only the adapters train.

    Every parameter of ``encoder`` is frozen (except those named in ``unfrozen``), and each layer named by
    ``targets`` is replaced in place by an adapter around it. The adapters start as the identity (zero up
    projection), so the adapted encoder computes exactly what the pretrained one did. It keeps the encoder
    interface, so TransferBrain's schedules and regularizers work unchanged: a layer schedule freezes and unfreezes
    the adapters of a layer but never the pretrained weights (``LayerSchedule`` pins what was frozen before its
    first step), and L2-SP pulls the adapters towards their initial values.

    Batch-norm statistics and other buffers of the encoder still update in training mode; only parameters are
    frozen. Checkpoints (SpeechBrain's ``Checkpointer``) hold everything but the frozen pretrained weights, which
    come from the encoder's own source; the encoder's checkpoint from before adaptation (e.g. with
    :func:`~speechbrain_xfer.encoders.load_speechbrain_modules`) loads too, with its original parameter names.

    Arguments
    ---------
    encoder : torch.nn.Module
        The pretrained encoder, e.g. :class:`~speechbrain_xfer.encoders.HFEncoder` (built with ``freeze=False``:
        the adapters freeze the weights themselves) or :class:`~speechbrain_xfer.encoders.ConvEncoder`.
    kind : str
        ``"lora"`` (``nn.Linear`` and ``nn.Conv1d`` layers) or ``"houlsby"`` (``nn.Linear`` layers only).
    targets : sequence of str, optional
        Names of the layers to adapt, as fnmatch patterns over ``encoder.named_modules()``
        (e.g. ``"*.layers.*.attention.[qv]_proj"``, ``"blocks.*.conv"``). Defaults to :data:`DEFAULT_TARGETS`:
        attention and feed-forward projections of wav2vec 2.0, HuBERT and the Whisper encoder, the feed-forward
        projections of WavLM (its attention projections feed a fused kernel and cannot be adapted), and the
        convolutions of ConvEncoder.
    rank : int
        LoRA rank.
    alpha : float
        LoRA scaling numerator: the low-rank update is scaled by ``alpha / rank``.
    projection_size : int
        Bottleneck size of the Houlsby adapters.
    unfrozen : sequence of str
        Parameter names (fnmatch patterns over ``encoder.named_parameters()``) that stay trainable, e.g. the new
        ``layer_weights`` of an ``HFEncoder(layer_sum=True)``.

    Raises
    ------
    ValueError
        If ``kind`` is unknown, ``encoder`` was built frozen, no layer matches ``targets``, or a matching layer
        cannot take the adapter (its type, or a fused attention that would bypass it).

    Example
    -------
    >>> from speechbrain_xfer.encoders import ConvEncoder
    >>> _ = torch.manual_seed(0)
    >>> conv = ConvEncoder(40, channels=(32, 32), strides=(1, 2)).eval()
    >>> feats = torch.randn(2, 100, 40)
    >>> before = conv(feats)
    >>> encoder = AdaptedEncoder(conv, kind="lora", rank=4)
    >>> encoder.adapted_layers
    ['blocks.0.conv', 'blocks.1.conv']
    >>> torch.equal(encoder(feats), before), encoder.output_dim, len(encoder.layers())
    (True, 32, 2)
    >>> parameter_summary(encoder)
    'trainable parameters: 1,696 of 13,408 (12.65 %)'
    """

    def __init__(
        self,
        encoder,
        kind="lora",
        targets=None,
        rank=8,
        alpha=1.0,
        projection_size=64,
        unfrozen=("layer_weights",),
    ):
        if kind not in ADAPTERS:
            raise ValueError(f"unknown adapter kind {kind!r}: use one of {sorted(ADAPTERS)}")
        if getattr(encoder, "freeze", False) is True:
            raise ValueError(
                f"the {type(encoder).__name__} to adapt was built with freeze=True, so it runs without gradient and "
                "its adapters could not learn: build it with freeze=False (the adapters freeze its weights)"
            )
        layers = adaptable_layers(encoder, kind, targets)
        pretrained = {id(p) for p in encoder.parameters()}
        kwargs = {"rank": rank, "alpha": alpha} if kind == "lora" else {"projection_size": projection_size}
        super().__init__(encoder, ADAPTERS[kind], target_layers=layers, adapter_kwargs=kwargs)
        for name, param in encoder.named_parameters():
            if any(fnmatch(name, pattern) for pattern in unfrozen):
                param.requires_grad_(True)
        self.kind = kind
        self.adapted_layers = layers
        named = dict(self.named_parameters())
        self._frozen_names = frozenset(n for n, p in named.items() if id(p) in pretrained and not p.requires_grad)
        self._adapter_names = frozenset(n for n, p in named.items() if id(p) not in pretrained)

    def insert_adapters(self):
        """Replaces the target layers by adapters; see ``AdaptedModel.insert_adapters``."""
        super().insert_adapters()
        for name in self.replace_layers:
            self.adapted_model.get_submodule(name).register_load_state_dict_pre_hook(_accept_unadapted_names)

    @property
    def output_dim(self):
        """Size of the last dimension of the output."""
        return self.adapted_model.output_dim

    def layers(self):
        """The encoder's layers bottom to top, now holding their adapters; see the encoder's ``layers()``."""
        if hasattr(self.adapted_model, "layers"):
            return list(self.adapted_model.layers())
        return [self.adapted_model]

    def forward(self, x, lengths=None):
        """Runs the adapted encoder on ``x`` with relative ``lengths``, as the encoder itself does."""
        return self.adapted_model(x, lengths)

    def merged(self):
        """A copy of the encoder with each LoRA update folded into the weights it adapts: a plain encoder.

        LoRA computes ``W x + s U D x``, which is ``(W + s U D) x`` (for a convolution, ``D`` has the layer's
        kernel and ``U`` is pointwise, so the sum is again a convolution of that kernel), so the merged encoder
        computes what the adapted one does, with neither the adapters' parameters nor their extra matrix
        products. Bottleneck adapters have a nonlinearity and cannot be merged.

        Returns
        -------
        torch.nn.Module
            A deep copy of the wrapped encoder, in the adapted encoder's mode, that this one's later training
            does not change.

        Example
        -------
        >>> _ = torch.manual_seed(0)
        >>> encoder = AdaptedEncoder(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)), targets=["0"])
        >>> _ = torch.nn.init.normal_(encoder.adapted_model[0].adapter_up_proj.weight)
        >>> x = torch.randn(3, 4)
        >>> plain = encoder.merged()
        >>> type(plain[0]).__name__, torch.allclose(plain(x), encoder.adapted_model(x), atol=1e-6)
        ('Linear', True)
        """
        if self.kind != "lora":
            raise ValueError(
                f"{self.kind} adapters have a nonlinearity inside and cannot be merged into the weights; only LoRA can"
            )
        model = copy.deepcopy(self.adapted_model)
        for name in self.adapted_layers:
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            lora = getattr(parent, child)
            base = lora.pretrained_module
            up, down = lora.adapter_up_proj.weight, lora.adapter_down_proj.weight
            with torch.no_grad():
                # (out, rank) x (rank, in, *kernel): the low-rank update as a weight of the layer's shape.
                update = torch.tensordot(up.reshape(up.shape[0], up.shape[1]), down, dims=1)
                base.weight += lora.scaling * update.to(base.weight.dtype)
            setattr(parent, child, base)
        return model

    @checkpoints.mark_as_saver
    def saver(self, path):
        """Saves everything but the frozen pretrained weights.

        SpeechBrain's ``AdaptedModel`` saves only what requires grad at save time, which loses adapters that a
        layer schedule has frozen for the moment and the batch-norm statistics updated in training.
        """
        state = self.state_dict()
        torch.save({name: value for name, value in state.items() if name not in self._frozen_names}, path)

    @checkpoints.mark_as_loader
    def loader(self, path, end_of_epoch):
        """Loads a checkpoint of this adapted encoder, or of the encoder before adaptation.

        Raises
        ------
        ValueError
            If the checkpoint holds weights this encoder does not have, or lacks some that it must provide.
        """
        del end_of_epoch
        state = torch.load(path, map_location="cpu", weights_only=True)
        own = any(name.startswith("adapted_model.") for name in state)
        if not own:
            # The encoder's own checkpoint (e.g. a pretrained ConvEncoder); its layers' names are translated by
            # _accept_unadapted_names.
            state = {f"adapted_model.{name}": value for name, value in state.items()}
        result = self.load_state_dict(state, strict=False)
        # Our checkpoints lack the frozen pretrained weights; the encoder's own lacks the adapters.
        missing = set(result.missing_keys) - (self._frozen_names if own else self._adapter_names)
        if result.unexpected_keys or missing:
            raise ValueError(
                f"checkpoint '{path}' does not fit {type(self.adapted_model).__name__} with {self.kind} adapters on "
                f"{len(self.adapted_layers)} layers: unexpected {sorted(result.unexpected_keys)[:5]}, missing "
                f"{sorted(missing)[:5]}; was it saved from another model or with other adapter targets?"
            )


def add_adapters(
    encoder, kind="lora", targets=None, rank=8, alpha=1.0, projection_size=64, unfrozen=("layer_weights",)
):
    """Returns ``encoder`` with adapters in its layers, only the adapters trainable; see :class:`AdaptedEncoder`.

    Example
    -------
    >>> from speechbrain_xfer.encoders import ConvEncoder
    >>> encoder = add_adapters(ConvEncoder(40, channels=(16,), strides=(1,)), targets=["blocks.0.conv"], rank=2)
    >>> sorted(name for name, p in encoder.named_parameters() if p.requires_grad)
    ['adapted_model.blocks.0.conv.adapter_down_proj.weight', 'adapted_model.blocks.0.conv.adapter_up_proj.weight']
    """
    return AdaptedEncoder(encoder, kind, targets, rank, alpha, projection_size, unfrozen)


def adaptable_layers(encoder, kind="lora", targets=None):
    """Names of the layers of ``encoder`` that ``targets`` select for adapters of ``kind``.

    Layers inside a fused attention are skipped when ``targets`` is the default, and rejected when named.

    Example
    -------
    >>> model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> adaptable_layers(model, "houlsby", targets=["[02]"])
    ['0', '2']
    """
    default = targets is None
    patterns = DEFAULT_TARGETS if default else [targets] if isinstance(targets, str) else list(targets)
    supported = (nn.Linear, *CONVS) if kind == "lora" else (nn.Linear,)
    where = f"{type(encoder).__name__} ({kind} adapters)"
    names = []
    for name, module in encoder.named_modules():
        if not name or not any(fnmatch(name, pattern) for pattern in patterns):
            continue
        parent = encoder.get_submodule(name.rpartition(".")[0])
        if type(parent).__name__ in FUSED_ATTENTION:
            if default:
                continue
            raise ValueError(
                f"layer '{name}' of {where} belongs to a {type(parent).__name__}, which passes its weights to a "
                "fused kernel and would bypass an adapter: target other layers, e.g. the feed-forward ones"
            )
        if not isinstance(module, supported) or getattr(module, "groups", 1) != 1:
            raise ValueError(
                f"layer '{name}' of {where} is a {type(module).__name__}; {kind} adapters take "
                f"{' or '.join(cls.__name__ for cls in supported)} layers (convolutions with groups=1): "
                "narrow the targets"
            )
        names.append(name)
    if not names:
        candidates = [n for n, m in encoder.named_modules() if isinstance(m, supported)]
        raise ValueError(
            f"no layer of {where} matches targets {patterns}; its {' / '.join(c.__name__ for c in supported)} layers "
            f"are named like {candidates[:6]}{' ...' if len(candidates) > 6 else ''}"
        )
    return names


def parameter_counts(module):
    """Numbers of trainable and of all parameter elements of ``module`` (shared parameters count once).

    Example
    -------
    >>> layer = nn.Linear(10, 10)
    >>> _ = layer.bias.requires_grad_(False)
    >>> parameter_counts(layer)
    (100, 110)
    """
    params = list(module.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def parameter_summary(module):
    """One line for the log: how many of the parameters of ``module`` train.

    Example
    -------
    >>> parameter_summary(nn.Linear(1000, 1000))
    'trainable parameters: 1,001,000 of 1,001,000 (100.00 %)'
    """
    trainable, total = parameter_counts(module)
    share = 100 * trainable / total if total else 0.0
    return f"trainable parameters: {trainable:,} of {total:,} ({share:.2f} %)"


def _accept_unadapted_names(adapter, state_dict, prefix, *args):
    """Load-state-dict pre-hook of an adapter: takes the wrapped layer's weights under their old names.

    Once adapted, ``blocks.0.conv.weight`` lives at ``blocks.0.conv.pretrained_module.weight``; checkpoints saved
    before adaptation (the pretrained encoder's) still use the old name.
    """
    wrapped = "pretrained_module" if isinstance(adapter, LoRA) else "pretrained_linear"
    for key in [k for k in state_dict if k.startswith(prefix) and "." not in k[len(prefix) :]]:
        state_dict[f"{prefix}{wrapped}.{key[len(prefix) :]}"] = state_dict.pop(key)
