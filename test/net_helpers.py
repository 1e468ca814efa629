"""Tiny networks shared by the tests (plain torch)."""

import torch


class ConstNet(torch.nn.Module):
    """Outputs the same value everywhere: isolates the estimator's conversion path."""

    def __init__(self, value):
        super().__init__()
        self.value = value
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.full((x.shape[0], 1, x.shape[2], x.shape[3]), self.value) + 0 * self.dummy
