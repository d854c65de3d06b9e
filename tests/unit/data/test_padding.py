"""pad_right gives SpeechBrain's batch_pad_right outputs, value for value, and falls back to it elsewhere."""

import pytest
import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.utils.data_utils import batch_pad_right

from speechbrain_xfer.data.padding import pad_right, padded_batch


@pytest.mark.parametrize(
    "shapes", [[(5,), (3,), (7,)], [(4, 3), (2, 3), (4, 3)], [(3, 2, 2), (1, 2, 2)], [(6,), (6,)], [(2,)]]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.int64])
def test_the_same_batch_and_lengths_as_speechbrains_padding(shapes, dtype):
    generator = torch.Generator().manual_seed(0)
    tensors = [(10 * torch.randn(*shape, generator=generator)).to(dtype) for shape in shapes]
    expected, expected_lengths = batch_pad_right(tensors)
    batch, lengths = pad_right(tensors)
    assert batch.dtype == expected.dtype and torch.equal(batch, expected)
    assert lengths.dtype == expected_lengths.dtype and torch.equal(lengths, expected_lengths)


def test_other_cases_are_speechbrains_own():
    tensors = [torch.ones(2, 3), torch.ones(2, 4)]
    with pytest.raises(OSError, match="same dimensions"):
        pad_right(tensors)
    with pytest.raises(IndexError):  # scalars: SpeechBrain's padding does not take them either
        pad_right([torch.tensor(1.0), torch.tensor(2.0)])


def test_the_collate_function_is_a_padded_batch():
    examples = [{"id": "a", "sig": torch.ones(3)}, {"id": "b", "sig": torch.ones(5)}]
    batch, expected = padded_batch(examples), PaddedBatch(examples)
    assert batch.id == expected.id
    assert torch.equal(batch.sig.data, expected.sig.data) and torch.equal(batch.sig.lengths, expected.sig.lengths)
