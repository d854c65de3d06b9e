"""Errors raised when a pretrained source cannot be found or loaded."""


class PretrainedSourceError(FileNotFoundError, ValueError):
    """A pretrained source (hub id, local folder or checkpoint file) is missing or malformed.

    It is both a ``FileNotFoundError`` (the usual cause is a file that is not where it should be) and a
    ``ValueError`` (the user passed a bad ``source`` argument), so callers can catch either. The message
    names the source and says what to do about it.

    Arguments
    ---------
    message : str
        What is wrong and how to fix it.
    source : str, optional
        The hub id, folder or file that could not be used.

    Example
    -------
    >>> err = PretrainedSourceError("no config.json in '/tmp/x'", source="/tmp/x")
    >>> isinstance(err, ValueError) and isinstance(err, FileNotFoundError)
    True
    >>> err.source
    '/tmp/x'
    """

    def __init__(self, message, source=None):
        super().__init__(message)
        self.source = source

    def __str__(self):
        # OSError formats itself as "[Errno ...]" when given two arguments; we only ever give one, but keep
        # the message verbatim whatever the base class does.
        return self.args[0] if self.args else ""
