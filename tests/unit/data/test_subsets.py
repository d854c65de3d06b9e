import collections

from speechbrain_xfer.data.subsets import kshot_ids


def test_kshot_subsets_are_nested_stratified_and_seeded():
    rows = [{"ID": f"u{i}", "label": f"c{i % 4}"} for i in range(200)]
    subsets = kshot_ids(rows, "label", (1, 3, 10, 30), seed=3)
    for small, large in ((1, 3), (3, 10), (10, 30)):
        assert set(subsets[small]) < set(subsets[large])
    labels = {row["ID"]: row["label"] for row in rows}
    for k, ids in subsets.items():
        assert collections.Counter(labels[i] for i in ids) == {f"c{c}": k for c in range(4)}
    assert kshot_ids(rows, "label", (3,), seed=3)[3] == subsets[3]
    assert kshot_ids(rows, "label", (3,), seed=4)[3] != subsets[3]


def test_small_classes_give_all_they_have():
    rows = [{"ID": "a1", "label": "a"}, {"ID": "b1", "label": "b"}, {"ID": "b2", "label": "b"}]
    assert sorted(kshot_ids(rows, "label", (3,), seed=0)[3]) == ["a1", "b1", "b2"]
