"""Vocabularies, phrasings and sentence grammars of the SynthSpeech corpus.

Everything here is plain data plus small seeded generators, so a corpus is
fully determined by its seed.
"""

import itertools
import zlib

import numpy as np

# Speech Commands' ten core words: the target keyword task.
TARGET_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")

# Source vocabulary for pretraining; disjoint from TARGET_WORDS.
SOURCE_WORDS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "bed",
    "bird",
    "cat",
    "dog",
    "happy",
    "house",
    "marvin",
    "sheila",
    "tree",
    "wow",
    "backward",
    "forward",
    "follow",
    "learn",
    "visual",
    "apple",
    "water",
    "music",
    "paper",
    "window",
    "orange",
    "yellow",
    "purple",
    "market",
    "garden",
)

# Fluent Speech Commands' 31 (action, object, location) intents.
INTENTS = (
    [("change language", lang, "none") for lang in ("Chinese", "English", "German", "Korean", "none")]
    + [("activate", "lamp", "none"), ("activate", "music", "none")]
    + [("deactivate", "lamp", "none"), ("deactivate", "music", "none")]
    + [(act, "lights", loc) for act in ("activate", "deactivate") for loc in ("bedroom", "kitchen", "washroom", "none")]
    + [("bring", obj, "none") for obj in ("juice", "newspaper", "shoes", "socks")]
    + [
        (act, obj, loc)
        for act in ("increase", "decrease")
        for obj, loc in [
            ("heat", "bedroom"),
            ("heat", "kitchen"),
            ("heat", "washroom"),
            ("heat", "none"),
            ("volume", "none"),
        ]
    ]
)

_ON = ("turn on the {o}{l}", "switch on the {o}{l}", "{lo} {o} on", "could you turn the {o} on{l}", "{o} on{l} please")
_OFF = (
    "turn off the {o}{l}",
    "switch off the {o}{l}",
    "{lo} {o} off",
    "could you turn the {o} off{l}",
    "{o} off{l} please",
)
_UP = ("increase the {o}{l}", "turn up the {o}{l}", "{lo} {o} up", "make it louder{l}", "more {o}{l} please")
_DOWN = ("decrease the {o}{l}", "turn down the {o}{l}", "{lo} {o} down", "make it quieter{l}", "less {o}{l} please")
_BRING = ("bring me the {o}", "get me my {o}", "fetch the {o}", "i need my {o}", "go get the {o}")
_LANG = ("change the language to {o}", "switch to {o}", "use {o}", "set my language to {o}", "i want {o}")
_LANG_NONE = (
    "change the language",
    "switch language",
    "use another language",
    "change language please",
    "set a different language",
)
_PHRASES = {"activate": _ON, "deactivate": _OFF, "increase": _UP, "decrease": _DOWN, "bring": _BRING}


def intent_label(action, obj, location):
    """Returns the flat intent label, e.g. ``activate_lights_kitchen``."""
    return "_".join(part.replace(" ", "-") for part in (action, obj, location))


def intent_phrasings(action, obj, location):
    """Returns the phrasings of one intent.

    Example
    -------
    >>> intent_phrasings("activate", "lights", "kitchen")[0]
    'turn on the lights in the kitchen'
    """
    if action == "change language":
        if obj == "none":
            return list(_LANG_NONE)
        return [p.format(o=obj.lower()) for p in _LANG]
    templates = _PHRASES[action]
    if obj == "heat":
        # "louder" and "quieter" are phrasings of volume, not of heat.
        warmer = "warmer" if action == "increase" else "colder"
        templates = templates[:3] + (f"make it {warmer}{{l}}",) + templates[4:]
    loc = "" if location == "none" else f" in the {location}"
    lo = "" if location == "none" else location
    return [" ".join(t.format(o=obj, l=loc, lo=lo).split()) for t in templates]


# Neutral carrier sentences for the prosody ("emotion") task.
NEUTRAL_SENTENCES = (
    "the meeting starts at nine tomorrow",
    "i left the keys on the table",
    "the train arrives in ten minutes",
    "we painted the kitchen last week",
    "she bought three apples at the market",
    "the door is open",
    "my brother lives near the river",
    "it rained all afternoon",
    "the letter came this morning",
    "they moved the chairs outside",
    "the shop closes at six",
    "he found a coin in the garden",
    "the phone rang twice",
    "we are having soup for dinner",
    "the bus was late again",
    "i read the report yesterday",
    "the car is parked behind the house",
    "the children walked to school",
    "the box is on the top shelf",
    "our neighbours have a new dog",
    "the lights went out at midnight",
    "she called her mother on sunday",
    "the window faces the street",
    "he wrote his name on the paper",
    "the coffee is still warm",
    "we will see them next week",
)

# Prosody of each class, relative to the speaker's own settings:
# (rate factor, pitch offset, range factor, volume).
PROSODY = {
    "neutral": (1.00, 0, 1.00, 100),
    "happy": (1.12, 14, 1.70, 115),
    "sad": (0.78, -12, 0.35, 70),
    "angry": (1.20, 4, 1.30, 170),
}
EMOTIONS = tuple(PROSODY)

# A broad-vocabulary grammar for the ASR source corpus: everyday English,
# as a read-speech corpus such as LibriSpeech covers it, household words
# included. The keyword task's words (TARGET_WORDS) stay out of it, but for
# "on" in "on monday"; no intent phrasing is a sentence of it.
_ADJ = (
    "old young small large heavy light dark bright quiet loud warm cold "
    "green red blue brown white black empty full clean dirty strong weak "
    "tall short quick slow happy tired angry gentle wooden golden silver "
    "narrow wide deep simple strange famous careful busy lazy chinese "
    "english german korean different new"
).split()
_NOUN = (
    "farmer teacher doctor child woman man soldier sailor baker painter "
    "driver student king queen horse dog cat bird fish goat basket river "
    "bridge mountain forest village city table chair window door letter "
    "book bottle box coat hat boat train road garden field stone tree "
    "flower apple bread cheese candle lamp clock mirror ladder bucket rope "
    "wagon kettle pocket island castle tower market storm cloud kitchen "
    "bedroom washroom language music radio heat volume juice newspaper "
    "shoes socks lights heater blanket"
).split()
_VERB = (
    "carried found lost painted opened closed pushed pulled cleaned "
    "followed watched built broke fixed sold bought dropped lifted moved "
    "counted hid washed caught threw kicked chased visited crossed filled "
    "emptied covered changed switched turned brought fetched wanted "
    "needed used increased decreased"
).split()
_INTRANS = (
    "slept laughed waited shouted smiled arrived vanished danced sang trembled fell rested listened whispered wandered"
).split()
_ADV = "quickly slowly quietly loudly carefully suddenly happily sadly early late".split()
_PREP = "across near behind beside under over into through along past".split()
_TIME = (
    "this morning",
    "last night",
    "on monday",
    "at noon",
    "in the evening",
    "every day",
    "before dinner",
    "after the storm",
    "in winter",
    "yesterday",
)
_NAMES = "anna peter maria john lucy david emma oliver sarah thomas".split()
# Requests and comparisons, in the first and second person.
_REQUEST_VERB = "bring get fetch change switch use set make turn find open close carry wash".split()
_COMPARATIVE = "louder quieter warmer colder darker brighter bigger smaller".split()


def _np(rng):
    det = rng.choice(("the", "a", "the", "every", "one", "that"))
    if rng.random() < 0.6:
        return f"{det} {rng.choice(_ADJ)} {rng.choice(_NOUN)}"
    return f"{det} {rng.choice(_NOUN)}"


def _request(rng):
    start = rng.choice(("could you", "please", "i want you to", "you need to", "would you"))
    noun = rng.choice(_NOUN)
    what = rng.choice(("it", f"me the {noun}", f"my {noun}", f"the {noun}", f"me a {noun}"))
    parts = [start, rng.choice(_REQUEST_VERB), what]
    if rng.random() < 0.5:
        parts += [rng.choice(_PREP), _np(rng)]
    return " ".join(parts)


def _comparison(rng):
    subject = rng.choice(("it", "the room", "the music", "the night", _np(rng)))
    verb = rng.choice(("was", "grew", "seemed", "got", "is", "will be"))
    degree = rng.choice(("", "much ", "a little ", "even "))
    if rng.random() < 0.3:
        return f"{subject} {verb} {degree}{rng.choice(('more', 'less'))} {rng.choice(_ADJ)} {rng.choice(_TIME)}"
    return f"{subject} {verb} {degree}{rng.choice(_COMPARATIVE)} {rng.choice(_TIME)}"


def source_sentence(rng):
    """Draws one sentence of the broad-vocabulary grammar."""
    form = rng.integers(6)
    if form == 4:
        return _request(rng)
    if form == 5:
        return _comparison(rng)
    subject = rng.choice(_NAMES) if rng.random() < 0.25 else _np(rng)
    if form == 0:
        parts = [subject, rng.choice(_VERB), _np(rng), rng.choice(_PREP), _np(rng)]
    elif form == 1:
        parts = [subject, rng.choice(_INTRANS), rng.choice(_ADV), rng.choice(_TIME)]
    elif form == 2:
        parts = [subject, rng.choice(_VERB), _np(rng), rng.choice(_TIME)]
    else:
        parts = [subject, rng.choice(_INTRANS), rng.choice(_PREP), _np(rng)]
    return " ".join(parts)


_NUMBERS = "one two three four five six seven eight nine ten twenty thirty".split()
_CITIES = "paris london berlin tokyo madrid rome boston sydney cairo lima".split()
_DAYS = "today tomorrow tonight monday friday saturday sunday".split()
_GENRES = "jazz rock classical country pop folk".split()
_TASKS = ("water the plants", "call the doctor", "buy milk", "pay the rent", "feed the cat", "book a table")
_TARGET_TEMPLATES = (
    lambda r: f"set a timer for {r.choice(_NUMBERS)} minutes",
    lambda r: f"what is the weather in {r.choice(_CITIES)} {r.choice(_DAYS)}",
    lambda r: f"remind me to {r.choice(_TASKS)} at {r.choice(_NUMBERS)} o'clock",
    lambda r: f"play some {r.choice(_GENRES)} music",
    lambda r: f"call {r.choice(_NAMES)} {r.choice(_DAYS)}",
    lambda r: f"how far is {r.choice(_CITIES)} from {r.choice(_CITIES)}",
    lambda r: f"wake me up at {r.choice(_NUMBERS)} {r.choice(_DAYS)}",
)


def target_sentence(rng):
    """Draws one sentence of the target (assistant-command) domain."""
    return _TARGET_TEMPLATES[rng.integers(len(_TARGET_TEMPLATES))](rng)


def vocabulary(sentences):
    """Returns the sorted set of words used by ``sentences``."""
    return sorted(set(itertools.chain.from_iterable(s.split() for s in sentences)))


def sample_rng(*keys):
    """Returns a numpy Generator seeded by a tuple of ints and strings."""
    ints = [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys]
    return np.random.default_rng(ints)
