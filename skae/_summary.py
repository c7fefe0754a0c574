"""The end-of-call summary of a fit: its reconstruction error and the data's variance.

``noise_variance_`` and ``reconstruction_r2_`` are measured on a sample of
the training rows (a source's ``comparison_sample()``: at most 2,048 evenly
spaced rows in memory, spread-out blocks of streamed data). Without
validation data a fit judges its start and end on those same rows; when the
end is kept, its judging pass tallies the summary too
(``Trainer.evaluate(..., tally=...)``), which then costs no pass of its own.
"""

import torch


class ReconstructionTally:
    """Sums, in float64, of squared reconstruction errors and of the rows' moments.

    Parameters
    ----------
    n_features : int
    """

    def __init__(self, n_features):
        self.squared_error = 0.0
        self.n_rows = 0
        self.sums = torch.zeros(n_features, dtype=torch.float64)
        self.squares = torch.zeros(n_features, dtype=torch.float64)

    def add(self, rows, reconstruction):
        """Count a batch: ``rows`` (on any device) and their ``reconstruction``
        in the data's units."""
        rows = rows.double()
        self.squared_error += float((reconstruction.double() - rows).square().sum())
        self.n_rows += rows.shape[0]
        self.sums += rows.sum(dim=0).cpu()
        self.squares += rows.square().sum(dim=0).cpu()

    def result(self, group):
        """``(mean squared error per value, mean feature variance)`` over ``group``'s ranks."""
        n_features = self.sums.numel()
        totals = group.sum(
            [self.squared_error, self.n_rows, *self.sums.tolist(), *self.squares.tolist()]
        )
        squared_error, n = totals[0], totals[1]
        sums = torch.tensor(totals[2 : 2 + n_features], dtype=torch.float64)
        squares = torch.tensor(totals[2 + n_features :], dtype=torch.float64)
        variance = float((squares / n - (sums / n).square()).clamp(min=0).mean())
        return squared_error / (n * n_features), variance
