"""Synthetic speakers: an espeak-ng voice, a variant, and prosody settings.

A speaker is ``base+variant`` with its own rate, pitch and pitch range.
Half the bases are English accents; the other half are voices of other
languages reading English, which gives foreign-accented speech.
"""

from dataclasses import dataclass

from speechbrain_xfer.synthspeech.texts import sample_rng

ENGLISH_BASES = (
    "en",
    "en-us",
    "en-029",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-us-nyc",
)
FOREIGN_BASES = (
    "de",
    "nl",
    "af",
    "fr",
    "es",
    "it",
    "pt",
    "pl",
    "sv",
    "da",
    "cs",
    "ro",
    "hu",
    "fi",
)
# "Demonic" and "rob" are left out on purpose: they crash espeak-ng
# (a segfault with a wide pitch range, a floating-point exception).
VARIANTS = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "klatt",
    "klatt2",
    "klatt3",
    "Alex",
    "Andy",
    "Annie",
    "belinda",
    "benjamin",
    "david",
    "edward",
    "grandma",
    "grandpa",
    "john",
    "linda",
    "max",
    "michel",
    "norbert",
    "paul",
    "quincy",
    "robert",
    "steph",
    "travis",
    "victor",
    "zac",
)
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker."""

    base: str
    variant: str
    rate: int
    pitch: int
    range: int  # noqa: A003

    @property
    def voice(self):
        """The espeak-ng voice name, e.g. ``de+m3``."""
        return f"{self.base}+{self.variant}"

    @property
    def id(self):  # noqa: A003
        """A unique, readable speaker id."""
        return f"{self.voice}-r{self.rate}-p{self.pitch}-g{self.range}"


def make_speakers(num_speakers, seed):
    """Draws ``num_speakers`` distinct speakers.

    Example
    -------
    >>> speakers = make_speakers(40, seed=1)
    >>> len({s.id for s in speakers})
    40
    """
    rng = sample_rng(seed, "speakers")
    speakers, ids = [], set()
    while len(speakers) < num_speakers:
        bases = ENGLISH_BASES if rng.random() < 0.5 else FOREIGN_BASES
        speaker = Speaker(
            base=str(rng.choice(bases)),
            variant=str(rng.choice(VARIANTS)),
            rate=int(rng.integers(130, 201)),
            pitch=int(rng.integers(25, 76)),
            range=int(rng.integers(25, 86)),
        )
        if speaker.id not in ids:
            ids.add(speaker.id)
            speakers.append(speaker)
    return speakers


def split_speakers(speakers, fractions=(0.7, 0.1, 0.2)):
    """Splits speakers into disjoint train / valid / test groups.

    Every group gets at least one speaker.

    Example
    -------
    >>> groups = split_speakers(make_speakers(40, seed=1))
    >>> [len(groups[s]) for s in SPLITS]
    [28, 4, 8]
    """
    if len(speakers) < len(SPLITS):
        raise ValueError(f"need at least {len(SPLITS)} speakers, got {len(speakers)}")
    n_valid = max(1, round(fractions[1] * len(speakers)))
    n_test = max(1, round(fractions[2] * len(speakers)))
    n_train = len(speakers) - n_valid - n_test
    return {
        "train": speakers[:n_train],
        "valid": speakers[n_train : n_train + n_valid],
        "test": speakers[n_train + n_valid :],
    }
