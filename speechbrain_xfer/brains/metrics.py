"""Classification metrics: accuracy, macro-F1 and the confusion matrix."""

import torch


def confusion_matrix(predictions, targets, num_classes):
    """Counts ``[target, prediction]`` pairs.

    Example
    -------
    >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), 2).tolist()
    [[1, 1], [0, 1]]
    """
    index = targets.long() * num_classes + predictions.long()
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def macro_f1(confusion):
    """Unweighted mean F1 over the classes that occur in targets or predictions.

    Example
    -------
    >>> round(macro_f1(torch.tensor([[1, 1], [0, 1]])), 4)
    0.6667
    """
    confusion = confusion.double()
    true_pos = confusion.diag()
    support = confusion.sum(dim=1)
    predicted = confusion.sum(dim=0)
    present = (support + predicted) > 0
    f1 = 2 * true_pos / (support + predicted).clamp(min=1)
    return float(f1[present].mean()) if present.any() else 0.0
