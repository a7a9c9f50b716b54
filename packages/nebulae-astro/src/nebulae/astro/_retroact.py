"""Grad-CAM heat maps as a craft."""

from __future__ import annotations

import torch

from ._craft import Craft
from ._opcheck import check_tensor, shape_of

__all__ = ["Retroact"]


class Retroact(Craft):
    """Grad-CAM heat map: ``run(i, o) -> N×H×W`` in ``[0, 1]``.

    ``i`` is an intermediate feature map ``N×C×H×W`` (or ``N×C×D×H×W``) and ``o`` a score
    computed from it (e.g. the logit of the class to explain; a non-scalar ``o`` is summed).
    Each channel of ``i`` is weighted by its spatially pooled gradient, the weighted maps are
    averaged over channels, passed through ReLU and rescaled per sample to ``[0, 1]``
    (an all-zero map stays zero). Run it with gradients enabled, e.g. inside ``Prober()``.

    Raises:
        RuntimeError: ``o`` was not computed from ``i`` with gradients enabled.
    """

    def __init__(self, eps: float = 1e-12, scope: str = "RETROACT") -> None:
        super().__init__(scope)
        self.eps = float(eps)

    def run(self, i: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        check_tensor(self.scope, "i", i, (4, 5))
        check_tensor(self.scope, "o", o)
        if not (i.requires_grad and o.requires_grad):
            raise RuntimeError(
                f"{self.scope}: 'o' must be computed from the feature map 'i' with gradients enabled "
                f"(got i {shape_of(i)} requires_grad={i.requires_grad}, o requires_grad={o.requires_grad}); "
                "run the model inside Prober()"
            )
        (grad,) = torch.autograd.grad(o, i, grad_outputs=torch.ones_like(o), retain_graph=True)
        spatial = tuple(range(2, i.dim()))
        weights = grad.mean(dim=spatial, keepdim=True)
        cam = torch.relu((weights * i.detach()).mean(dim=1))
        flat = cam.flatten(1)
        low = flat.amin(dim=1).view(-1, *([1] * (cam.dim() - 1)))
        high = flat.amax(dim=1).view(-1, *([1] * (cam.dim() - 1)))
        return (cam - low) / (high - low).clamp_min(self.eps)
