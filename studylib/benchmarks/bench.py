"""Throughput benchmark: training images/s (forward + backward + Adam) and evaluation
images/s of our conditional GLOW, and of the same configuration built from the peer
libraries normflows (Glow blocks, multi-scale flow, class-conditional Gaussians) and FrEIA
(all-in-one GLOW-style coupling blocks in a multi-scale graph, our class-conditional
prior), measured side by side in one process, interleaved, with the same torch settings.

normflows and FrEIA are the `bench` extra, imported only when the peers are asked for."""

from __future__ import annotations

import contextlib
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from studylib import storage
from studylib.book.tables import Table
from studylib.config import Arch, cpu_capability
from studylib.models.flows.reshape import ChannelPad
from studylib.models.priors import ClassGaussianPrior
from studylib.training.build import build_model

SIZE, CLASSES = 32, 10


def peers_path(profile: str, device: str = "cpu") -> Path:
    """Where `studylib bench --peers` records its rows (the ledger folder's bench/; a GPU's
    rows beside the CPU's, not over them)."""
    name = f"peers__{profile}.json" if device == "cpu" else f"peers__{profile}__{device}.json"
    return storage.results_dir() / "bench" / name


@dataclass
class Contender:
    """One model under test: `nll(x, y)` -> (B,) negative log-likelihood in nats of the
    true class, for x of shape (B, c, 32, 32); `note` says how it was built."""

    name: str
    module: nn.Module
    nll: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    note: str

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())


def flow_contender(name: str, model: nn.Module, note: str = "") -> Contender:
    """One of our flows as a contender: the NLL of the true class, one flow pass."""

    def nll(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -model.log_prob(x).gather(1, y[:, None]).squeeze(1)

    return Contender(name, model, nll, note)


def ours(channels: int, arch: Arch) -> Contender:
    """Our conditional GLOW (bf16 autocast, where used, covers the coupling networks only)."""
    model = build_model("cifar10" if channels == 3 else "mnist", "base", arch)
    return flow_contender("studylib", model, f"ConditionalGlow {arch.label()}, Gaussian prior per class")


def _padded(channels: int) -> ChannelPad:
    """The peers get the same noise channels as our flow (log-det included)."""
    return ChannelPad(channels, SIZE)


def normflows_glow(channels: int, arch: Arch) -> Contender:
    """normflows: per level K GlowBlocks (affine coupling with sigmoid scale, LU 1x1
    convolution, actnorm; coupling net conv3x3-ReLU-conv1x1-ReLU-conv3x3, zero-initialised),
    the squeeze at the end of each level as in ours, a class-conditional diagonal Gaussian
    for the half that leaves at each split and for the final latent."""
    import normflows as nf

    pad = _padded(channels)
    flows, merges, q0 = [], [], []
    c, size = 2 * channels, SIZE
    shapes = []
    for level in range(arch.levels):
        blocks = [
            nf.flows.GlowBlock(c, arch.hidden_at(level), split_mode="channel", scale=True) for _ in range(arch.steps)
        ]
        if level > 0:  # normflows runs z -> x: its Squeeze un-squeezes there, squeezes here
            blocks.append(nf.flows.Squeeze())
        flows.append(blocks)
        if level < arch.levels - 1:
            shapes.append((c // 2, size, size))
            c, size = 4 * (c // 2), size // 2
    shapes.append((c, size, size))
    # MultiscaleFlow lists levels from the latent end: reverse ours.
    flows = flows[::-1]
    q0 = [nf.distributions.ClassCondDiagGaussian(s, CLASSES) for s in shapes[::-1]]
    merges = [nf.flows.Merge() for _ in range(arch.levels - 1)]
    model = nf.MultiscaleFlow(q0, flows, merges)
    wrapper = nn.ModuleDict({"pad": pad, "flow": model})

    def nll(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h, logdet = pad(x)
        return -(model.log_prob(h, y) + logdet)

    note = f"nf.MultiscaleFlow of nf.flows.GlowBlock, {arch.label()}, ClassCondDiagGaussian per scale"
    return Contender("normflows", wrapper, nll, note)


def freia_glow(channels: int, arch: Arch) -> Contender:
    """FrEIA: per level K AllInOneBlocks (one affine coupling with our coupling net, a
    learned global affine scaling like actnorm, a soft random orthogonal permutation: FrEIA
    has no learned 1x1 convolution), split and squeeze at the end of each level in a
    GraphINN, and our class-conditional Gaussian prior on the concatenated latent."""
    import FrEIA.framework as Ff
    import FrEIA.modules as Fm

    from studylib.models.flows.coupling import coupling_net

    pad = _padded(channels)
    c = 2 * channels
    nodes = [Ff.InputNode(c, SIZE, SIZE, name="input")]
    leaving = []
    for level in range(arch.levels):
        hidden = arch.hidden_at(level)
        for _ in range(arch.steps):
            nodes.append(
                Ff.Node(
                    nodes[-1],
                    Fm.AllInOneBlock,
                    {
                        "subnet_constructor": lambda cin, cout, h=hidden: coupling_net(cin, h, cout),
                        "permute_soft": True,
                    },
                )
            )
        if level < arch.levels - 1:
            split = Ff.Node(nodes[-1], Fm.Split, {"dim": 0})  # two equal halves
            nodes.append(split)
            leaving.append(Ff.Node(split.out1, Fm.Flatten, {}))
            nodes.append(leaving[-1])
            nodes.append(Ff.Node(split.out0, Fm.IRevNetDownsampling, {}))
            c = 4 * (c // 2)
    nodes.append(Ff.Node(nodes[-1], Fm.Flatten, {}))
    concat = Ff.Node([nodes[-1].out0, *(n.out0 for n in leaving)], Fm.Concat, {"dim": 0})
    nodes += [concat, Ff.OutputNode(concat)]
    inn = Ff.GraphINN(nodes)
    prior = ClassGaussianPrior(2 * channels * SIZE * SIZE, CLASSES)
    wrapper = nn.ModuleDict({"pad": pad, "flow": inn, "prior": prior})

    def nll(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h, logdet = pad(x)
        z, jac = inn(h)
        return -(prior.log_prob(z).gather(1, y[:, None]).squeeze(1) + jac + logdet)

    note = f"Ff.GraphINN of Fm.AllInOneBlock (permute_soft), {arch.label()}, Gaussian prior per class"
    return Contender("FrEIA", wrapper, nll, note)


BUILDERS = {"studylib": ours, "normflows": normflows_glow, "FrEIA": freia_glow}


def _rate(step: Callable[[], None], images: int, iterations: int, cuda: bool) -> float:
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    if cuda:
        torch.cuda.synchronize()
    return images * iterations / (time.perf_counter() - start)


def measure(
    contenders: list[Contender],
    x: torch.Tensor,
    y: torch.Tensor,
    bf16: dict[str, bool],
    iterations: int = 5,
    repeats: int = 3,
) -> dict[str, dict[str, float]]:
    """Median training and evaluation images/s of each contender over `repeats` rounds,
    the contenders interleaved within each round so that a slow spell hits all alike."""
    dims = x[0].numel()
    steps = {}
    for c in contenders:
        opt = torch.optim.Adam(c.module.parameters(), 1e-3)
        autocast = torch.autocast(x.device.type, dtype=torch.bfloat16) if bf16[c.name] else contextlib.nullcontext()

        def train_step(c=c, opt=opt, autocast=autocast) -> None:
            with autocast:
                loss = c.nll(x, y).float().mean() / dims
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        @torch.no_grad()
        def eval_step(c=c) -> None:
            c.nll(x, y)

        c.module.train()
        train_step(), train_step()  # data-dependent init and warm-up
        c.module.eval()
        eval_step()  # warm-up (a compiled contender compiles its evaluation graph here)
        steps[c.name] = (train_step, eval_step)
    rates = {c.name: {"train": [], "eval": []} for c in contenders}
    for _ in range(repeats):
        for c in contenders:
            train_step, eval_step = steps[c.name]
            c.module.train()
            rates[c.name]["train"].append(_rate(train_step, len(x), iterations, x.is_cuda))
            c.module.eval()
            rates[c.name]["eval"].append(_rate(eval_step, len(x), iterations, x.is_cuda))
    return {name: {k: statistics.median(v) for k, v in r.items()} for name, r in rates.items()}


# Memory layouts of the convolution weights: ours are channels_last (`zoo`), the peers' NCHW
# as built; every library is tried in each. The float32 comparison puts all in NCHW, the
# one layout all three run in (FrEIA's Flatten cannot view channels_last activations).
LAYOUTS = {"NCHW": torch.contiguous_format, "channels_last": torch.channels_last}
SAME_LAYOUT = "NCHW"
PRECISIONS = ("fp32", "bf16")
COMPILED = "torch.compile"


def settings(compiled: bool = False) -> list[tuple[str, str, bool]]:
    """(precision, layout, compiled) of every setting measured: both precisions in both
    layouts, and with `compiled` each precision again under torch.compile in `SAME_LAYOUT`
    (compiling costs about a minute per model and setting on 2 cores)."""
    eager = [(precision, layout, False) for layout in LAYOUTS for precision in PRECISIONS]
    return eager + ([(precision, SAME_LAYOUT, True) for precision in PRECISIONS] if compiled else [])


def setting_label(precision: str, layout: str, compiled: bool) -> str:
    """How a row names a setting: "bf16, channels_last", "fp32, NCHW, torch.compile"."""
    return f"{precision}, {layout}" + (f", {COMPILED}" if compiled else "")


def peers(
    profile: str = "quick",
    iterations: int = 5,
    repeats: int = 3,
    batch_size: int | None = None,
    compiled: bool = False,
    progress: bool = True,
    device: str = "cpu",
) -> list[dict]:
    """For the profile's MNIST and CIFAR-10 configurations, on `device`: every contender's training and
    evaluation images/s in float32 and under bf16 autocast, in each memory layout (and,
    with `compiled`, under torch.compile), with parameter counts and how each was built. A
    row's `train_fp32` / `train_bf16` are eager in `SAME_LAYOUT`; `train_best` is its
    fastest setting of all. A setting in which a contender fails is left out of its row
    (bf16: reported as None)."""
    from studylib import data
    from studylib.config import device_label, get_profile, resolve_device
    from studylib.progress import bar

    torch.set_flush_denormal(True)
    dev = resolve_device(device)
    where = device_label(dev)
    prof = get_profile(profile)
    batch = batch_size or prof.scale.batch_size
    rows = []
    todo = settings(compiled)
    progress_bar = bar(total=2 * len(todo), desc="bench settings", disable=not progress)
    for dataset, channels in (("mnist", 1), ("cifar10", 3)):
        arch = prof.arch_for(dataset)
        x, y = (t.to(dev) for t in data.load(dataset, "test", subset=batch).tensors())
        rates: dict[str, dict] = {}
        for precision, layout, compile_it in todo:
            torch.manual_seed(0)
            contenders = [build(channels, arch) for build in BUILDERS.values()]
            for c in contenders:
                c.module.to(dev, memory_format=LAYOUTS[layout])
            usable = [c for c in contenders if _runs(c, x, y, precision == "bf16")]
            if compile_it:
                usable = [Contender(c.name, c.module, torch.compile(c.nll), c.note) for c in usable]
            rates[setting_label(precision, layout, compile_it)] = measure(
                usable, x, y, {c.name: precision == "bf16" for c in usable}, iterations, repeats
            )
            progress_bar.update(1)
        for c in contenders:
            half = rates[setting_label("bf16", SAME_LAYOUT, False)].get(c.name)
            same = rates[setting_label("fp32", SAME_LAYOUT, False)][c.name]
            best = max((r[c.name]["train"], label) for label, r in rates.items() if c.name in r)
            rows.append(
                {
                    "dataset": dataset,
                    "model": c.name,
                    "config": f"{arch.label()}, batch {batch}, {where}",
                    "built": c.note,
                    "parameters": c.parameters,
                    "train_fp32": round(same["train"], 1),
                    "eval_fp32": round(same["eval"], 1),
                    "train_bf16": round(half["train"], 1) if half else None,
                    "eval_bf16": round(half["eval"], 1) if half else None,
                    "train_best": round(best[0], 1),
                    "best_setting": best[1],
                    "cpu": cpu_capability(),  # where bf16 is emulated, its rates are ~10x below fp32's
                }
            )
            for p in PRECISIONS:  # the compiled settings it ran in, when measured
                compiled_rates = rates.get(setting_label(p, SAME_LAYOUT, True), {})
                if c.name in compiled_rates:
                    rows[-1][f"train_{p}_compiled"] = round(compiled_rates[c.name]["train"], 1)
    progress_bar.close()
    return rows


def peers_table(profile: str = "quick", device: str = "cpu") -> Table:
    """The rows `studylib bench --peers` recorded for `profile` on `device` as a table: each
    library's images/s in every setting, and our ratio over the faster peer."""
    path = storage.recorded(peers_path(profile, device))
    if path is None:
        return Table(
            ("data", "library"),
            note=f"No peer benchmark for {profile} on {device} yet: run `studylib bench --peers`.",
        )
    recorded = json.loads(path.read_text())
    compiled = [f"train_{p}_compiled" for p in PRECISIONS if any(f"train_{p}_compiled" in r for r in recorded["rows"])]
    columns = (
        "data",
        "library",
        "params",
        "train fp32",
        "train bf16",
        "eval fp32",
        *(f"train {k.split('_')[1]} compiled" for k in compiled),
        "train best",
        "best setting",
    )
    rows = [
        (
            r["dataset"],
            r["model"],
            f"{r['parameters']:,}",
            round(r["train_fp32"]),
            "fails" if r["train_bf16"] is None else round(r["train_bf16"]),
            round(r["eval_fp32"]),
            *(round(r[k]) if k in r else "fails" for k in compiled),
            round(r["train_best"]),
            r["best_setting"],
        )
        for r in recorded["rows"]
    ]
    kinds = "fp32, bf16 and compiled" if compiled else "fp32 and bf16"
    per_dataset = {r["dataset"]: r["config"] for r in recorded["rows"]}
    one = len(set(per_dataset.values())) == 1
    configs = next(iter(per_dataset.values())) if one else "; ".join(f"{d}: {c}" for d, c in per_dataset.items())
    ratios = " ".join(
        f"{dataset}: ours over the faster peer {ratio['float32']:.2f}x in float32, "
        f"{ratio['best']:.2f}x each at its best."
        for dataset, ratio in recorded["speedups"].items()
    )
    return Table(columns, rows, note=f"Images/s; {configs}; {kinds} with {SAME_LAYOUT} weights. {ratios}")


def _runs(c: Contender, x: torch.Tensor, y: torch.Tensor, bf16: bool) -> bool:
    """Whether the contender's forward and backward run in its layout (under bf16 autocast)."""
    try:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            c.nll(x, y).float().mean().backward()
    except RuntimeError:
        return False
    return True


def speedups(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Per dataset: our training images/s over the faster peer's, in float32 with the same
    layout for all, and each at its best setting (precision and layout)."""
    out = {}
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        mine = [r for r in rows if r["dataset"] == dataset]
        us = next(r for r in mine if r["model"] == "studylib")
        others = [r for r in mine if r["model"] != "studylib"]
        out[dataset] = {
            "float32": us["train_fp32"] / max(r["train_fp32"] for r in others),
            "best": us["train_best"] / max(r["train_best"] for r in others),
        }
    return out
