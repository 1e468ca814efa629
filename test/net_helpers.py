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


def register_const_model(monkeypatch, spec, value) -> str:
    """Register (for this test only) a :class:`ConstNet` giving ``value`` under ``spec``; returns
    its name, for ``DepthEstimator(name)``."""
    from mono_depth_ros.models import registry
    monkeypatch.setitem(registry._REGISTRY, spec.name,
                        registry._Entry(lambda **kw: ConstNet(value), spec))
    return spec.name
