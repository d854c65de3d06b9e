"""Learning curves: the grid of recipe runs (``sbx curve``), its report, and the offline demo."""
