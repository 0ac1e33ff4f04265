"""foolbox's minimal-L2 attacks on a flow classifier, as `AttackResult`s beside ours: DDN
(Rony et al. 2019) and FMN (Pintor et al. 2021), stronger gradient-based minimisers of the
L2 distance than CW on our models, and HopSkipJump (Chen et al. 2020), a decision-based one
beside our boundary attack. Needs foolbox (the `bench` extra)."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from studylib.attacks.cw import AttackResult

MINIMAL_L2 = ("DDN", "FMN")
HSJ = "HopSkipJump"
# HopSkipJump's gradient estimates: 50 queries at first, at most 100; with one step per 100
# of the boundary attack's queries it spends about as many.
HSJ_EVALS = (50, 100)


class _Scores(nn.Module):
    """The flow's class scores log p(x|y) as foolbox's logits (their softmax is p(y|x)) of
    its input plus `shift`, counting the images scored."""

    def __init__(self, flow: nn.Module, batch_size: int, shift: float = 0.0):
        super().__init__()
        self.flow, self.batch_size, self.shift, self.scored = flow, batch_size, shift, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.scored += len(x)
        return torch.cat([self.flow.log_prob(part + self.shift) for part in x.split(self.batch_size)])


def minimal_l2(
    flow: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: str,
    steps: int,
    step_size: float,
    batch_size: int = 500,
) -> AttackResult:
    """foolbox's `attack` ('DDN', 'FMN' or 'HopSkipJump'; `steps` steps, untargeted) on
    images x in [-0.5, 0.5] with labels y: per image the example it returns, whether it is
    misclassified, its L2 distance (inf where it is not) and the model queries it spent per
    image on average. `step_size` is FMN's largest step: FMN stops no closer to the image
    than about its step (on a linear classifier with flow-sized scores, its default of 1 left
    every example near L2 1), so it is set to the scale of the distances sought; DDN and
    HopSkipJump adapt their own."""
    import foolbox as fb

    if attack not in (*MINIMAL_L2, HSJ):
        raise ValueError(f"unknown attack {attack!r}; allowed values: {', '.join((*MINIMAL_L2, HSJ))}")
    if steps < 1 or step_size <= 0:
        raise ValueError(f"steps must be >= 1 and step_size positive, got {steps}, {step_size}")
    flow.eval()
    # foolbox's HopSkipJump clips its probes to [0, 1] whatever the model's bounds: it sees
    # the images shifted by +0.5, and the flow shifts them back.
    shift = -0.5 if attack == HSJ else 0.0
    scores = _Scores(flow, batch_size, shift).eval()
    fmodel = fb.PyTorchModel(scores, bounds=(-0.5 - shift, 0.5 - shift))
    if attack == HSJ:
        raw = _hop_skip_jump(fmodel, x - shift, y, steps)
    else:
        if attack == "DDN":
            method = fb.attacks.DDNAttack(steps=steps)
        else:
            method = fb.attacks.L2FMNAttack(steps=steps, max_stepsize=step_size)
        raw, _, _ = method(fmodel, x, fb.criteria.Misclassification(y), epsilons=None)
    raw = raw.detach() + shift
    queries = torch.full_like(y, max(1, scores.scored // len(x)))
    with torch.no_grad():
        fooled = _Scores(flow, batch_size)(raw).argmax(1) != y
    l2 = torch.where(fooled, (raw - x).flatten(1).norm(dim=1), torch.full_like(y, float("inf"), dtype=x.dtype))
    return AttackResult(torch.where(fooled[:, None, None, None], raw, x), fooled, l2, queries, l2.clone())


def _hop_skip_jump(fmodel, x: torch.Tensor, y: torch.Tensor, steps: int) -> torch.Tensor:
    """foolbox's HopSkipJump from its own blended-noise start, on the images where that
    search finds a misclassified start (a weak model can call every noise image one class;
    foolbox refuses a batch with any such image); the others are returned unchanged."""
    import foolbox as fb

    with warnings.catch_warnings():  # it warns where it finds no start
        warnings.simplefilter("ignore", UserWarning)
        starts = fb.attacks.LinearSearchBlendedUniformNoiseAttack().run(fmodel, x, fb.criteria.Misclassification(y))
    with torch.no_grad():
        started = fmodel(starts).argmax(1) != y
    raw = x.clone()
    if started.any():
        first, most = HSJ_EVALS
        attack = fb.attacks.HopSkipJumpAttack(
            steps=steps, initial_gradient_eval_steps=first, max_gradient_eval_steps=most
        )
        criterion = fb.criteria.Misclassification(y[started])
        raw[started], _, _ = attack(fmodel, x[started], criterion, epsilons=None, starting_points=starts[started])
    return raw
