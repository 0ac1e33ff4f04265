"""The boundary attack (Brendel, Rauber & Bethge 2018): decision-based, batched.

Each image walks along the decision boundary towards its original: an orthogonal
(spherical) step of relative size `spherical_step`, then a step of relative size
`source_step` towards the original; a candidate is kept only if it is still adversarial.
Both step sizes adapt per image to the recent success rates. Images that are done (no
queries left, or converged) stop costing model calls."""

from __future__ import annotations

from collections.abc import Callable

import torch

from studylib.attacks.cw import HIGH, LOW, AttackResult
from studylib.attacks.detector import Detector, Target, augmented_scores
from studylib.progress import bar as tqdm


def _flat_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).clamp_min(1e-12)


def _view(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


class _Criterion:
    """Whether images are adversarial: untargeted (prediction != y) or targeted
    (prediction == target class); with a detector on the (C+1)-way classifier, whose
    "non-image" class is neither a success nor the true class."""

    def __init__(self, target: Target, y: torch.Tensor, target_class: torch.Tensor | None, detector: Detector | None):
        self.target, self.y, self.target_class, self.detector = target, y, target_class, detector

    def __call__(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        scores, nll = self.target(x)
        if self.detector is not None:
            scores = augmented_scores(scores, nll, self.detector.threshold_bpd)
        pred = scores.argmax(1)
        if self.target_class is not None:
            return pred == self.target_class[idx]
        wrong = pred != self.y[idx]
        if self.detector is not None:
            wrong &= pred != scores.shape[1] - 1
        return wrong


def _adapt(step: torch.Tensor, success_rate: torch.Tensor) -> torch.Tensor:
    """Grow a step size by 1.5 where most recent trials succeeded (> 50 %), shrink it where few did (< 20 %)."""
    return torch.where(success_rate > 0.5, step * 1.5, torch.where(success_rate < 0.2, step / 1.5, step))


def _line_search(criterion: _Criterion, x: torch.Tensor, start: torch.Tensor, idx: torch.Tensor, steps: int):
    """Bisect between each original (not adversarial) and its adversarial start for the
    adversarial point closest to the original on that line; `steps` queries per image."""
    lo = torch.zeros(len(idx), device=x.device)  # fraction of the way to the start: not adversarial
    hi = torch.ones(len(idx), device=x.device)  # adversarial
    for _ in range(steps):
        mid = (lo + hi) / 2
        ok = criterion(x + _view(mid, x) * (start - x), idx)
        hi = torch.where(ok, mid, hi)
        lo = torch.where(ok, lo, mid)
    return x + _view(hi, x) * (start - x)


def boundary_attack(
    target: Target,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    max_queries: int = 5000,
    starts: torch.Tensor | None = None,
    target_class: torch.Tensor | None = None,
    detector: Detector | None = None,
    spherical_step: float = 0.01,
    source_step: float = 0.01,
    adapt_every: int = 10,
    init_tries: int = 50,
    line_search_steps: int = 10,
    eps: float | None = None,
    seed: int = 0,
    progress: bool = True,
    on_step: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None] | None = None,
) -> AttackResult:
    """Boundary attack on a batch. Untargeted by default, started from uniform noise that
    is misclassified; targeted when `target_class` is given, started from `starts` (e.g.
    correctly classified, undetected test images of the target class). With `detector`,
    the criterion uses the (C+1)-way classifier, so a success is also undetected (and every
    point it keeps fools the classifier, so `fooled_l2` equals `l2`).
    `max_queries` is each image's budget, initialisation included; with `eps`, an image is
    done (and costs no more queries) once its adversarial is within L2 distance `eps`.
    `on_step(queries, adversarial, valid)`, if given, sees each image's queries so far and
    current example after the start and after every step (to read the attack at any budget)."""
    if max_queries < 1:
        raise ValueError(f"max_queries must be >= 1, got {max_queries}")
    if (target_class is None) != (starts is None):
        raise ValueError("a targeted attack needs both target_class and starts; an untargeted one neither")
    n, device = len(x), x.device
    gen = torch.Generator().manual_seed(seed)
    criterion = _Criterion(target, y, target_class, detector)
    all_idx = torch.arange(n, device=device)
    queries = torch.zeros(n, dtype=torch.long, device=device)
    if starts is None:
        starts = x.clone()
        valid = torch.zeros(n, dtype=torch.bool, device=device)
        for _ in range(init_tries):
            todo = all_idx[~valid]
            if len(todo) == 0:
                break
            noise = (torch.rand(len(todo), *x.shape[1:], generator=gen) * (HIGH - LOW) + LOW).to(device)
            ok = criterion(noise, todo)
            queries[todo] += 1
            starts[todo[ok]] = noise[ok]
            valid[todo[ok]] = True
    else:
        valid = criterion(starts, all_idx)
        queries += 1
    adv = x.clone()
    ready = all_idx[valid]
    if len(ready):
        adv[ready] = _line_search(criterion, x[ready], starts[ready], ready, line_search_steps)
        queries[ready] += line_search_steps
    if on_step is not None:
        on_step(queries, adv, valid)
    sph = torch.full((n,), spherical_step, device=device)
    src = torch.full((n,), source_step, device=device)
    sph_hits = torch.zeros(n, device=device)
    src_hits = torch.zeros(n, device=device)
    trials = torch.zeros(n, device=device)
    bar = tqdm(total=int(max_queries), desc="boundary attack", disable=not progress)
    while True:
        active = valid & (queries + 2 <= max_queries) & (src > 1e-7)
        if eps is not None:
            active &= (adv - x).flatten(1).norm(dim=1) > eps
        idx = all_idx[active]
        if len(idx) == 0:
            break
        xo, xa = x[idx], adv[idx]
        delta = xa - xo
        dist = _flat_norm(delta)
        eta = torch.randn(xa.shape, generator=gen).to(device)
        unit = delta / _view(dist, delta)
        eta = eta - _view((eta * unit).flatten(1).sum(1), eta) * unit  # orthogonal to delta
        eta = eta / _view(_flat_norm(eta), eta) * _view(sph[idx] * dist, eta)
        sphere = delta + eta
        sphere = xo + sphere / _view(_flat_norm(sphere), sphere) * _view(dist, sphere)  # back on the sphere
        sphere = sphere.clamp(LOW, HIGH)
        candidate = (xo + _view(1 - src[idx], xo) * (sphere - xo)).clamp(LOW, HIGH)
        ok_sphere = criterion(sphere, idx)
        ok = criterion(candidate, idx)
        queries[idx] += 2
        adv[idx[ok]] = candidate[ok]
        sph_hits[idx] += ok_sphere.float()
        src_hits[idx] += ok.float()
        trials[idx] += 1
        due = idx[trials[idx] >= adapt_every]
        if len(due):
            rate_sph, rate_src = sph_hits[due] / trials[due], src_hits[due] / trials[due]
            sph[due], src[due] = _adapt(sph[due], rate_sph), _adapt(src[due], rate_src)
            sph_hits[due], src_hits[due], trials[due] = 0, 0, 0
        if on_step is not None:
            on_step(queries, adv, valid)
        bar.update(int(queries[idx].min()) - bar.n)  # the slowest image still walking; redrawn at tqdm's interval
    bar.update(max_queries - bar.n)
    bar.close()
    l2 = torch.where(valid, (adv - x).flatten(1).norm(dim=1), torch.full((n,), float("inf"), device=device))
    return AttackResult(adv, valid, l2, queries, l2.clone())
