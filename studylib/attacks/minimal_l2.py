"""foolbox's minimal-L2 attacks on a flow classifier, as `AttackResult`s beside ours: DDN
(Rony et al. 2019) and FMN (Pintor et al. 2021), stronger gradient-based minimisers of the
L2 distance than CW on our models, and HopSkipJump (Chen et al. 2020), a decision-based one
beside our boundary attack, plain or made detection-aware by the boundary attack's C + 1
class trick. Needs foolbox (the `bench` extra)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from studylib.attacks.cw import AttackResult
from studylib.attacks.detector import Detector, Target, augmented_scores

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


class _Spent(Exception):
    """Raised inside foolbox's loop: the query budget is spent, or every image is done."""


class _Decisions(nn.Module):
    """A flow as a detection-aware decision-based attack sees it: C + 1 scores of its input
    plus `shift` (`augmented_scores`: the last class, "detected", wins where NLL > T), one
    query per image at every call (foolbox's HopSkipJump scores the whole batch each time).
    It keeps each image's nearest probe of the goal class (so also undetected) and stops the
    attack once `max_queries` are spent or, with `eps`, every image has one within `eps`."""

    def __init__(self, target: Target, x: torch.Tensor, goal: torch.Tensor, detector: Detector, shift: float):
        super().__init__()
        self.target, self.x, self.goal, self.detector, self.shift = target, x, goal, detector, shift
        self.best = x.clone()
        self.l2 = torch.full((len(x),), torch.inf, device=x.device)
        self.queries = 0
        self.max_queries: int = 0
        self.eps: float | None = None
        self.on_query: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None] | None = None
        self.bar = None

    def forward(self, probes: torch.Tensor) -> torch.Tensor:
        if self.queries >= self.max_queries or (self.eps is not None and bool((self.l2 <= self.eps).all())):
            raise _Spent
        images = probes + self.shift
        scores, nll = self.target(images)
        decided = augmented_scores(scores, nll, self.detector.threshold_bpd)
        self.queries += 1
        valid = decided.argmax(1) == self.goal
        l2 = torch.where(valid, (images - self.x).flatten(1).norm(dim=1), torch.inf)
        closer = l2 < self.l2
        self.best[closer], self.l2[closer] = images[closer].detach(), l2[closer]
        if self.on_query is not None:
            self.on_query(torch.full_like(self.goal, self.queries), self.best, self.l2 < torch.inf)
        if self.bar is not None:
            self.bar.update(1)
        return decided


def detection_aware_hsj(
    target: Target,
    x: torch.Tensor,
    goal: torch.Tensor,
    starts: torch.Tensor,
    detector: Detector,
    max_queries: int,
    eps: float | None = None,
    on_query: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None] | None = None,
    progress: bool = True,
) -> AttackResult:
    """foolbox's HopSkipJump, targeted at class `goal` from `starts` (undetected images of
    that class) through the C + 1 class trick, so a success is of the goal class and
    undetected: the boundary attack's detection-aware setting. Every call scores one probe
    per image; it runs until `max_queries` calls or, with `eps`, until every image has a
    success within `eps`. Per image: the nearest success it queried (its iterates are
    among them). `on_query(queries, nearest, found)`, if given, sees every call. An image
    with a negative goal (no start) is left out: no success."""
    import foolbox as fb

    if max_queries < 1:
        raise ValueError(f"max_queries must be >= 1, got {max_queries}")
    started = goal >= 0
    shift = -0.5  # foolbox's HopSkipJump clips its probes to [0, 1]
    model = _Decisions(target, x[started], goal[started], detector, shift)
    model.max_queries, model.eps = max_queries, eps
    if on_query is not None:
        model.on_query = lambda q, best, found: on_query(*_widen(started, q, best, found, x))
    fmodel = fb.PyTorchModel(model.eval(), bounds=(-0.5 - shift, 0.5 - shift))
    first, most = HSJ_EVALS
    attack = fb.attacks.HopSkipJumpAttack(steps=10**9, initial_gradient_eval_steps=first, max_gradient_eval_steps=most)
    criterion = fb.criteria.TargetedMisclassification(goal[started])
    with tqdm(total=max_queries, desc="HopSkipJump + detection", disable=not progress) as model.bar:
        try:
            if started.any():
                attack.run(fmodel, x[started] - shift, criterion, starting_points=starts[started] - shift)
        except _Spent:
            pass
    queries, best, found = _widen(
        started, torch.full_like(model.goal, model.queries), model.best, model.l2 < torch.inf, x
    )
    l2 = torch.full((len(x),), torch.inf, device=x.device)
    l2[started] = model.l2
    return AttackResult(best, found, l2, queries, l2.clone())


def _widen(
    started: torch.Tensor, queries: torch.Tensor, best: torch.Tensor, found: torch.Tensor, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The attacked images' queries, nearest successes and flags, back at every image's place."""
    all_queries = torch.zeros(len(x), dtype=torch.long, device=x.device)
    all_best, all_found = x.clone(), torch.zeros(len(x), dtype=torch.bool, device=x.device)
    all_queries[started], all_best[started], all_found[started] = queries, best, found
    return all_queries, all_best, all_found
