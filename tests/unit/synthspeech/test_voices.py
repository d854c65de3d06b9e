from speechbrain_xfer.synthspeech.espeak import Espeak
from speechbrain_xfer.synthspeech.voices import (
    ENGLISH_BASES,
    FOREIGN_BASES,
    SPLITS,
    VARIANTS,
    make_speakers,
    split_speakers,
)


def test_default_pool_has_forty_distinct_accented_speakers():
    speakers = make_speakers(60, seed=1234)
    assert len({s.id for s in speakers}) == 60
    assert len({s.voice for s in speakers}) >= 40
    assert any(s.base in ENGLISH_BASES for s in speakers)
    assert any(s.base in FOREIGN_BASES for s in speakers)
    assert not {"Demonic", "rob"} & set(VARIANTS)


def test_speaker_splits_are_disjoint_and_seeded():
    groups = split_speakers(make_speakers(20, seed=5))
    ids = [{s.id for s in groups[split]} for split in SPLITS]
    assert all(ids) and not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert make_speakers(20, seed=5) == make_speakers(20, seed=5)
    assert make_speakers(20, seed=5) != make_speakers(20, seed=6)


def test_every_base_voice_speaks():
    tts = Espeak()
    for base in ENGLISH_BASES + FOREIGN_BASES:
        assert tts.synthesize("stop", voice=f"{base}+m1").size > 1000, base
