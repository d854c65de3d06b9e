"""A SpeechBrain ``Pretrainer`` that reads some loadables from files of their own names (``model.safetensors``)."""

from speechbrain.utils.fetching import FetchSource
from speechbrain.utils.parameter_transfer import Pretrainer


class FilePretrainer(Pretrainer):
    """SpeechBrain's ``Pretrainer``, with ``files``: loadables read from ``<source>/<file>`` instead of
    ``<source>/<name>.ckpt``.

    An export of a hub-format encoder keeps its weights in ``model.safetensors``, where ``transformers`` and
    ``HFEncoder`` read them too, rather than a second copy in a ``.ckpt`` file. The inference classes hand the
    Pretrainer their source (a folder or a hub id) as ``default_source``; ``files`` are fetched from there like
    every other loadable (and, like them, collected as ``<name>.ckpt`` in the save folder).

    Arguments
    ---------
    files : dict, optional
        ``{loadable name: file name in the source}``.
    **kwargs
        SpeechBrain ``Pretrainer`` arguments (``loadables``, ``paths``, ``custom_hooks``, ...).

    Example
    -------
    >>> import torch
    >>> pretrainer = FilePretrainer(loadables={"model": torch.nn.Linear(1, 1)}, files={"model": "model.safetensors"})
    >>> pretrainer.files
    {'model': 'model.safetensors'}
    """

    def __init__(self, files=None, **kwargs):
        super().__init__(**kwargs)
        self.files = dict(files or {})

    def collect_files(self, default_source=None, *args, **kwargs):
        """Fetches every loadable's file; see SpeechBrain's ``Pretrainer.collect_files``."""
        if default_source is not None:
            for name, filename in self.files.items():
                self.paths.setdefault(name, _join(default_source, filename))
        return super().collect_files(default_source, *args, **kwargs)


def _join(source, filename):
    """``<source>/<filename>`` as SpeechBrain's ``split_path`` takes it apart again (a FetchSource stays one)."""
    if isinstance(source, FetchSource):
        return FetchSource(source.FetchFrom, _join(source.path, filename))
    return f"{str(source).rstrip('/')}/{filename}"
