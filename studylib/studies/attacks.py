"""Chapter 04, section 4.3: CW-L2 and boundary attacks, plain and detection-aware, against
a conditional flow with a likelihood detector (the paper's Table 2)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from studylib import storage
from studylib.attacks import grid
from studylib.attacks.boundary import boundary_attack
from studylib.attacks.cw import AttackResult, cw_l2, cw_lr
from studylib.attacks.detector import Detector, FlowTarget
from studylib.attacks.minimal_l2 import HSJ, HSJ_EVALS, MINIMAL_L2, detection_aware_hsj, minimal_l2
from studylib.attacks.pgd import pgd as pgd  # for the chapter's exercises
from studylib.benchmarks import reference_attacks
from studylib.book import ledger, paper, plots, tables
from studylib.book.chapter import Params
from studylib.book.ledger import directional, quantitative
from studylib.book.tables import Table
from studylib.config import Profile
from studylib.measure import evaluate
from studylib.measure.detection import auroc, roc_curve
from studylib.measure.uncertainty import difference_of_rates, wilson
from studylib.progress import bar
from studylib.sizes import SNAPSHOTS, Budgets, sizes
from studylib.studies.common import eval_log_likelihoods, eval_set, metrics, model_for
from studylib.training import zoo
from studylib.training.memo import memo

PAPER_ATTACKS = ("CW-L2", "boundary", "CW-L2 + detection", "boundary + detection")
ADAPTIVE = "CW-L2, NLL kept"  # misclassify without making the image less likely (Proposition 1)
ATTACKS = (*PAPER_ATTACKS, *MINIMAL_L2, HSJ, ADAPTIVE)
BEST = "best attack"  # per image, the closest success of any attack
TABLE2_SOURCE = (
    "Table 2: percentage of successful and undetected attacks within L2-distance of eps = 1.5 for "
    "MNIST and eps = 33/255 for CIFAR10; in parentheses, attacks that fool the classifier"
)
ORDERING_SOURCE = (
    "Section 4.3: the disparity between the CW-L2 attack, which is easily detectable, and the "
    "boundary attack which is much harder to detect"
)
ROBUST_SOURCE = (
    "Abstract and section 4.3: while we are able to train robust models for MNIST, robustness "
    "completely breaks down on CIFAR10 (the worst case is the strongest cell of Table 2)"
)
CW_C_INIT = 1e-3  # CW's first constant (Carlini & Wagner's); part of the memo key, so older runs are not reused
FMN_STEP = 0.3  # FMN's largest step, in CW's Adam steps: near the distances CW finds (`minimal_l2`)


def default_budgets(profile: str) -> Budgets:
    """The attack budgets of a profile (smoke: seconds; quick: about 6 CPU minutes per model on 2 cores)."""
    return sizes(profile).attack


def default_images(profile: str) -> int:
    """How many images per model a profile attacks."""
    return sizes(profile).attack_images


def default_query_curve(profile: str) -> tuple[int, int]:
    """The query-budget curve's images per model and largest budget per image."""
    return sizes(profile).query_curve


def default_cw_curve(profile: str) -> tuple[tuple[int, int], ...]:
    """CW-L2's budgets along its curve: (Adam steps, binary-search steps), smallest first."""
    return sizes(profile).cw_curve


@dataclass
class Outcome:
    """One attack on one model: its result and the NLL (bits/dim) of what it returned."""

    result: AttackResult
    nll: torch.Tensor
    undetected: torch.Tensor

    def hits(self, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Per image: (successful and undetected within eps, fooled the classifier within eps)."""
        ok = self.result.success & self.undetected & (self.result.l2 <= eps)
        return ok, self.result.fooled_l2 <= eps

    def rates(self, eps: float) -> tuple[float, float]:
        """(% successful and undetected within eps, % fooling the classifier within eps)."""
        return tuple(100 * h.double().mean().item() for h in self.hits(eps))


def _rate(hit: torch.Tensor) -> str:
    """The share of True in `hit` with its 95 % Wilson interval, e.g. "63 % [53, 72]"."""
    rate, low, high = wilson(int(hit.sum()), len(hit))
    return f"{rate:.0f} % [{low:.0f}, {high:.0f}]"


def _slug(attack: str) -> str:
    """An attack's name in glued names: 'CW-L2 + detection' -> 'cw_aware'."""
    if attack == ADAPTIVE:
        return "adaptive"
    return attack.lower().replace("-l2", "").replace(" + detection", "_aware").replace(" attack", "")


def _auroc(clean: np.ndarray, out: Outcome) -> str:
    """The AUROC of the NLL, clean test images against `out`'s examples that fool the
    classifier, with its bootstrap interval ('-' with fewer than two such examples)."""
    fooled = out.nll[torch.isfinite(out.result.fooled_l2)].numpy()
    return tables.estimate(*auroc(clean, fooled), digits=2) if len(fooled) > 1 else "-"


def _median(l2: torch.Tensor, scale: float) -> str:
    """The median of the finite distances, times `scale` ('-' where there are none)."""
    found = l2[torch.isfinite(l2)]
    return f"{scale * found.median().item():.3g}" if len(found) else "-"


def _cell_claim(name: str, hit: torch.Tensor, paper_rate: float, note: str, source: str = TABLE2_SOURCE) -> dict:
    """A Table 2 cell as a claim: the share of True in `hit` with its Wilson interval against
    the paper's rate."""
    k, n = int(hit.sum()), len(hit)
    rate, low, high = wilson(k, n)
    return quantitative(
        name,
        rate,
        (low, high),
        paper_rate,
        n=n,
        k=k,
        of="attacked images",
        method="Wilson",
        unit="%",
        source=source,
        note=note,
    )


def _paired_ordering(name: str, ahead: torch.Tensor, behind: torch.Tensor, statement: str, source: str) -> dict:
    """A directional claim that the undetected rate `ahead` exceeds `behind`, two attacks
    (or budgets) on the same images: their difference in points, a paired bootstrap."""
    diff, low, high = difference_of_rates(np.asarray(ahead), np.asarray(behind), paired=True)
    return directional(
        name,
        diff,
        (low, high),
        n=len(behind),
        of="attacked images (the same for both)",
        method="paired bootstrap",
        statement=statement,
        unit="points",
        source=source,
    )


def best_of(outcomes: list[Outcome]) -> Outcome:
    """Per image, the closest undetected success of any of `outcomes` (attacks on the same
    images), and the closest example of any that fools the classifier: AttackBench's
    per-sample minimum over attacks."""
    found = torch.stack([torch.where(o.result.success & o.undetected, o.result.l2, torch.inf) for o in outcomes])
    l2, pick = found.min(0)
    rows = torch.arange(found.shape[1])
    adversarial = torch.stack([o.result.adversarial for o in outcomes])[pick, rows]
    nll = torch.stack([o.nll for o in outcomes])[pick, rows]
    fooled = torch.stack([o.result.fooled_l2 for o in outcomes]).min(0).values
    queries = torch.stack([o.result.queries for o in outcomes]).sum(0)
    success = torch.isfinite(l2)
    return Outcome(AttackResult(adversarial, success, l2, queries, fooled), nll, success)


def on_grid(
    target: FlowTarget, outcome: Outcome, x: torch.Tensor, y: torch.Tensor, det: Detector, aware: bool
) -> Outcome:
    """`outcome`'s examples as 8-bit images with their originals' dequantisation offsets,
    scored as test images are (`grid.repair`: projected, and where that undoes the attack,
    its perturbation scaled up until the 8-bit image is misclassified, and undetected too
    for a detection-aware attack)."""

    def succeeds(candidates: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            scores, nll = target(candidates)
        ok = scores.argmax(1).cpu() != y[idx].cpu()
        return ok & ~det.of(idx).detected(nll).cpu() if aware else ok

    x = x.cpu()
    adversarial, ok = grid.repair(succeeds, outcome.result.adversarial, x)
    ok &= outcome.result.success
    with torch.no_grad():
        scores, nll = target(adversarial)
    fooled = scores.argmax(1).cpu() != y.cpu()
    l2 = (adversarial - x).flatten(1).norm(dim=1)
    result = AttackResult(
        adversarial,
        ok,
        torch.where(ok, l2, torch.inf),
        outcome.result.queries,
        torch.where(fooled, l2, torch.inf),
    )
    return Outcome(result, nll.cpu(), ~det.detected(nll).cpu())


@dataclass
class Table2:
    """Table 2 for one dataset: outcomes per objective and attack, the detector per objective."""

    dataset: str
    eps: float
    n_images: int
    detectors: dict[str, Detector] = field(default_factory=dict)
    outcomes: dict[str, dict[str, Outcome]] = field(default_factory=dict)
    originals: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    grid: dict[str, dict[str, Outcome]] = field(default_factory=dict)  # the same, as 8-bit images
    clean: dict[str, torch.Tensor] = field(default_factory=dict)  # the clean test NLL that set T

    def detectors_table(self) -> Table:
        """Each model's threshold T, the quantile of clean test NLLs that set it, its recall,
        and the budget eps."""
        rows = [
            (objective, round(det.threshold_bpd, 3), f"{det.quantile:.1%}", f"{det.recall:.1%}", round(self.eps, 4))
            for objective, det in self.detectors.items()
        ]
        return Table(("model", "T (bits/dim)", "quantile", "recall", "eps (L2)"), rows)

    def table(self) -> Table:
        """Table 2: per attack and model, the paper's and our share of successful, undetected
        attacks within eps and of attacks fooling the classifier, ours with its 95 % Wilson
        interval and count, on continuous examples and as 8-bit images; and the median L2
        distance of the examples that fool the classifier (8-bit: in levels)."""
        rows = []
        for attack in (*ATTACKS, BEST):
            for objective, outcomes in self.outcomes.items():
                p = paper.TABLE2[self.dataset].get(attack, {}).get(objective)
                if attack not in outcomes:
                    continue
                cells = []
                for column in (0, 1):
                    cells.append(f"{p[column]} %" if p else "-")
                    for out in (outcomes[attack], self.grid[objective][attack]):
                        hit = out.hits(self.eps)[column]
                        cells.append(f"{_rate(hit)} ({int(hit.sum())}/{len(hit)})")
                cells += [
                    _median(outcomes[attack].result.fooled_l2, 1),
                    _median(self.grid[objective][attack].result.fooled_l2, grid.LEVELS),
                ]
                rows.append((attack, objective, *cells))
        columns = (
            "attack",
            "model",
            "undetected: paper",
            "ours",
            "ours, 8-bit",
            "fooled: paper",
            "ours",
            "ours, 8-bit",
            "median L2",
            "8-bit (levels)",
        )
        return Table(columns, rows)

    def claims(self) -> list[dict]:
        """The ledger's claims: every cell of Table 2 that ran (undetected and fooled within
        eps, each a rate with its Wilson interval), per model the abstract's headline (our
        worst case against the paper's, `_robust_claim`) and the paper's ordering, "CW-L2
        is easily detectable, the boundary attack much harder to detect", as the boundary's
        undetected rate minus CW-L2's on the same images (a paired bootstrap)."""
        rows = []
        for objective, outcomes in self.outcomes.items():
            for attack, images, out in self._cells(objective):
                p = paper.TABLE2[self.dataset].get(attack, {}).get(objective)
                if p is None:
                    continue
                for (what, column), hit in zip(
                    (("successful and undetected", 0), ("fooling the classifier", 1)), out.hits(self.eps), strict=True
                ):
                    name = f"{attack} vs {objective}: {what} within eps" + images
                    rows.append(_cell_claim(name, hit, p[column], f"eps {self.eps:.3g}"))
            if BEST in outcomes:
                rows.append(self._robust_claim(objective))
            if {"CW-L2", "boundary"} <= outcomes.keys():
                boundary, cw = (outcomes[a].hits(self.eps)[0].numpy() for a in ("boundary", "CW-L2"))
                rows.append(
                    _paired_ordering(
                        f"{objective}: the boundary attack is undetected more often than CW-L2",
                        boundary,
                        cw,
                        "CW-L2 is easily detectable; the boundary attack is much harder to detect",
                        ORDERING_SOURCE,
                    )
                )
        return rows

    def worst_case(self, objective: str) -> tuple[str, int]:
        """The paper's worst case for `objective`'s model: the Table 2 attack with the highest
        rate of successful, undetected examples, and that rate (%)."""
        cells = {a: c[objective][0] for a, c in paper.TABLE2[self.dataset].items() if objective in c}
        attack = max(cells, key=cells.get)
        return attack, cells[attack]

    def _robust_claim(self, objective: str) -> dict:
        """The abstract's headline as one claim per model: our worst case, the best attack per
        image on real (8-bit) images, successful and undetected within eps, against the
        paper's worst case (`worst_case`)."""
        attack, rate = self.worst_case(objective)
        hit = self.grid[objective][BEST].hits(self.eps)[0]
        name = f"{objective}: the worst case, successful and undetected within eps, 8-bit images"
        return _cell_claim(name, hit, rate, f"ours: the best attack per image; the paper's: {attack}", ROBUST_SOURCE)

    def numbers(self) -> dict[str, str]:
        """The figures the chapter's prose quotes, by name, for `chapter.glue`: per attack
        (`cw`, `boundary`, `cw_aware`, `boundary_aware`, `ddn`, `fmn`, `adaptive`, `best`) and model, the
        undetected and fooled rates within eps with their intervals (`_und`, `_fooled`), the
        median L2 of the fooling examples (`_l2`), the same for the 8-bit images (`_und8`,
        `_fooled8`, `_levels8`: in levels), of its successful examples how many round back
        to their original's levels (`_rounds_back`), the detector's AUROC against its fooling
        examples (`_auroc`, `_auroc8`), the paper's cell (`paper_<attack>_<model>_und`,
        `_fooled`); per model T (`t_<model>`), the paper's worst case (`paper_worst_<model>`)
        and the verdict on ours against it (`worst_<model>_verdict`), and the boundary's
        undetected rate minus CW-L2's (`order_<model>`)."""
        found = {}
        for objective, outcomes in self.outcomes.items():
            found[f"t_{objective}"] = f"{self.detectors[objective].threshold_bpd:.2f}"
            attack, rate = self.worst_case(objective)
            found[f"paper_worst_{objective}"] = f"{rate} % ({attack})"
            if BEST in outcomes:
                found[f"worst_{objective}_verdict"] = self._robust_claim(objective)["verdict"]
            x, _ = self.originals[objective]
            for attack, out in outcomes.items():
                name = f"{_slug(attack)}_{objective}"
                eight = self.grid[objective][attack]
                for suffix, o in (("", out), ("8", eight)):
                    for what, hit in zip(("und", "fooled"), o.hits(self.eps), strict=True):
                        found[f"{name}_{what}{suffix}"] = _rate(hit)
                found |= _paper_numbers(self.dataset, attack, objective, name)
                found[f"{name}_l2"] = _median(out.result.fooled_l2, 1)
                found[f"{name}_levels8"] = _median(eight.result.fooled_l2, grid.LEVELS)
                u = grid.offsets(x)
                same = (grid.levels(out.result.adversarial, u) == grid.levels(x, u)).flatten(1).all(1)
                ok = out.result.success
                found[f"{name}_rounds_back"] = f"{int((same & ok).sum())} of {int(ok.sum())}"
                found[f"{name}_auroc"] = _auroc(self.clean[objective].numpy(), out)
                found[f"{name}_auroc8"] = _auroc(self.clean[objective].numpy(), eight)
            if {"CW-L2", "boundary"} <= outcomes.keys():
                boundary, cw = (outcomes[a].hits(self.eps)[0].numpy() for a in ("boundary", "CW-L2"))
                diff, low, high = difference_of_rates(boundary, cw, paired=True)
                found[f"order_{objective}"] = f"{diff:+.0f} points [{low:+.0f}, {high:+.0f}]"
        return found

    def detection(self) -> Table:
        """The detector without one threshold: per model and attack, the AUROC of the NLL
        (with its bootstrap interval) separating the clean test images from the examples
        that fool the classifier, continuous and as 8-bit images."""
        rows = []
        for objective, outcomes in self.outcomes.items():
            clean = self.clean[objective].numpy()
            for attack in outcomes:
                cells = [_auroc(clean, out) for out in (outcomes[attack], self.grid[objective][attack])]
                rows.append((attack, objective, *cells))
        return Table(
            ("attack", "model", "AUROC", "AUROC, 8-bit"),
            rows,
            caption="P(an example's NLL > a clean test image's), of the examples that fool the classifier; "
            "0.5: the likelihood cannot tell them apart.",
        )

    def at_thresholds(self, quantiles: tuple[float, ...] = (0.99, 0.95)) -> Table:
        """The undetected rates within eps with T at other quantiles of the clean NLL beside
        the paper's recall (the examples as found against the paper's T)."""
        rows = []
        for objective, outcomes in self.outcomes.items():
            detectors = [self.detectors[objective]] + [
                Detector.fit(self.clean[objective], q, self.detectors[objective].dims) for q in quantiles
            ]
            for attack in outcomes:
                cells = []
                for det in detectors:
                    for out in (outcomes[attack], self.grid[objective][attack]):
                        hit = out.result.success & ~det.detected(out.nll) & (out.result.l2 <= self.eps)
                        cells.append(f"{100 * hit.double().mean().item():.0f} %")
                rows.append((attack, objective, *cells))
        heads = [f"T at {self.detectors[next(iter(self.detectors))].quantile:.1%}"] + [
            f"T at {q:.0%}" for q in quantiles
        ]
        columns = ("attack", "model", *(f"{h}{kind}" for h in heads for kind in ("", ", 8-bit")))
        return Table(columns, rows, caption="Successful and undetected within eps, by threshold.")

    def _cells(self, objective: str) -> list[tuple[str, str, Outcome]]:
        """(attack, claim suffix, outcome) for each attack on `objective`'s model, continuous
        and as 8-bit images."""
        return [
            (attack, suffix, found[attack])
            for suffix, found in (("", self.outcomes[objective]), (", 8-bit images", self.grid[objective]))
            for attack in found
        ]

    def curves(self, eps_grid: torch.Tensor, eight_bit: bool = False) -> dict[str, dict[str, list[float]]]:
        """% successful and undetected against eps, per objective and attack (of the 8-bit
        images with `eight_bit`)."""
        return {
            o: {a: [out.rates(float(e))[0] for e in eps_grid] for a, out in outs.items()}
            for o, outs in (self.grid if eight_bit else self.outcomes).items()
        }


def _paper_numbers(dataset: str, attack: str, objective: str, name: str) -> dict[str, str]:
    """The paper's Table 2 cell for `attack` on `objective`'s model, named `paper_<name>_und`
    and `paper_<name>_fooled` (nothing where the paper has no such cell)."""
    cell = paper.TABLE2[dataset].get(attack, {}).get(objective)
    return {f"paper_{name}_und": f"{cell[0]} %", f"paper_{name}_fooled": f"{cell[1]} %"} if cell else {}


def recorded_numbers(dataset: str, profile: str = "quick", seed: int = 0) -> dict[str, str]:
    """The figures a dataset's recorded Table 2 run glued (its ledger entry's `numbers`,
    `Table2.numbers`), with the dataset in front (`cifar10_cw_split_und8`; the paper's cells
    as `paper_cifar10_cw_split_und`): a chapter run on one dataset quotes the other's
    recorded run instead of numbers typed by hand. Empty where nothing is recorded."""
    entry = ledger.read_recorded(f"04_attacks__{dataset}__{profile}__seed{seed}.json")
    numbers = entry.get("numbers", {}) if entry else {}
    return {
        f"paper_{dataset}_{name[6:]}" if name.startswith("paper_") else f"{dataset}_{name}": value
        for name, value in numbers.items()
    }


def _pick(
    ll: torch.Tensor, y: torch.Tensor, nll: torch.Tensor, det: Detector, n: int, gen: torch.Generator
) -> torch.Tensor:
    """Indices of up to n correctly classified, undetected images, in a seeded random order."""
    ok = (ll.argmax(1) == y) & ~det.detected(nll)
    candidates = torch.nonzero(ok).squeeze(1)
    return candidates[torch.randperm(len(candidates), generator=gen)[:n]]


def _targets_and_starts(
    ll: torch.Tensor,
    y_all: torch.Tensor,
    nll: torch.Tensor,
    det: Detector,
    y: torch.Tensor,
    x_all: torch.Tensor,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each attacked image, a random target class other than its own and a randomly chosen
    correctly classified, undetected test image of that class to start from (noise starts are
    all detected). Classes without such an image are not chosen; where no class is left (a
    useless model), the target is -1 and the attack fails for that image."""
    pool = _pick(ll, y_all, nll, det, len(y_all), gen)
    by_class = {c: pool[y_all[pool] == c] for c in range(ll.shape[1]) if (y_all[pool] == c).any()}
    goals, starts = [], []
    for label in y.tolist():
        options = [c for c in by_class if c != label]
        if not options:
            goals.append(-1)
            starts.append(x_all[0])
            continue
        goal = options[int(torch.randint(len(options), (1,), generator=gen))]
        mine = by_class[goal]
        goals.append(goal)
        starts.append(x_all[mine[int(torch.randint(len(mine), (1,), generator=gen))]])
    return torch.tensor(goals), torch.stack(starts)


def run(
    params: Params,
    objectives: list[str],
    n_images: int,
    budgets: Budgets,
    quantile: float | None = None,
    attacks: tuple[str, ...] = ATTACKS,
) -> Table2:
    """Attack `n_images` correctly classified, undetected test images of each objective's
    model with each attack. The detector's quantile defaults to the paper's recall (MNIST
    100 %, CIFAR-10 78.6 %), so T transfers to models of another sharpness."""
    for a in attacks:
        if a not in ATTACKS:
            raise ValueError(f"unknown attack {a!r}; allowed values: {', '.join(ATTACKS)}")
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    q = paper.THRESHOLD[params.dataset][1] if quantile is None else quantile
    test = eval_set(params)
    table = Table2(params.dataset, paper.EPSILON[params.dataset], n_images)
    for objective in objectives:
        model = model_for(params, objective, params.seed)
        det, outcomes, originals, table.clean[objective] = _attack_model(
            params, model, test, attacks, n_images, budgets, q, table.eps
        )
        target = FlowTarget(model, params.profile.scale.eval_batch_size)
        x, y = originals
        with torch.no_grad():
            own = Detector.own_likelihood(target(x)[1].cpu(), det.dims)  # the adaptive attack's constraint
        table.grid[objective] = {
            a: on_grid(target, out, x, y, own if a == ADAPTIVE else det, aware="detection" in a or a == ADAPTIVE)
            for a, out in bar(outcomes.items(), "8-bit images")
        }
        if len(outcomes) > 1:
            outcomes[BEST] = best_of(list(outcomes.values()))
            table.grid[objective][BEST] = best_of(list(table.grid[objective].values()))
        table.detectors[objective] = det
        table.outcomes[objective] = outcomes
        table.originals[objective] = originals
    return table


@dataclass
class Selection:
    """One model's attacked images: the detector fitted on its clean test NLL (`nll`, of the
    whole evaluation set), the images' test indices, images and labels, and the targeted
    attack's goal class and start image for each."""

    det: Detector
    idx: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    goals: torch.Tensor
    starts: torch.Tensor
    nll: torch.Tensor

    def key(self, test, params: Params) -> dict:
        """What identifies these images in a memo key."""
        return {"test": [test.name, params.profile.scale.eval_subset, params.seed], "images": self.idx.tolist()}


def select(params: Params, model, test, n_images: int, quantile: float) -> Selection:
    """Fit the detector at `quantile` of `model`'s clean test NLL and draw `n_images`
    correctly classified, undetected test images in a seeded order (the first n of a larger
    draw are the same images, with the same goals), and their targeted starts."""
    x_all, y_all = test.tensors()
    ll, _ = eval_log_likelihoods(params, model, test)
    nll = evaluate.nll_bpd(ll, model.n_dims)
    det = Detector.fit(nll, quantile, model.n_dims)
    gen = torch.Generator().manual_seed(params.seed)
    idx = _pick(ll, y_all, nll, det, n_images, gen)
    goals, starts = _targets_and_starts(ll, y_all, nll, det, y_all[idx], x_all, gen)
    return Selection(det, idx, x_all[idx].to(params.device), y_all[idx].to(params.device), goals, starts, nll)


def _attack_model(
    params: Params,
    model,
    test,
    attacks: tuple[str, ...],
    n_images: int,
    budgets: Budgets,
    quantile: float,
    eps: float,
) -> tuple[Detector, dict[str, Outcome], tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Run `attacks` on the `select`ed images of `model`: (detector, outcomes, originals,
    clean test NLL)."""
    chosen = select(params, model, test, n_images, quantile)
    outcomes = {}
    for attack in attacks:
        outcomes[attack] = _memo_attack(params, model, test, chosen, attack, budgets, eps, outcomes)
    return chosen.det, outcomes, (chosen.x.cpu(), chosen.y.cpu()), chosen.nll.cpu()


def _memo_attack(
    params: Params,
    model,
    test,
    chosen: Selection,
    attack: str,
    budgets: Budgets,
    eps: float,
    earlier: dict[str, Outcome],
) -> Outcome:
    """`attack` on `chosen`'s images of `model` at `budgets`, memoised (the detection-aware
    and adaptive CW start from the plain CW-L2 of `earlier`, where it ran)."""
    det = chosen.det
    key = {
        "model": model.info["sha256"],
        **chosen.key(test, params),
        "attack": attack,
        "budgets": dataclasses.asdict(budgets),
        "threshold": det.threshold_bpd,
        "eps": eps,
    }
    if attack.startswith("CW"):
        key["cw_c_init"] = CW_C_INIT
    start = None
    if attack in ("CW-L2 + detection", ADAPTIVE) and "CW-L2" in earlier:
        start = earlier["CW-L2"].result.adversarial.to(params.device)  # what the plain attack found
        key["warm_start"] = "CW-L2"
    if attack == "boundary + detection":
        start = chosen.goals, chosen.starts
        key["goal"] = chosen.goals.tolist()
    judge = Detector.own_likelihood(chosen.nll[chosen.idx].to(params.device), det.dims) if attack == ADAPTIVE else det
    target = FlowTarget(model, params.profile.scale.eval_batch_size)
    x, y = chosen.x, chosen.y
    stored = memo("attack", key, partial(_attack, params, target, attack, x, y, budgets, eps, judge, start))
    result = AttackResult(*(stored[f.name] for f in dataclasses.fields(AttackResult)))
    return Outcome(result, stored["nll"], ~det.detected(stored["nll"]))


def _attack(
    params: Params,
    target: FlowTarget,
    attack: str,
    x: torch.Tensor,
    y: torch.Tensor,
    budgets: Budgets,
    eps: float,
    det: Detector,
    start: tuple[torch.Tensor, torch.Tensor] | torch.Tensor | None,
) -> dict[str, torch.Tensor]:
    """One attack on images `x` (labels `y`; `det`: the detector the detection-aware attacks
    evade, per image for the adaptive one; `start`: the targeted attack's goal classes and
    start images, or the plain CW-L2's examples for a detection-aware CW to beat): the
    result's tensors and the NLL (bits/dim) of what it returned, on the CPU, as
    `_attack_model` memoises them."""
    if attack.startswith("CW"):
        result = cw_l2(
            target,
            x,
            y,
            steps=budgets.cw_steps,
            search_steps=budgets.cw_search_steps,
            lr=cw_lr(eps),
            c_init=CW_C_INIT,
            detector=det if "detection" in attack or attack == ADAPTIVE else None,
            warm_start=start,
        )
    elif attack in MINIMAL_L2:
        result = minimal_l2(target.model, x, y, attack, budgets.min_l2_steps, FMN_STEP * cw_lr(eps))
    elif attack == HSJ:  # about the boundary attack's queries
        result = minimal_l2(target.model, x, y, HSJ, max(1, budgets.boundary_queries // HSJ_EVALS[1]), 1.0)
    elif attack == "boundary":
        result = boundary_attack(target, x, y, max_queries=budgets.boundary_queries, seed=params.seed)
    else:
        goal, starts = start
        if (goal < 0).any():
            print(f"{int((goal < 0).sum())} images have no start image of another class: counted as failures")
        result = boundary_attack(
            target,
            x,
            y,
            max_queries=budgets.boundary_queries,
            starts=starts.to(params.device),
            target_class=goal.to(params.device),
            detector=det,
            seed=params.seed,
        )
    with torch.no_grad():
        _, adv_nll = target(result.adversarial)
    return {**{k: v.cpu() for k, v in vars(result).items()}, "nll": adv_nll.cpu()}


QUERY_ATTACK = "boundary + detection"


def query_budgets(max_queries: int, table_queries: int, points: int = 12) -> list[int]:
    """The query budgets a curve is read at: a geometric grid up to `max_queries`, from a
    250th of it, with Table 2's budget `table_queries` among them where it is below."""
    grid = np.geomspace(max(1.0, max_queries / 250), max_queries, points)
    return sorted({*(int(round(q)) for q in grid), *([table_queries] if table_queries <= max_queries else [])})


class _Trace:
    """Each image's distance to its nearest example at every query budget, read as the
    attack runs (inf where it has none yet)."""

    def __init__(self, x: torch.Tensor, budgets: list[int]):
        self.x, self.budgets = x, budgets
        self.l2 = torch.full((len(budgets), len(x)), torch.inf)

    def __call__(self, queries: torch.Tensor, adversarial: torch.Tensor, valid: torch.Tensor) -> None:
        l2 = torch.where(valid, (adversarial - self.x).flatten(1).norm(dim=1), torch.inf).cpu()
        spent = queries.cpu()
        for row, budget in enumerate(self.budgets):
            within = spent <= budget
            self.l2[row, within] = torch.minimum(self.l2[row, within], l2[within])


HSJ_QUERY_ATTACK = f"{HSJ} + detection"


@dataclass
class QueryCurve:
    """The detection-aware decision-based attacks against their query budget: per attack
    (the boundary attack, HopSkipJump) and model, each image's L2 distance to its nearest
    success at each budget (an image stops once within eps, so only the rate within eps is
    read), and Table 2's budget among them."""

    dataset: str
    eps: float
    budgets: list[int]
    table_queries: int
    l2: dict[str, torch.Tensor] = field(default_factory=dict)  # the boundary attack's
    hsj: dict[str, torch.Tensor] = field(default_factory=dict)  # HopSkipJump's

    def _runs(self) -> list[tuple[str, str, torch.Tensor]]:
        """(attack, model, distances) for every curve measured."""
        return [(QUERY_ATTACK, o, d) for o, d in self.l2.items()] + [
            (HSJ_QUERY_ATTACK, o, d) for o, d in self.hsj.items()
        ]

    def hits(self, objective: str, attack: str = QUERY_ATTACK) -> torch.Tensor:
        """Per budget and image: an undetected example of the goal class within eps."""
        return (self.hsj if attack == HSJ_QUERY_ATTACK else self.l2)[objective] <= self.eps

    def table(self) -> Table:
        """Per budget, each attack's and model's undetected rate within eps with its 95 % Wilson
        interval; the paper's boundary attack below."""
        runs = self._runs()
        names = [o if a == QUERY_ATTACK else f"{o}, {HSJ}" for a, o, _ in runs]
        rows = [(b, *(_rate(d[i] <= self.eps) for _, _, d in runs)) for i, b in enumerate(self.budgets)]
        rows.append(("paper", *(f"{paper.TABLE2[self.dataset][QUERY_ATTACK][o][0]} %" for _, o, _ in runs)))
        note = (
            f"Undetected, of the goal class, within eps = {self.eps:.3g}; Table 2: {self.table_queries} queries. "
            f"The paper's row is its boundary attack's."
        )
        return Table(("queries per image", *names), rows, note=note)

    def figure(self):
        """The undetected rate within eps against queries (a log axis), with 95 % Wilson bands,
        each model in one colour (HopSkipJump dash-dotted), the paper's rate and Table 2's
        budget marked."""
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        colours = {}
        for attack, objective, l2 in self._runs():
            bounds = np.array([wilson(int(h.sum()), len(h)) for h in l2 <= self.eps])
            hsj = attack == HSJ_QUERY_ATTACK
            label = f"{objective}, {HSJ}" if hsj else objective
            (line,) = ax.plot(
                self.budgets, bounds[:, 0], "s-." if hsj else "o-", color=colours.get(objective), label=label
            )
            ax.fill_between(self.budgets, bounds[:, 1], bounds[:, 2], color=line.get_color(), alpha=0.15, linewidth=0)
            if objective not in colours:
                colours[objective] = line.get_color()
                p = paper.TABLE2[self.dataset][QUERY_ATTACK][objective][0]
                ax.axhline(p, color=line.get_color(), linestyle="--", linewidth=1, label=f"paper, {objective}")
        ax.axvline(self.table_queries, color="grey", linestyle=":", label="Table 2's budget")
        ax.set_xscale("log")
        ax.set(xlabel="model queries per image", ylabel="% undetected within eps", ylim=(-2, 102))
        ax.set_title(f"detection-aware decision-based attacks against their budget ({self.dataset})", fontsize=10)
        ax.legend(fontsize="small")
        fig.tight_layout()
        return fig

    def _gain(self, objective: str) -> tuple[float, float, float]:
        """The rate at the largest budget minus that at Table 2's, on the same images (paired bootstrap)."""
        hits = self.hits(objective).numpy()
        return difference_of_rates(hits[-1], hits[self.budgets.index(self.table_queries)], paired=True)

    def claims(self) -> list[dict]:
        """Per model and attack: the paper's Table 2 cell against our rate at the largest
        budget (the paper's attack is the boundary attack; HopSkipJump asks whether a stronger
        decision-based attack reaches it); and (ours) whether more queries than Table 2's
        raise the boundary attack's rate: the gap to the paper is the attack's budget."""
        rows = []
        for attack, objective, l2 in self._runs():
            note = f"eps {self.eps:.3g}; Table 2 ran {self.table_queries} queries"
            rows.append(
                _cell_claim(
                    f"{attack} vs {objective}: successful and undetected within eps, {self.budgets[-1]} queries",
                    l2[-1] <= self.eps,
                    paper.TABLE2[self.dataset][QUERY_ATTACK][objective][0],
                    note if attack == QUERY_ATTACK else f"{note}; the paper's cell is its boundary attack's",
                )
            )
            if attack == QUERY_ATTACK and self.table_queries < self.budgets[-1]:
                hits = self.hits(objective)
                rows.append(
                    _paired_ordering(
                        f"{objective}: {QUERY_ATTACK} is undetected more often with "
                        f"{self.budgets[-1]} queries than with {self.table_queries}",
                        hits[-1],
                        hits[self.budgets.index(self.table_queries)],
                        "(ours) the gap to the paper's rate is the attack's query budget",
                        "Chapter 4: the detection-aware boundary attack's rate put down to its budget",
                    )
                )
        return rows

    def numbers(self) -> dict[str, str]:
        """The figures the prose quotes: the largest budget (`qc_max`), the images per model
        (`qc_images`), and per model the rate at Table 2's budget and at the largest
        (`qc_<model>_table`, `qc_<model>_max`; HopSkipJump's `qc_hsj_<model>_...`), the
        boundary attack's gain between them (`qc_<model>_gain`) and the median L2 of the
        images still outside eps at the largest budget (`qc_<model>_left`)."""
        found = {"qc_max": str(self.budgets[-1]), "qc_images": str(len(next(iter(self.l2.values()))[0]))}
        for attack, objective, l2 in self._runs():
            hits = l2 <= self.eps
            name = f"qc_{objective}" if attack == QUERY_ATTACK else f"qc_hsj_{objective}"
            found[f"{name}_table"] = _rate(hits[self.budgets.index(self.table_queries)])
            found[f"{name}_max"] = _rate(hits[-1])
            found[f"{name}_left"] = _median(l2[-1][~hits[-1]], 1)
            if attack == QUERY_ATTACK and self.table_queries < self.budgets[-1]:
                diff, low, high = self._gain(objective)
                found[f"{name}_gain"] = f"{diff:+.0f} points [{low:+.0f}, {high:+.0f}]"
        return found


def query_curve(
    params: Params,
    objectives: list[str],
    n_images: int,
    max_queries: int,
    table_queries: int,
    quantile: float | None = None,
    hsj: bool = True,
) -> QueryCurve:
    """Run the detection-aware boundary attack, and with `hsj` HopSkipJump made
    detection-aware alike, with `max_queries` per image on the first `n_images` of each
    model's Table 2 images (the same goals and starts), reading each at every budget of
    `query_budgets`: does the paper's rate come with more queries, or a stronger attack?"""
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    if max_queries < 1:
        raise ValueError(f"max_queries must be >= 1, got {max_queries}")
    q = paper.THRESHOLD[params.dataset][1] if quantile is None else quantile
    eps = paper.EPSILON[params.dataset]
    budgets = query_budgets(max_queries, table_queries)
    curve = QueryCurve(params.dataset, eps, budgets, table_queries)
    test = eval_set(params)
    for objective in objectives:
        model = model_for(params, objective, params.seed)
        chosen = select(params, model, test, n_images, q)
        key = {
            "model": model.info["sha256"],
            **chosen.key(test, params),
            "attack": QUERY_ATTACK,
            "budgets": budgets,
            "threshold": chosen.det.threshold_bpd,
            "goal": chosen.goals.tolist(),
            "eps": eps,
        }
        run = partial(_trace_queries, params, model, chosen, budgets, eps)
        curve.l2[objective] = memo("query_curve", key, partial(run, QUERY_ATTACK))["l2"]
        if hsj:
            key = {**key, "attack": HSJ_QUERY_ATTACK, "evals": list(HSJ_EVALS)}
            curve.hsj[objective] = memo("query_curve", key, partial(run, HSJ_QUERY_ATTACK))["l2"]
    return curve


def _trace_queries(
    params: Params, model, chosen: Selection, budgets: list[int], eps: float, attack: str
) -> dict[str, torch.Tensor]:
    """A detection-aware decision-based `attack` (the boundary attack or HopSkipJump) on
    `chosen`, each image done once within `eps`: its distance at each budget (`_Trace`)."""
    trace = _Trace(chosen.x, budgets)
    target = FlowTarget(model, params.profile.scale.eval_batch_size)
    goals, starts = chosen.goals.to(params.device), chosen.starts.to(params.device)
    if attack == HSJ_QUERY_ATTACK:
        detection_aware_hsj(target, chosen.x, goals, starts, chosen.det, budgets[-1], eps=eps, on_query=trace)
    else:
        boundary_attack(
            target,
            chosen.x,
            chosen.y,
            max_queries=budgets[-1],
            starts=starts,
            target_class=goals,
            detector=chosen.det,
            eps=eps,
            seed=params.seed,
            on_step=trace,
        )
    return {"l2": trace.l2}


@dataclass
class CwCurve:
    """Plain CW-L2 against its budget on the same images: per model, one (continuous, 8-bit)
    outcome per budget (Adam steps per binary-search step, binary-search steps)."""

    dataset: str
    eps: float
    budgets: list[tuple[int, int]]
    table_budget: tuple[int, int]  # Table 2's (steps, searches)
    outcomes: dict[str, list[tuple[Outcome, Outcome]]] = field(default_factory=dict)

    def _reference(self) -> int:
        """Where the curve is compared from: Table 2's budget where it is on it, else the smallest."""
        return self.budgets.index(self.table_budget) if self.table_budget in self.budgets else 0

    def claims(self) -> list[dict]:
        """Per model and kind of example (ours): CW-L2 searching longer than at the reference
        budget is undetected more often (the largest budget's rate minus the reference's, a
        paired bootstrap over the same images): is the detector's catch CW's budget?"""
        rows = []
        ref = self._reference()
        (s0, n0), (s1, n1) = self.budgets[ref], self.budgets[-1]
        if ref == len(self.budgets) - 1:
            return rows
        for objective, pairs in self.outcomes.items():
            for column, kind in ((0, ""), (1, ", 8-bit images")):
                last, first = (pairs[i][column].hits(self.eps)[0] for i in (-1, ref))
                rows.append(
                    _paired_ordering(
                        f"{objective}: CW-L2 is undetected more often at {s1} x {n1} than at {s0} x {n0}{kind}",
                        last,
                        first,
                        "(ours) what the detector catches depends on how hard CW searches",
                        "Chapter 4: is the detector's weakness the attack's budget?",
                    )
                )
        return rows

    def table(self) -> Table:
        """Per model and budget: CW's iterations, its undetected rate within eps on continuous
        examples and as 8-bit images with 95 % Wilson intervals, its fooled rate and median L2."""
        rows = []
        for objective, found in self.outcomes.items():
            for (steps, searches), (out, eight) in zip(self.budgets, found, strict=True):
                rows.append(
                    (
                        objective,
                        f"{steps} x {searches}",
                        steps * searches,
                        _rate(out.hits(self.eps)[0]),
                        _rate(eight.hits(self.eps)[0]),
                        _rate(out.hits(self.eps)[1]),
                        _median(out.result.fooled_l2, 1),
                    )
                )
        columns = ("model", "steps x searches", "iterations", "undetected", "8-bit", "fooled", "median L2")
        return Table(columns, rows, note=f"Within eps = {self.eps:.3g}; the same images at every budget.")

    def figure(self):
        """CW-L2's undetected rate within eps against its iterations (a log axis), continuous
        (solid) and as 8-bit images (dashed), with 95 % Wilson bands."""
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        iterations = [steps * searches for steps, searches in self.budgets]
        for objective, found in self.outcomes.items():
            color = None
            for column, style, kind in ((0, "o-", "continuous"), (1, "^--", "8-bit")):
                hits = [pair[column].hits(self.eps)[0] for pair in found]
                bounds = np.array([wilson(int(h.sum()), len(h)) for h in hits])
                (line,) = ax.plot(iterations, bounds[:, 0], style, color=color, label=f"{objective}, {kind}")
                color = line.get_color()
                ax.fill_between(iterations, bounds[:, 1], bounds[:, 2], color=color, alpha=0.12, linewidth=0)
        ax.set_xscale("log")
        ax.set(xlabel="CW iterations (Adam steps x binary-search steps)", ylabel="% undetected within eps")
        ax.set(ylim=(-2, 102))
        ax.set_title(f"CW-L2 against its budget ({self.dataset})", fontsize=10)
        ax.legend(fontsize="small")
        fig.tight_layout()
        return fig

    def numbers(self) -> dict[str, str]:
        """The smallest and largest budget (`cwc_first`, `cwc_last`, as steps x searches) and per
        model CW's undetected rates there and at Table 2's budget, continuous and 8-bit
        (`cwc_<model>_first`, `_table`, `_last`, `_first8`, `_table8`, `_last8`) with their
        median L2 (`_first_l2`, `_table_l2`, `_last_l2`), and the claims' changes from
        Table 2's budget to the largest (`_gain`, `_gain8`)."""
        (s0, n0), (s1, n1) = self.budgets[0], self.budgets[-1]
        found = {"cwc_first": f"{s0} x {n0}", "cwc_last": f"{s1} x {n1}"}
        ref = self._reference()
        for objective, pairs in self.outcomes.items():
            for end, (out, eight) in (("first", pairs[0]), ("table", pairs[ref]), ("last", pairs[-1])):
                found[f"cwc_{objective}_{end}"] = _rate(out.hits(self.eps)[0])
                found[f"cwc_{objective}_{end}8"] = _rate(eight.hits(self.eps)[0])
                found[f"cwc_{objective}_{end}_l2"] = _median(out.result.fooled_l2, 1)
        for c in self.claims():
            name = f"cwc_{c['name'].split(':')[0]}_gain{'8' if c['name'].endswith('8-bit images') else ''}"
            found[name] = f"{c['ours']:+.0f} points [{c['low']:+.0f}, {c['high']:+.0f}]"
        return found


def cw_curve(
    params: Params,
    objectives: list[str],
    n_images: int,
    budgets: tuple[tuple[int, int], ...],
    base: Budgets,
    quantile: float | None = None,
) -> CwCurve:
    """Plain CW-L2 at each of `budgets` (Adam steps, binary-search steps) on the first
    `n_images` of each model's Table 2 images, continuous and as 8-bit images: is what the
    detector lets through a matter of how hard CW searched?"""
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    if not budgets or any(steps < 1 or searches < 1 for steps, searches in budgets):
        raise ValueError(f"budgets must be (steps, searches) pairs of positive integers, got {budgets}")
    q = paper.THRESHOLD[params.dataset][1] if quantile is None else quantile
    table_budget = (base.cw_steps, base.cw_search_steps)
    curve = CwCurve(params.dataset, paper.EPSILON[params.dataset], list(budgets), table_budget)
    test = eval_set(params)
    for objective in objectives:
        model = model_for(params, objective, params.seed)
        chosen = select(params, model, test, n_images, q)
        target = FlowTarget(model, params.profile.scale.eval_batch_size)
        found = []
        for steps, searches in bar(budgets, desc=f"CW budgets, {objective}"):
            spent = dataclasses.replace(base, cw_steps=steps, cw_search_steps=searches)
            out = _memo_attack(params, model, test, chosen, "CW-L2", spent, curve.eps, {})
            found.append((out, on_grid(target, out, chosen.x, chosen.y, chosen.det, aware=False)))
        curve.outcomes[objective] = found
    return curve


def success_curves(curves: dict[str, dict[str, list[float]]], eps_grid: np.ndarray, eps: float, n_images: int):
    """% of attacks that succeed undetected against the L2 budget (a log axis), with 95 %
    Wilson bands over the `n_images` attacked images, one panel per model (Chapter 4)."""
    fig, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 3.6), squeeze=False)
    for ax, (objective, by_attack) in zip(axes[0], curves.items(), strict=True):
        for attack, values in by_attack.items():
            (line,) = ax.plot(eps_grid, values, label=attack)
            band = np.array([wilson(round(v * n_images / 100), n_images)[1:] for v in values])
            ax.fill_between(eps_grid, band[:, 0], band[:, 1], color=line.get_color(), alpha=0.15, linewidth=0)
        ax.axvline(eps, color="grey", linestyle="--", label=f"eps = {eps:.3g}")
        ax.set(xlabel="L2 distance", ylabel="successful and undetected (%)", title=objective, ylim=(-2, 102))
        ax.set_xscale("log")
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    return fig


def roc_figure(table: Table2):
    """ROC curves of the likelihood detector, clean test images against each attack's
    fooling examples, continuous (solid) and 8-bit (dashed), one panel per model; the
    legend gives each curve's AUROC with its 95 % bootstrap interval."""
    fig, axes = plt.subplots(1, len(table.outcomes), figsize=(6.5 * len(table.outcomes), 5.5), squeeze=False)
    for ax, (objective, outcomes) in zip(axes[0], table.outcomes.items(), strict=True):
        clean = table.clean[objective].numpy()
        for attack in outcomes:
            color = None
            for out, style in ((outcomes[attack], "-"), (table.grid[objective][attack], "--")):
                fooled = out.nll[torch.isfinite(out.result.fooled_l2)].numpy()
                if len(fooled) > 1:
                    fpr, tpr = roc_curve(clean, fooled)
                    label = f"{attack}{'' if style == '-' else ', 8-bit'}: {_auroc(clean, out)}"
                    (line,) = ax.plot(fpr, tpr, style, color=color, label=label)
                    color = line.get_color()
        ax.plot([0, 1], [0, 1], color="grey", linewidth=0.5)
        ax.set(xlabel="clean images flagged", ylabel="adversarial examples flagged", title=objective)
        ax.legend(fontsize="x-small", title="AUROC [95 %]", title_fontsize="x-small")
    fig.tight_layout()
    return fig


def attack_examples(table, per_attack: int = 4):
    """Originals and their adversarial examples for each of the paper's attacks and the best
    of all, on the first model, titled
    with the predicted class and the NLL in bits/dim (Chapter 4)."""
    objective, found = next(iter(table.outcomes.items()))
    outcomes = {a: found[a] for a in (*PAPER_ATTACKS, BEST) if a in found}
    x, y = table.originals[objective]
    det = table.detectors[objective]
    k = min(per_attack, len(x))
    fig, axes = plt.subplots(2 * len(outcomes), k, figsize=(1.9 * k, 4.2 * len(outcomes)), squeeze=False)
    for row, (attack, out) in enumerate(outcomes.items()):
        for i in range(k):
            for r, image, label in ((2 * row, x[i], f"y={int(y[i])}"), (2 * row + 1, out.result.adversarial[i], "")):
                ax = axes[r][i]
                ax.imshow(plots.to_image(image), cmap="gray" if image.shape[0] == 1 else None, vmin=0, vmax=1)
                plots.image_axis(ax)
                if label:
                    ax.set_title(label, fontsize=8)
                else:
                    status = "ok" if out.result.success[i] and out.undetected[i] else "failed"
                    ax.set_title(f"{status}, L2 {out.result.l2[i]:.2f}\nNLL {out.nll[i]:.2f}", fontsize=7)
            axes[2 * row][0].set_ylabel(attack, fontsize=8)
    fig.suptitle(f"{objective} model; detector T = {det.threshold_bpd:.2f} bits/dim", fontsize=9)
    fig.tight_layout()
    return fig


def attack_nll(table):
    """NLL (bits/dim) of each attack's successful adversarial examples beside the threshold T (Chapter 4)."""
    fig, axes = plt.subplots(1, len(table.outcomes), figsize=(5.5 * len(table.outcomes), 3.6), squeeze=False)
    for ax, (objective, outcomes) in zip(axes[0], table.outcomes.items(), strict=True):
        for attack, out in outcomes.items():
            values = out.nll[out.result.success].numpy()
            ax.hist(values, bins=20, histtype="step", linewidth=1.5, label=f"{attack} ({len(values)})")
        ax.axvline(table.detectors[objective].threshold_bpd, color="black", linestyle="--", label="threshold T")
        ax.set(xlabel="NLL of the returned image (bits/dim)", title=objective)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def compare_with_foolbox(
    params: Params, n_images: int = 20, boundary_steps: int = 1000, out: Path | None = None
) -> dict:
    """`studylib bench --foolbox`: chapter 4's split model, detector and image selection (the
    first `n_images` of Table 2's seeded order), attacked by our boundary attack and CW-L2 and
    by foolbox's BoundaryAttack (`boundary_steps` steps), L2CarliniWagnerAttack, DDN and FMN
    at the profile's budgets; recorded where `against_foolbox` reads it, and returned."""
    if n_images < 1 or boundary_steps < 1:
        raise ValueError(f"n_images and boundary_steps must be positive, got {n_images}, {boundary_steps}")
    test = eval_set(params)
    model = model_for(params, "split", params.seed)
    ll, _ = eval_log_likelihoods(params, model, test)
    nll = evaluate.nll_bpd(ll, model.n_dims)
    det = Detector.fit(nll, paper.THRESHOLD[params.dataset][1], model.n_dims)
    x_all, y_all = test.tensors()
    idx = _pick(ll, y_all, nll, det, n_images, torch.Generator().manual_seed(params.seed))
    x, y = x_all[idx].to(params.device), y_all[idx].to(params.device)
    eps, budgets = paper.EPSILON[params.dataset], default_budgets(params.profile.name)
    record = {
        "model": model.info["key"],
        "eps": eps,
        "threshold_bpd": det.threshold_bpd,
        "quantile": det.quantile,
        "boundary": reference_attacks.boundary_vs_foolbox(model, x, y, eps, boundary_steps),
        "cw": reference_attacks.cw_vs_foolbox(
            model, x, y, eps, det, budgets.cw_steps, budgets.cw_search_steps, cw_lr(eps)
        ),
        "minimal_l2": reference_attacks.minimal_l2_rows(
            model, x, y, eps, det, budgets.min_l2_steps, FMN_STEP * cw_lr(eps)
        ),
    }
    path = Path(out) if out else reference_attacks.results_path(params.dataset, params.profile.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))
    return record


def _foolbox_record(dataset: str, profile: str) -> dict | None:
    """What `studylib bench --foolbox` recorded for `dataset` at `profile` (None: nothing yet)."""
    path = storage.recorded(reference_attacks.results_path(dataset, profile))
    return json.loads(path.read_text()) if path else None


# The names `foolbox_numbers` gives each recorded row.
FOOLBOX_ROWS = {
    "foolbox BoundaryAttack": "fb_boundary",
    "studylib boundary_attack": "our_boundary",
    "foolbox HopSkipJumpAttack": "fb_hsj",
    "foolbox L2CarliniWagnerAttack": "fb_cw",
    "studylib cw_l2": "our_cw",
    "foolbox DDN": "fb_ddn",
    "foolbox FMN": "fb_fmn",
}


def foolbox_numbers(dataset: str, profile: str = "quick") -> dict[str, str]:
    """The recorded comparison with foolbox for the prose (`chapter.glue`), per row
    `<dataset>_<row>_...` (rows named by `FOOLBOX_ROWS`): a decision-based attack's success
    within eps (`_success`), images scored (`_scored`) and seconds (`_seconds`); a minimiser's
    share fooled (`_fooled`), median L2 (`_l2`) and undetected count (`_undetected`); and our
    CW-L2's median L2 over foolbox's (`<dataset>_cw_ratio`). Empty where nothing is recorded."""
    recorded = _foolbox_record(dataset, profile)
    if recorded is None:
        return {}
    found = {}
    for r in recorded["boundary"] + recorded["cw"] + recorded.get("minimal_l2", []):
        name = f"{dataset}_{FOOLBOX_ROWS[r['attack']]}"
        found[f"{name}_seconds"] = f"{r['seconds']:.0f}"
        if "success_within_eps" in r:
            found[f"{name}_success"] = f"{r['success_within_eps']:.0f} % of {r['images']}"
            found[f"{name}_scored"] = f"{r['images_scored']:,}".replace(",", " ")  # printable: glue pastes its repr
        else:
            found[f"{name}_fooled"] = f"{r['fooled']:.0f} % of {r['images']}"
            found[f"{name}_l2"] = "-" if r["median_l2"] is None else f"{r['median_l2']:.4f}"
            found[f"{name}_undetected"] = f"{r['undetected_count']} of {r['images']}"
    theirs, ours = (r["median_l2"] for r in recorded["cw"])
    if theirs and ours:
        found[f"{dataset}_cw_ratio"] = f"{ours / theirs:.2f}×"
    return found


def against_foolbox(dataset: str = "mnist", profile: str = "quick") -> Table:
    """Our boundary and CW-L2 attacks against foolbox's on the same split model and images,
    as recorded by `studylib bench --foolbox`: the boundary attack's success within eps and
    model queries; CW-L2's share fooled, median L2 and share undetected within eps."""
    columns = ("attack", "budget", "success %", "median L2", "undetected", "images scored", "seconds")
    recorded = _foolbox_record(dataset, profile)
    if recorded is None:
        missing = f"No comparison with foolbox for {dataset}/{profile} yet: run `studylib bench --foolbox`."
        return Table(columns, note=missing)
    rows = [
        (
            r["attack"],
            r["budget"],
            round(r["success_within_eps"], 1),
            None,
            None,
            r["images_scored"],
            round(r["seconds"], 1),
        )
        for r in recorded["boundary"]
    ]
    rows += [
        (
            r["attack"],
            r["budget"],
            round(r["fooled"], 1),
            None if r["median_l2"] is None else round(r["median_l2"], 4),
            f"{r['undetected_count']}/{r['images']}",
            None,
            round(r["seconds"], 1),
        )
        for r in recorded["cw"] + recorded.get("minimal_l2", [])
    ]
    theirs, ours = (r["median_l2"] for r in recorded["cw"])
    ratio = f" CW-L2: our median L2 is {ours / theirs:.2f}x foolbox's (goal: at most 1.2x)." if theirs and ours else ""
    return Table(
        columns,
        rows,
        caption=f"{dataset}, {profile} split model `{recorded['model']}`: eps = {recorded['eps']:.3g}, "
        f"T = {recorded['threshold_bpd']:.3f} bits/dim.",
        note="Success: within eps (boundary), fooled at all (CW-L2); undetected: within eps and below T." + ratio,
    )


STRENGTH_ATTACKS = ("CW-L2", "CW-L2 + detection")


def strength_profile(profile: Profile) -> Profile:
    """The run whose snapshots the strength study attacks: the profile's own split model,
    which keeps `SNAPSHOTS` at `quick`; at other profiles a run of it that keeps them."""
    return profile if profile.scale.snapshots else profile.replace(snapshots=SNAPSHOTS)


def strength(params: Params, n_images: int, budgets: Budgets, quantile: float | None = None) -> list[dict]:
    """Detection against model strength: CW-L2, plain and detection-aware, against each
    snapshot of one split-objective training run, with the detector's threshold re-chosen
    for each snapshot at the paper's recall. One row per snapshot, weakest first."""
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    q = paper.THRESHOLD[params.dataset][1] if quantile is None else quantile
    eps = paper.EPSILON[params.dataset]
    prof = strength_profile(params.profile)
    snapshots = zoo.get_snapshots(params.dataset, "split", prof, params.seed, params.device, precision=params.precision)
    test = eval_set(params)
    rows = []
    for model in bar(snapshots, desc="snapshots"):
        det, outcomes, (x, y), _ = _attack_model(params, model, test, STRENGTH_ATTACKS, n_images, budgets, q, eps)
        ll, _ = eval_log_likelihoods(params, model, test)
        clean = metrics(params, model, test)
        plain, aware = (outcomes[a] for a in STRENGTH_ATTACKS)
        eight = on_grid(FlowTarget(model, params.profile.scale.eval_batch_size), plain, x, y, det, aware=False)
        fooled_l2 = plain.result.fooled_l2[torch.isfinite(plain.result.fooled_l2)]
        rows.append(
            {
                "step": model.info["step"],
                "bpd": clean["bpd"],
                "accuracy": 100 * clean["accuracy"],
                "threshold": det.threshold_bpd,
                "gap": det.threshold_bpd - evaluate.nll_bpd(ll, model.n_dims).median().item(),
                "n_images": len(plain.result.l2),
                "cw": plain.rates(eps),
                "cw_undetected_hits": plain.hits(eps)[0].tolist(),
                "cw8": eight.rates(eps),
                "cw8_undetected_hits": eight.hits(eps)[0].tolist(),
                "cw_aware": aware.rates(eps),
                "cw_median_l2": fooled_l2.median().item() if len(fooled_l2) else float("nan"),
            }
        )
    return rows


def strength_table(rows: list[dict], eps: float) -> Table:
    """The strength table: each snapshot's clean bits/dim and accuracy, T and its distance
    above the median clean NLL, and CW-L2's undetected (fooled) rates within eps."""
    body = []
    for r in rows:
        body.append(
            (
                r["step"],
                round(r["bpd"], 3),
                round(r["accuracy"], 1),
                round(r["threshold"], 2),
                round(r["gap"], 2),
                r["n_images"],
                f"{_rate(torch.tensor(r['cw_undetected_hits']))} ({r['cw'][1]:.0f} %)",
                f"{_rate(torch.tensor(r['cw8_undetected_hits']))} ({r['cw8'][1]:.0f} %)",
                f"{r['cw_aware'][0]:.0f} % ({r['cw_aware'][1]:.0f} %)",
                round(r["cw_median_l2"], 4),
            )
        )
    columns = (
        "step",
        "bits/dim",
        "acc %",
        "T",
        "T − median",
        "images",
        "CW-L2",
        "CW-L2, 8-bit",
        "CW-L2 + det",
        "CW median L2",
    )
    note = (
        f"Rates: undetected and within eps = {eps:.3g}, CW-L2's with its 95 % Wilson interval "
        "(in brackets: fooled the classifier within eps)."
    )
    return Table(columns, body, note=note)


def strength_figure(rows: list[dict], eps: float):
    """Undetected and fooled rates of CW-L2 against each snapshot's clean bits/dim (the axis
    runs from weak to sharp), beside the clean accuracy (Chapter 4)."""
    bpd = [r["bpd"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    bounds = np.array([wilson(sum(r["cw_undetected_hits"]), r["n_images"])[1:] for r in rows])
    undetected = np.array([r["cw"][0] for r in rows])
    ax.errorbar(
        bpd,
        undetected,
        yerr=[undetected - bounds[:, 0], bounds[:, 1] - undetected],
        fmt="o-",
        capsize=3,
        label="CW-L2: undetected (95 % interval)",
    )
    ax.plot(bpd, [r["cw"][1] for r in rows], "o--", label="CW-L2: fooled")
    ax.plot(bpd, [r["cw8"][0] for r in rows], "^-", label="CW-L2, 8-bit images: undetected")
    ax.plot(bpd, [r["cw_aware"][0] for r in rows], "s-", label="CW-L2 + detection: undetected")
    ax.plot(bpd, [r["accuracy"] for r in rows], "k:", label="clean accuracy")
    for r in rows:
        ax.annotate(f"step {r['step']}", (r["bpd"], r["cw"][0]), fontsize=7, textcoords="offset points", xytext=(3, 4))
    ax.invert_xaxis()
    ax.set(xlabel="clean test bits/dim (sharper to the right)", ylabel="% of attacked images", ylim=(-2, 102))
    ax.set_title(f"CW-L2 within eps = {eps:.3g} along one training run", fontsize=10)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def strength_claims(rows: list[dict]) -> list[dict]:
    """Ledger rows (ours, not the paper's): plain CW-L2 is caught more often once the density
    is sharp, as its undetected rate at the first snapshot minus that at the last (different
    images: an unpaired bootstrap), for the continuous examples and as 8-bit images."""
    first, last = rows[0], rows[-1]
    claims = []
    for key, images in (("cw_undetected_hits", ""), ("cw8_undetected_hits", ", 8-bit images")):
        diff, low, high = difference_of_rates(np.array(first[key]), np.array(last[key]), paired=False)
        claims.append(
            directional(
                f"CW-L2 is undetected less often at step {last['step']} than at step {first['step']}{images}",
                diff,
                (low, high),
                n=len(first[key]) + len(last[key]),
                of="attacked images (two snapshots)",
                method="bootstrap",
                statement="(ours) a sharper density catches plain CW-L2 more often",
                unit="points",
                source="Chapter 4's question: is the detector's weakness the models' weakness?",
                note=f"{first['bpd']:.2f} -> {last['bpd']:.2f} bits/dim",
            )
        )
    return claims


def strength_numbers(rows: list[dict]) -> dict[str, str]:
    """The strength study's figures for the chapter's prose (`chapter.glue`): per snapshot i
    (0 the first) its step, bits/dim, accuracy, T above the median clean NLL, and plain
    CW-L2's undetected rates within eps, continuous and 8-bit, with their intervals
    (`strength_<i>_step`, `_bpd`, `_acc`, `_gap`, `_cw`, `_cw8`); the first-to-last drop of
    both (`strength_drop`, `strength_drop8`) and the range of CW's median L2 (`strength_l2`)."""
    found = {}
    for i, r in enumerate(rows):
        found |= {
            f"strength_{i}_step": str(r["step"]),
            f"strength_{i}_bpd": f"{r['bpd']:.2f}",
            f"strength_{i}_acc": f"{r['accuracy']:.1f}",
            f"strength_{i}_gap": f"{r['gap']:.2f}",
            f"strength_{i}_cw": _rate(torch.tensor(r["cw_undetected_hits"])),
            f"strength_{i}_cw8": _rate(torch.tensor(r["cw8_undetected_hits"])),
        }
    for key, name in (("cw_undetected_hits", "strength_drop"), ("cw8_undetected_hits", "strength_drop8")):
        diff, low, high = difference_of_rates(np.array(rows[0][key]), np.array(rows[-1][key]), paired=False)
        found[name] = f"{diff:.0f} points [{low:.0f}, {high:.0f}]"
    l2 = [r["cw_median_l2"] for r in rows]
    found["strength_l2"] = f"{min(l2):.3f}–{max(l2):.3f}"
    return found
