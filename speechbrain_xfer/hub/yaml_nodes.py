"""Copying module definitions out of a run's ``hyperparams.yaml`` into an export's.

A finished run's ``hyperparams.yaml`` (written by SpeechBrain with every
``!ref`` resolved; objects used twice become YAML anchors and aliases) holds
the definitions of the modules that were trained. An export reuses exactly
those definitions, read with ruamel's round-trip loader, which keeps the
``!new:`` tags without building anything.
"""

import io
import re

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.tag import Tag

ALLOWED_PREFIXES = ("speechbrain.", "speechbrain_xfer.", "sentencepiece.")
"""Packages whose classes an export's ``hyperparams.yaml`` may build (a user installs these)."""

_TAG = re.compile(r"!(?:new|name|apply):([\w.]+)")


def read_tree(path):
    """The YAML at ``path`` as ruamel's round-trip tree (tags kept, nothing built)."""
    with open(path) as f:
        return YAML().load(f)


def detached(node, memo=None):
    """A copy of ``node`` without comments or anchor names; objects shared inside it stay shared.

    Example
    -------
    >>> tree = YAML().load("a: &x !new:torch.nn.Linear  # a comment\\n  in_features: 2\\nb: {c: *x, d: [1, 2]}\\n")
    >>> memo = {}  # one memo for the copies that must share objects
    >>> print(dump({"b": detached(tree["b"], memo), "e": detached(tree["a"], memo)}), end="")
    b:
        c: &id001 !new:torch.nn.Linear
            in_features: 2
        d: [1, 2]
    e: *id001
    """
    memo = {} if memo is None else memo
    if id(node) in memo:
        return memo[id(node)]
    if isinstance(node, CommentedMap):
        copy = CommentedMap()
        memo[id(node)] = copy
        for key, value in node.items():
            copy[key] = detached(value, memo)
    elif isinstance(node, CommentedSeq):
        copy = CommentedSeq()
        memo[id(node)] = copy
        copy.extend(detached(value, memo) for value in node)
        if node.fa.flow_style() and not any(isinstance(value, (CommentedMap, CommentedSeq)) for value in node):
            copy.fa.set_flow_style()
    else:
        return node
    if node.tag.value is not None:
        copy.yaml_set_ctag(node.tag)
    return copy


def resolve_getattr(node, objects):
    """Replaces, in place, each ``!apply:getattr [<node>, name]`` whose node is a key of ``objects``
    (``{id(node): live object}``) with that attribute's plain value.

    A recipe's ``!ref <encoder.output_dim>`` is saved so; resolved, the export's YAML no longer builds the
    run's encoder (with its pretrained source) a second time to read one number.

    Example
    -------
    >>> tree = YAML().load("enc: &e !new:torch.nn.Linear {in_features: 2}\\nhead: {dim: !apply:getattr [*e, x]}\\n")
    >>> class Live:
    ...     x = 7
    >>> resolve_getattr(tree, {id(tree["enc"]): Live()})
    >>> tree["head"]["dim"]
    7
    """
    if isinstance(node, CommentedMap):
        items = list(node.items())
    elif isinstance(node, CommentedSeq):
        items = list(enumerate(node))
    else:
        return
    for key, value in items:
        getter = isinstance(value, CommentedSeq) and tag_of(value) == "!apply:getattr" and len(value) == 2
        if getter and id(value[0]) in objects:
            attribute = getattr(objects[id(value[0])], str(value[1]))
            if isinstance(attribute, (bool, int, float, str)):
                node[key] = attribute
                continue
        resolve_getattr(value, objects)


def tagged_map(tag, items):
    """A mapping node built with ``tag`` (e.g. ``"!new:speechbrain_xfer.lobes.ClassifierHeads"``)."""
    node = CommentedMap(items)
    node.yaml_set_ctag(Tag(suffix=tag))
    return node


def tag_of(node):
    """The tag of a node (``"!new:torch.nn.ModuleDict"``), or None."""
    return getattr(getattr(node, "tag", None), "value", None)


def dump(mapping):
    """YAML text of a mapping of nodes, block style, 4-space indents."""
    yaml = YAML()
    yaml.indent(mapping=4, sequence=4, offset=2)
    stream = io.StringIO()
    yaml.dump(CommentedMap(mapping), stream)
    return stream.getvalue()


def foreign_classes(text):
    """Classes that a YAML text builds from packages other than :data:`ALLOWED_PREFIXES`.

    Example
    -------
    >>> foreign_classes("a: !new:speechbrain_xfer.lobes.CTCHead\\nb: !new:torch.nn.Linear\\n")
    ['torch.nn.Linear']
    """
    return sorted({name for name in _TAG.findall(text) if not name.startswith(ALLOWED_PREFIXES)})
