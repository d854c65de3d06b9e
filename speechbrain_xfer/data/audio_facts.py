"""What the recipes need to know of each audio file (rate, channels, length, finite samples), read once and cached."""

import json
import logging
import os
import tempfile

import numpy as np
import soundfile as sf

logger = logging.getLogger(__name__)

_CACHE_VERSION = 1
_BLOCK = 1 << 18  # samples read at a time when looking for NaN/inf: bounded memory for long recordings


def read_audio_facts(path):
    """What the recipes need to know about an audio file, or ``{"error": ...}`` when it cannot be used."""
    if not os.path.isfile(path):
        return {"error": "missing file"}
    if os.path.getsize(path) == 0:
        return {"error": "empty file (0 bytes)"}
    try:
        info = sf.info(path)
        # Every sample is read: only then does a corrupt stream, a truncated file or a NaN show.
        finite = all(np.isfinite(block).all() for block in sf.blocks(path, blocksize=_BLOCK, dtype="float32"))
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        return {"error": f"unreadable audio ({error})"}
    return {"rate": info.samplerate, "channels": info.channels, "frames": info.frames, "finite": bool(finite)}


class AudioFactsCache:
    """:func:`read_audio_facts` by path, kept while a file's size and modification time stay the same.

    Arguments
    ---------
    path : str or None
        The JSON file the facts are kept in between runs; None keeps them in memory only.
    """

    def __init__(self, path):
        self.path, self.entries, self.changed = path, {}, False
        if path and os.path.isfile(path):
            try:
                with open(path) as f:
                    saved = json.load(f)
                if saved.get("version") == _CACHE_VERSION:
                    self.entries = saved["files"]
            except (OSError, ValueError, KeyError, AttributeError):
                logger.info("ignoring the unreadable audio check cache %s; it will be rebuilt", path)

    def facts(self, wav):
        """:func:`read_audio_facts` of ``wav``, read again only when the file changed."""
        try:
            stat = os.stat(wav)
        except OSError:
            return read_audio_facts(wav)  # missing: not cached, so that a file put there later is read
        key, stamp = os.path.abspath(wav), [stat.st_size, stat.st_mtime_ns]
        entry = self.entries.get(key)
        if entry is None or entry[0] != stamp:
            entry = self.entries[key] = [stamp, read_audio_facts(wav)]
            self.changed = True
        return entry[1]

    def save(self):
        """Writes the cache back, if anything changed (atomically: runs on one corpus share it)."""
        if not (self.path and self.changed):
            return
        folder = os.path.dirname(os.path.abspath(self.path))
        try:
            # Written beside and renamed: runs started together on one corpus never read half a file.
            with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".partial", delete=False) as f:
                json.dump({"version": _CACHE_VERSION, "files": self.entries}, f)
            os.replace(f.name, self.path)
        except OSError as error:
            logger.info(
                "could not save the audio check cache %s (%s); the next run reads the audio again", self.path, error
            )
