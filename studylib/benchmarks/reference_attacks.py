"""Our attacks against foolbox's (the `bench` extra) on the same flow, images and budget:
the boundary attack by its model queries, CW-L2 by the distance of what it returns and by
how much of it the likelihood detector lets through (`studylib bench --foolbox`)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import torch
from torch import nn

from studylib import storage
from studylib.attacks.boundary import boundary_attack
from studylib.attacks.cw import cw_l2
from studylib.attacks.detector import Detector, FlowTarget
from studylib.attacks.minimal_l2 import HSJ, MINIMAL_L2, minimal_l2

HSJ_STEPS = 10  # per 1000 BoundaryAttack steps: about as many model queries per image (HSJ_EVALS)


def results_path(dataset: str, profile: str) -> Path:
    """Where `studylib bench --foolbox` records its rows for a dataset's split model."""
    return storage.results_dir() / "bench" / f"foolbox__{dataset}__{profile}.json"


class _Counting(nn.Module):
    """A flow's class scores log p(x|y), counting model calls and images scored."""

    def __init__(self, flow: nn.Module):
        super().__init__()
        self.flow, self.calls, self.images = flow, 0, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.images += len(x)
        return self.flow.log_prob(x)


def boundary_vs_foolbox(
    flow: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int, hsj_steps: int | None = None
) -> list[dict]:
    """foolbox's BoundaryAttack (`steps` steps, started by its default blended-noise search),
    ours (early stop within `eps`) with a third of foolbox's model queries per image, and
    foolbox's HopSkipJump (`hsj_steps` gradient estimates of at most 100 queries each; by
    default `HSJ_STEPS` per 1000 of foolbox's steps, at least one) from
    the same starts, on the same flow and the images whose noise start foolbox finds (a weak
    model can call every noise image one class): success within `eps`, model calls, images
    scored, seconds."""
    import foolbox as fb

    from studylib.measure.evaluate import nll_bpd

    flow.eval()
    counting = _Counting(flow).eval()
    start = time.perf_counter()
    fmodel = fb.PyTorchModel(counting, bounds=(-0.5, 0.5))
    with warnings.catch_warnings():  # it warns where it finds no start; those images are left out
        warnings.simplefilter("ignore", UserWarning)
        starts = fb.attacks.LinearSearchBlendedUniformNoiseAttack().run(fmodel, x, fb.criteria.Misclassification(y))
    with torch.no_grad():
        started = flow.log_prob(starts).argmax(1) != y
    x, y, starts = x[started], y[started], starts[started]
    attack = fb.attacks.BoundaryAttack(steps=steps)
    _, _, success = attack(fmodel, x, y, epsilons=[eps], starting_points=starts)
    calls, scored = counting.calls, counting.images
    theirs = _boundary_row("foolbox BoundaryAttack", success[0], calls, scored, start, f"{steps} steps")
    budget = max(1, theirs["images_scored"] // (3 * len(x)))
    counting = _Counting(flow).eval()
    start = time.perf_counter()

    def target(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            scores = counting(images)
        return scores, nll_bpd(scores, flow.n_dims)

    result = boundary_attack(target, x, y, max_queries=budget, eps=eps, progress=False)
    ok = result.success & (result.l2 <= eps)
    ours = _boundary_row(
        "studylib boundary_attack", ok, counting.calls, counting.images, start, f"{budget} queries per image"
    )
    start = time.perf_counter()
    hsj_steps = max(1, round(HSJ_STEPS * steps / 1000)) if hsj_steps is None else hsj_steps
    hop = minimal_l2(flow, x, y, HSJ, hsj_steps, step_size=1.0)  # from its own noise start
    scored = int(hop.queries.sum())
    hop_row = _boundary_row("foolbox HopSkipJumpAttack", hop.l2 <= eps, None, scored, start, f"{hsj_steps} steps")
    return [theirs, ours, hop_row]


def _boundary_row(name: str, success: torch.Tensor, calls: int | None, images: int, start: float, budget: str) -> dict:
    return {
        "attack": name,
        "images": len(success),
        "budget": budget,
        "success_within_eps": round(100 * success.double().mean().item(), 1),
        "model_calls": calls,
        "images_scored": images,
        "seconds": round(time.perf_counter() - start, 1),
    }


def cw_vs_foolbox(
    flow: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    detector: Detector,
    steps: int,
    search_steps: int,
    lr: float,
) -> list[dict]:
    """foolbox's L2CarliniWagnerAttack and our `cw_l2` at the same budget (Adam steps per
    binary-search step, search steps, step size; both from c = 1e-3) on the same flow and
    images: the share that fools the classifier, the median L2 of those, and the share that
    is misclassified, undetected by `detector` and within `eps` (Table 2's success)."""
    import foolbox as fb

    flow.eval()
    target = FlowTarget(flow)
    start = time.perf_counter()
    fmodel = fb.PyTorchModel(_Counting(flow).eval(), bounds=(-0.5, 0.5))
    attack = fb.attacks.L2CarliniWagnerAttack(
        binary_search_steps=search_steps, steps=steps, stepsize=lr, initial_const=1e-3, abort_early=False
    )  # its whole budget, as ours has
    raw, _, found = attack(fmodel, x, y, epsilons=None)
    found = found & (raw.flatten(1).abs().amax(1) > 0)  # where it found none it returns zeros, a grey image
    rows = [_cw_row("foolbox L2CarliniWagnerAttack", raw, found, x, y, target, detector, eps, start)]
    start = time.perf_counter()
    result = cw_l2(target, x, y, steps=steps, search_steps=search_steps, lr=lr, c_init=1e-3, progress=False)
    rows.append(_cw_row("studylib cw_l2", result.adversarial, result.success, x, y, target, detector, eps, start))
    for r in rows:
        r["budget"] = f"{steps} steps x {search_steps} searches, step {lr:.3g}"
    return rows


def minimal_l2_rows(
    flow: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, detector: Detector, steps: int, step_size: float
) -> list[dict]:
    """foolbox's DDN and FMN (`steps` steps; FMN's largest step `step_size`) on the same flow
    and images, scored as `cw_vs_foolbox` scores CW-L2: the stronger minimisers of L2."""
    target = FlowTarget(flow)
    rows = []
    for attack in MINIMAL_L2:
        start = time.perf_counter()
        result = minimal_l2(flow, x, y, attack, steps, step_size)
        row = _cw_row(f"foolbox {attack}", result.adversarial, result.success, x, y, target, detector, eps, start)
        rows.append(row | {"budget": f"{steps} steps" + (f", step {step_size:.3g}" if attack == "FMN" else "")})
    return rows


def _cw_row(
    name: str,
    adv: torch.Tensor,
    found: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    target: FlowTarget,
    detector: Detector,
    eps: float,
    start: float,
) -> dict:
    """What an attack returned, scored alike for both: fooled, its median L2, undetected within eps."""
    seconds = time.perf_counter() - start
    with torch.no_grad():
        scores, nll = target(adv)
    fooled = found & (scores.argmax(1) != y)
    l2 = (adv - x).flatten(1).norm(dim=1)
    ok = fooled & ~detector.detected(nll) & (l2 <= eps)
    return {
        "attack": name,
        "images": len(x),
        "fooled": round(100 * fooled.double().mean().item(), 1),
        "median_l2": l2[fooled].median().item() if fooled.any() else None,
        "undetected_within_eps": round(100 * ok.double().mean().item(), 1),
        "undetected_count": int(ok.sum()),
        "seconds": round(seconds, 1),
    }
