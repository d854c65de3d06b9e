"""Running averages of the loss terms on SpeechBrain's training progress bar."""

from tqdm import tqdm


def describe_bars(text, colour):
    """Writes ``text`` as the description of every live progress bar of ``colour``.

    SpeechBrain rewrites the training bar's postfix with the total loss after
    every batch, so the terms go in its description. It makes its bars in
    ``fit`` and keeps no reference to them; their colour (``Brain.tqdm_barcolor``)
    tells the training bar from the others.

    Example
    -------
    >>> with tqdm(total=1, colour="GREEN", disable=False) as bar:
    ...     describe_bars("task_loss=0.5", "GREEN")
    ...     bar.desc
    'task_loss=0.5'
    """
    for bar in list(tqdm._instances):
        if not bar.disable and getattr(bar, "colour", None) == colour:
            bar.set_description_str(text, refresh=False)
