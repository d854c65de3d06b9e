from speechbrain_xfer.synthspeech import texts


def test_keyword_vocabularies_are_disjoint_and_large_enough():
    assert len(texts.SOURCE_WORDS) >= 30
    assert len(set(texts.SOURCE_WORDS)) == len(texts.SOURCE_WORDS)
    assert set(texts.TARGET_WORDS) == {"yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"}
    assert not set(texts.SOURCE_WORDS) & set(texts.TARGET_WORDS)


def test_intents_have_slots_and_several_distinct_phrasings():
    labels = {texts.intent_label(*intent) for intent in texts.INTENTS}
    assert len(labels) == len(texts.INTENTS) >= 20
    all_phrasings = []
    for intent in texts.INTENTS:
        phrasings = texts.intent_phrasings(*intent)
        assert len(set(phrasings)) >= 4, intent
        assert all("{" not in p and "  " not in p for p in phrasings), phrasings
        all_phrasings += phrasings
    # A phrasing names exactly one intent.
    assert len(set(all_phrasings)) == len(all_phrasings)
    assert "turn on the lights in the kitchen" in texts.intent_phrasings("activate", "lights", "kitchen")


def test_sentence_grammars_are_seeded_and_broad():
    first = [texts.source_sentence(texts.sample_rng(3, "asr")) for _ in range(3)]
    again = [texts.source_sentence(texts.sample_rng(3, "asr")) for _ in range(3)]
    assert first == again
    rng = texts.sample_rng(0, "vocab")
    assert len(texts.vocabulary(texts.source_sentence(rng) for _ in range(2000))) > 200
    rng = texts.sample_rng(0, "target")
    target = texts.vocabulary(texts.target_sentence(rng) for _ in range(500))
    assert "weather" in target and "timer" in target


def test_emotions_are_four_prosody_classes():
    assert texts.EMOTIONS == ("neutral", "happy", "sad", "angry")
    rates = {e: p[0] for e, p in texts.PROSODY.items()}
    assert rates["sad"] < rates["neutral"] < rates["happy"]


def test_source_grammar_covers_everyday_words_but_not_the_keywords():
    rng = texts.sample_rng(0, "coverage")
    source = set(texts.vocabulary(texts.source_sentence(rng) for _ in range(2500)))
    intent_words = set(texts.vocabulary(p for i in texts.INTENTS for p in texts.intent_phrasings(*i)))
    # A general read-speech source covers most words of the intent phrasings...
    assert len(intent_words & source) / len(intent_words) > 0.8
    assert {"kitchen", "lights", "language", "could", "please"} <= source
    # ...but the keyword task's words stay new ("on" only in "on monday").
    assert source & set(texts.TARGET_WORDS) == {"on"}
    # No intent phrasing is itself a source sentence.
    sentences = {texts.source_sentence(rng) for _ in range(5000)}
    assert not sentences & {p for i in texts.INTENTS for p in texts.intent_phrasings(*i)}
