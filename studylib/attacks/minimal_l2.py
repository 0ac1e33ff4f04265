"""foolbox's minimal-L2 attacks on a flow classifier, as `AttackResult`s beside our CW-L2:
DDN (Rony et al. 2019) and FMN (Pintor et al. 2021), stronger minimisers of the L2 distance
than CW on our models. Needs foolbox (the `bench` extra)."""

from __future__ import annotations

import torch
from torch import nn

from studylib.attacks.cw import AttackResult

MINIMAL_L2 = ("DDN", "FMN")


class _Scores(nn.Module):
    """The flow's class scores log p(x|y) as foolbox's logits (their softmax is p(y|x))."""

    def __init__(self, flow: nn.Module, batch_size: int):
        super().__init__()
        self.flow, self.batch_size = flow, batch_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.flow.log_prob(part) for part in x.split(self.batch_size)])


def minimal_l2(
    flow: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: str,
    steps: int,
    step_size: float,
    batch_size: int = 500,
) -> AttackResult:
    """foolbox's `attack` ('DDN' or 'FMN', `steps` steps, untargeted) on images x in
    [-0.5, 0.5] with labels y: per image the example it returns, whether it is misclassified,
    and its L2 distance (inf where it is not). `step_size` is FMN's largest step: FMN stops
    no closer to the image than about its step (on a linear classifier with flow-sized
    scores, its default of 1 left every example near L2 1), so it is set to the scale of the
    distances sought; DDN adapts its own."""
    import foolbox as fb

    if attack not in MINIMAL_L2:
        raise ValueError(f"unknown attack {attack!r}; allowed values: {', '.join(MINIMAL_L2)}")
    if steps < 1 or step_size <= 0:
        raise ValueError(f"steps must be >= 1 and step_size positive, got {steps}, {step_size}")
    flow.eval()
    fmodel = fb.PyTorchModel(_Scores(flow, batch_size).eval(), bounds=(-0.5, 0.5))
    method = (
        fb.attacks.DDNAttack(steps=steps)
        if attack == "DDN"
        else fb.attacks.L2FMNAttack(steps=steps, max_stepsize=step_size)
    )
    raw, _, _ = method(fmodel, x, fb.criteria.Misclassification(y), epsilons=None)
    raw = raw.detach()
    with torch.no_grad():
        fooled = _Scores(flow, batch_size)(raw).argmax(1) != y
    l2 = torch.where(fooled, (raw - x).flatten(1).norm(dim=1), torch.full_like(y, float("inf"), dtype=x.dtype))
    queries = torch.full_like(y, steps + 1)
    return AttackResult(torch.where(fooled[:, None, None, None], raw, x), fooled, l2, queries, l2.clone())
