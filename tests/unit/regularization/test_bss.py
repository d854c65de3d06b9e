import pytest
import torch

from speechbrain_xfer.regularization import BSS


def test_matches_svdvals_by_hand():
    torch.manual_seed(0)
    features = torch.randn(8, 5, dtype=torch.float64, requires_grad=True)
    sigma = torch.linalg.svdvals(features.detach())
    value = BSS(k=2, eta=0.3)(features)
    torch.testing.assert_close(value.detach(), 0.3 * (sigma[-1] ** 2 + sigma[-2] ** 2))
    value.backward()
    assert features.grad is not None and features.grad.abs().sum() > 0


def test_k_larger_than_the_rank_is_clipped_to_all_singular_values():
    torch.manual_seed(0)
    features = torch.randn(3, 5)
    torch.testing.assert_close(BSS(k=10, eta=1.0)(features), (features**2).sum())


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="at least 1"):
        BSS(k=0)
    with pytest.raises(ValueError, match="batch, dim"):
        BSS()(torch.randn(2, 3, 4))


def test_half_precision_features_are_supported():
    features = torch.tensor([[3.0, 0.0], [0.0, 2.0]], dtype=torch.bfloat16)
    assert BSS(k=1, eta=1.0)(features).item() == pytest.approx(4.0)
