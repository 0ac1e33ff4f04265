"""The overview chapter's reading of the recorded benchmarks: what the `paper` profile costs
on a GPU (`studylib probe`) and the peer libraries on that GPU (`studylib bench --peers`)."""

from __future__ import annotations

from pathlib import Path

from studylib.benchmarks import bench, probe
from studylib.book import ledger, paper
from studylib.book.tables import Table
from studylib.studies import recipe


def at_scale(profile: str = "paper", device: str = "cuda") -> tuple[Table, Table]:
    """(Table of the probe rows, table of the peer benchmark) recorded for
    `profile` on `device`; each says how to make it when it is missing."""
    return probe.table(profile, device), bench.peers_table(profile, device)


def at_scale_numbers(profile: str = "paper", device: str = "cuda") -> dict[str, str]:
    """The numbers the section on the paper's scale quotes, formatted for the prose: read from
    the recorded probe and peer rows on `device`, the peers on 2 CPU cores, the `quick` recipe's
    row and the paper's Table 1; empty when the probe or the peers were not recorded."""
    probed = _recorded(probe.results_path(profile, device))
    peers = _recorded(bench.peers_path(profile, device))
    cpu = _recorded(bench.peers_path("quick", "cpu"))
    if not probed or not peers or not cpu:
        return {}
    run = next(r for r in probed if r["dataset"] == "mnist")
    speed = {(r["dataset"], r["model"]): r for r in peers["rows"]}
    on_cpu = {(r["dataset"], r["model"]): r for r in cpu["rows"]}
    ours = {d: speed[d, "studylib"] for d in ("mnist", "cifar10")}
    quick = next(r for r in recipe.rows("mnist", "split") if r["lever"] == recipe.QUICK_RECIPE)
    paper_acc, paper_bpd = paper.TABLE1["mnist"]["split"]
    return {
        "gpu_torch": ".".join(run["torch"].split(".")[:2]),
        "gpu_hours": f"{run['projected_hours']:.1f}",
        "gpu_rate": f"{run['steady_images_per_s']:.0f}",
        "gpu_steps": f"{run['total_steps']:,}".replace(",", " "),
        "gpu_batch": str(run["batch_size"]),
        "gpu_minutes": f"{run['minutes']:.1f}",
        "gpu_epochs": f"{run['epochs']:.2f}",
        "gpu_accuracy": f"{run['accuracy']:.1f} %",
        "gpu_bpd": f"{run['bpd']:.2f}",
        "paper_accuracy": f"{paper_acc} %",
        "paper_bpd": f"{paper_bpd:.2f}",
        "quick_accuracy": f"{quick['accuracy']:.1f} %",
        "quick_bpd": f"{quick['bpd']:.2f}",
        "quick_minutes": f"{quick['minutes']:.0f}",
        "gpu_memory": f"{run['peak_memory_gib']:.1f}",
        "bf16_rate": f"{ours['mnist']['train_bf16']:.0f}",
        "fp32_rate": f"{ours['mnist']['train_fp32']:.0f}",
        "loop_share": f"{100 * run['steady_images_per_s'] / ours['mnist']['train_fp32']:.0f} %",
        **{
            f"freia_{d}": f"{ours[d]['train_best'] / speed[d, 'FrEIA']['train_best']:.2f}×"
            for d in ("mnist", "cifar10")
        },
        **{
            f"normflows_{d}": f"{speed[d, 'normflows']['train_best'] / ours[d]['train_best']:.2f}×"
            for d in ("mnist", "cifar10")
        },
        **{
            f"cpu_{d}": f"{on_cpu[d, 'studylib']['train_fp32'] / on_cpu[d, 'FrEIA']['train_fp32']:.2f}×"
            for d in ("mnist", "cifar10")
        },
        "cifar_rate": f"{ours['cifar10']['train_fp32']:.0f}",
        "cifar_hours": f"{150 * 50_000 / ours['cifar10']['train_fp32'] / 3600:.1f}",
    }


def _recorded(path: Path) -> list | dict:
    """The rows recorded at `path` (in the results folder), else the committed ones."""
    return ledger.read_recorded(path)
