"""CTC tokenizers for transcripts: characters (``CharTokenizer``) and SentencePiece subwords.

Both put the CTC blank at :data:`BLANK_INDEX` and give ``encode(text)``,
``decode(ids)``, ``blank_index``, ``vocabulary()`` and ``len()``.
"""

import logging
import os

from speechbrain.dataio.encoder import CTCTextEncoder
from speechbrain.tokenizers.SentencePiece import SentencePiece

from speechbrain_xfer.pretrained.loading import load_speechbrain_modules

logger = logging.getLogger(__name__)

BLANK_INDEX = 0
"""Where both tokenizers put the CTC blank."""

TRANSCRIPT = "transcript"
"""The manifest column holding each utterance's text."""


class CharTokenizer:
    """Characters as CTC tokens, through SpeechBrain's ``CTCTextEncoder``.

    The blank is index 0; characters never seen when the set was built
    encode to ``<unk>``, so a new symbol in a test transcript costs an error
    instead of a crash.

    Arguments
    ---------
    encoder : speechbrain.dataio.encoder.CTCTextEncoder
        An encoder with its blank label set.

    Example
    -------
    >>> tok = CharTokenizer.load_or_create(getfixture("tmp_path") / "chars.txt", ["abc", "cab a"])
    >>> len(tok), tok.blank_index, tok.encode("ab c!")
    (6, 0, [4, 1, 3, 2, 5])
    >>> tok.decode(tok.encode("cab a"))
    'cab a'
    >>> tok.vocabulary()  # the blank took index 0 and moved 'a' to the end
    ['<blank>', 'b', 'c', ' ', 'a', '<unk>']
    """

    def __init__(self, encoder):
        self.encoder = encoder
        self.blank_index = encoder.get_blank_index()

    @classmethod
    def load_or_create(cls, path, texts, alphabet=""):
        """Loads the character set saved at ``path``, or builds it from ``texts`` and saves it there.

        Every character of ``alphabet`` is in the set even when no text has
        it, so the size of the CTC head does not depend on the training set.
        """
        encoder = CTCTextEncoder()
        encoder.load_or_create(
            str(path),
            from_iterables=[[*texts, alphabet]],
            sequence_input=True,
            special_labels={"blank_label": BLANK_INDEX, "unk_label": "<unk>"},
        )
        # The CTC head is sized from len(tokenizer), so there is no other count to check against.
        encoder.ignore_len()
        return cls(encoder)

    @classmethod
    def from_source(cls, source, path, texts=()):
        """The character set of a pretrained CTC model, copied to ``path`` (and reloaded from there on resume).

        A pretrained CTC head means something only with the characters it
        was trained on, in their order: ``<source>/tokenizer.ckpt``, the file
        that SpeechBrain's ``EncoderASR`` folders (and the SynthSpeech
        pretraining's export) hold. ``source`` is a folder or a hub id.
        Characters of ``texts`` that the set lacks encode to ``<unk>``; they
        are logged once.

        Example
        -------
        >>> folder = getfixture("tmp_path")
        >>> source = CharTokenizer.load_or_create(folder / "tokenizer.ckpt", ["ab c"])
        >>> tok = CharTokenizer.from_source(folder, folder / "save" / "chars.txt", ["cab"])
        >>> tok.vocabulary() == source.vocabulary(), tok.encode("cab") == source.encode("cab")
        (True, True)
        """
        if not os.path.isfile(path):
            encoder = CTCTextEncoder()
            load_speechbrain_modules({"tokenizer": encoder}, source)
            os.makedirs(os.path.dirname(os.fspath(path)), exist_ok=True)
            encoder.save(str(path))
        tokenizer = cls.load_or_create(path, [])
        unknown = sorted({c for text in texts for c in text} - set(tokenizer.vocabulary()))
        if unknown:
            logger.warning(
                f"characters {unknown} of the transcripts are not in the character set of {source} "
                f"(the pretrained CTC head's): they become <unk>"
            )
        return tokenizer

    def encode(self, text):
        """Token ids of ``text``, one per character."""
        return self.encoder.encode_sequence(text)

    def decode(self, ids):
        """The text of a collapsed, blank-free id sequence."""
        return "".join(self.encoder.decode_ndim(list(ids)))

    def vocabulary(self):
        """Every token's label, by index (what a beam searcher needs)."""
        return [self.encoder.ind2lab[i] for i in range(len(self))]

    def __len__(self):
        return len(self.encoder)


class SentencePieceTokenizer:
    """Subword CTC tokens, through SpeechBrain's SentencePiece wrapper.

    SpeechBrain's CTC recipes share id 0 between the blank and ``<unk>``, so
    an unknown piece in a target would be read as a blank. Here the blank is
    SentencePiece's padding piece (id 0), which encoding never emits, and
    ``<unk>`` is id 1. A model already in ``model_dir`` (same vocabulary
    size and type) is loaded instead of trained again.

    Arguments
    ---------
    model_dir : str
        Where the model is trained and saved, or loaded from.
    vocab_size : int
        Number of pieces, blank and ``<unk>`` included.
    annotation_train : str
        CSV manifest whose ``transcript`` column trains the model.
    model_type : str
        ``"unigram"``, ``"bpe"`` or ``"char"``.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> with open(folder / "train.csv", "w") as f:
    ...     _ = f.write("ID,transcript\\n1,call mom\\n2,call dad\\n3,mom and dad\\n")
    >>> tok = SentencePieceTokenizer(str(folder / "sp"), 10, str(folder / "train.csv"))
    >>> len(tok), tok.blank_index, tok.vocabulary()[:2]
    (10, 0, ['<pad>', '<unk>'])
    >>> tok.decode(tok.encode("call dad and mom"))
    'call dad and mom'
    """

    def __init__(self, model_dir, vocab_size, annotation_train, model_type="unigram"):
        try:
            self.wrapper = SentencePiece(
                model_dir,
                vocab_size,
                annotation_train,
                TRANSCRIPT,
                model_type,
                pad_id=BLANK_INDEX,
                unk_id=1,
                bos_id=-1,
                eos_id=-1,
            )
        except RuntimeError as error:
            raise ValueError(
                f"SentencePiece could not train a {vocab_size}-piece {model_type} model on the "
                f"{TRANSCRIPT!r} column of {annotation_train}: {error}"
            ) from error
        self.processor = self.wrapper.sp
        self.blank_index = self.processor.pad_id()

    def encode(self, text):
        """Piece ids of ``text``."""
        return self.processor.encode_as_ids(text)

    def decode(self, ids):
        """The text of a collapsed, blank-free id sequence."""
        return self.processor.decode_ids([int(i) for i in ids])

    def vocabulary(self):
        """Every piece, by id (what a beam searcher needs)."""
        return [self.processor.id_to_piece(i) for i in range(len(self))]

    def __len__(self):
        return self.processor.vocab_size()
