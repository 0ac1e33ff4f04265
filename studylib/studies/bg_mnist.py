"""Chapter 06, section 5: BG-MNIST-X. Table 3 (accuracy and bits/dim as the background
gets sharper), its samples (Figure 5) and interpolations (Figure 6), and the verdict:
does BG-MNIST classify like MNIST and interpolate like CIFAR-10?"""

from __future__ import annotations

from studylib import data
from studylib.book import paper, plots
from studylib.book.chapter import Params
from studylib.book.ledger import claim
from studylib.config import DATASETS, check_choice
from studylib.studies.common import class_samples, eval_set, metrics, model_for, train_info
from studylib.studies.interpolations import (
    InterpolationStudy,
    interpolation_curves,
    interpolation_strip,
    interpolation_study,
)

BLURS = ("0", "1", "5")


def variant(blur: int, blurs: list[int]) -> str:
    """The dataset name of BG-MNIST-`blur`, after checking `blur` and Table 3's `blurs`."""
    for b in (blur, *blurs):
        check_choice("blur", str(b), BLURS)
    return f"bg-mnist-{blur}"


def figure5(params: Params, temperature: float) -> None:
    """The variant's test images and samples of its model from p(x|y) (the paper's Figure 5)."""
    x, _ = data.load(params.dataset, "test", subset=80, seed=params.seed).tensors()
    plots.image_grid(x, nrow=10, title=f"{params.dataset}: test images")
    model = model_for(params, params.objective, params.seed)
    class_samples(model, 8, temperature, data.CLASSES[params.dataset])


def table3(params: Params, datasets: list[str], objective: str = "reweighted") -> list[dict]:
    """Accuracy and bits/dim per dataset (the paper's Table 3: MNIST, BG-MNIST-5/1/0, CIFAR-10)."""
    rows = []
    for name in datasets:
        check_choice("dataset", name, DATASETS)
        model = model_for(params, objective, params.seed, dataset=name)
        scores = metrics(params, model, eval_set(params, name))
        rows.append({"dataset": name, **scores, "paper": paper.TABLE3.get(name), **train_info(model)})
    return rows


def table3_text(rows: list[dict]) -> str:
    """Table 3, ours beside the paper's."""
    lines = [f"{'dataset':<12} {'paper acc %':>11} {'ours acc %':>11} {'paper bpd':>10} {'ours bpd':>9}"]
    for r in rows:
        p_acc, p_bpd = r["paper"]
        lines.append(f"{r['dataset']:<12} {p_acc:>11} {100 * r['accuracy']:>11.1f} {p_bpd:>10.2f} {r['bpd']:>9.2f}")
    return "\n".join(lines)


def figure6(params: Params, pairs: int) -> dict[str, InterpolationStudy]:
    """Interpolations on MNIST, the variant and CIFAR-10, their curves, a strip of the
    variant, and one summary line per dataset (the paper's Figure 6)."""
    names = ("mnist", params.dataset, "cifar10")
    studies = {name: interpolation_study(params, name, params.objective, pairs) for name in names}
    interpolation_curves(studies)
    interpolation_strip(studies[params.dataset], pair=0)
    for name, study in studies.items():
        s = study.summary()
        print(
            f"{name:<11} paths entirely below T {100 * s['paths_below_threshold']:5.1f} %, "
            f"mid-path rise {s['mid_rise_sd']:+.2f} clean-NLL sd, middle rises on {100 * s['paths_rising']:.0f} %"
        )
    return studies


def verdict(rows: list[dict], studies: dict[str, InterpolationStudy], bg: str) -> tuple[str, list[dict]]:
    """Does `bg` classify like MNIST (accuracy closer to MNIST's than CIFAR-10's) and
    interpolate like CIFAR-10 (share of paths below T and mid-path rise both closer to
    CIFAR-10's)? Computed from the numbers; the text and the ledger rows."""
    acc = {r["dataset"]: r["accuracy"] for r in rows}
    s = {name: study.summary() for name, study in studies.items()}
    classifies_like_mnist = abs(acc[bg] - acc["mnist"]) < abs(acc[bg] - acc["cifar10"])

    def near_cifar(key: str) -> bool:
        return abs(s[bg][key] - s["cifar10"][key]) < abs(s[bg][key] - s["mnist"][key])

    interpolates_like_cifar = near_cifar("paths_below_threshold") and near_cifar("mid_rise_sd")
    text = f"{bg} classifies like MNIST: {classifies_like_mnist}; interpolates like CIFAR-10: {interpolates_like_cifar}"
    claims = [
        claim(
            f"{r['dataset']} accuracy / bits/dim",
            f"{100 * r['accuracy']:.1f} / {r['bpd']:.2f}",
            f"{r['paper'][0]} / {r['paper'][1]}",
            "% / bpd",
        )
        for r in rows
    ]
    claims.append(claim(f"{bg}: paths below T", round(100 * s[bg]["paths_below_threshold"], 1), None, "%"))
    both = str(classifies_like_mnist and interpolates_like_cifar)
    claims.append(claim(f"{bg} classifies like MNIST and interpolates like CIFAR-10", both, "True"))
    return text, claims
