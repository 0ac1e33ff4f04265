"""The training loop: Adam with warmup and step decay, gradient clipping, a NaN/inf guard,
periodic checkpoints, exact resume after an interrupt, and a tqdm progress bar."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel

from studylib.attacks.pgd import pgd
from studylib.config import Profile, resolve_precision
from studylib.data import ImageDataset
from studylib.models.flows import ConditionalGlow
from studylib.models.flows.actnorm import ActNorm
from studylib.models.gan import Discriminator, gan_losses
from studylib.progress import bar as tqdm
from studylib.storage import load_safely, save_atomic
from studylib.training import distributed
from studylib.training.build import new_model
from studylib.training.objectives import loss_and_stats


class TrainingDiverged(RuntimeError):
    """The loss or the gradient became NaN/inf; the last good checkpoint is kept. Carries the
    step it happened at and the logged curve up to it, so a study can report the failure."""

    def __init__(self, message: str, step: int | None = None, history: list[dict] | None = None):
        super().__init__(message)
        self.step = step
        self.history = list(history or [])


def learning_rate(step: int, profile: Profile, total_steps: int) -> float:
    """Linear warmup over `warmup_steps`, then either x lr_gamma at each milestone fraction
    of training ("step") or a cosine from the peak to zero ("cosine")."""
    warm = min(1.0, (step + 1) / max(1, profile.scale.warmup_steps))
    if profile.recipe.lr_schedule == "cosine":
        done = max(0, step - profile.scale.warmup_steps) / max(1, total_steps - profile.scale.warmup_steps)
        return profile.recipe.lr * warm * 0.5 * (1 + math.cos(math.pi * min(1.0, done)))
    decays = sum(step >= m * total_steps for m in profile.recipe.lr_milestones)
    return profile.recipe.lr * warm * profile.recipe.lr_gamma**decays


def averaged(model: torch.nn.Module, decay: float) -> AveragedModel | None:
    """Polyak/EMA copy of `model`'s parameters (None when `decay` is 0). The decay ramps up
    as min(decay, (1 + n) / (10 + n)) over the n updates so far, so that in a short run the
    first steps' weights do not linger in the average."""
    if decay <= 0:
        return None

    def ema(average: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        rate = min(decay, (1 + int(n)) / (10 + int(n)))
        return average + (current - average) * (1 - rate)

    return AveragedModel(model, avg_fn=ema)


def attacked_batch(
    model: ConditionalGlow, x: torch.Tensor, y: torch.Tensor, objective: str, profile: Profile, seed: int
) -> torch.Tensor:
    """PGD within the profile's adversarial ball that raises each image's NLL under its
    label (under the one class for the unconditional flow): the attacked half of hybrid
    adversarial training. The parameters get no gradient from the search."""
    label = torch.zeros_like(y) if objective == "unconditional" else y

    def nll(images: torch.Tensor) -> torch.Tensor:
        return -model.log_prob(images).float().gather(1, label[:, None]).squeeze(1)

    return pgd(
        nll,
        x,
        profile.recipe.adversarial_eps,
        profile.recipe.adversarial_norm,
        profile.recipe.adversarial_steps,
        seed=seed,
    )


def evaluation_weights(model: torch.nn.Module, ema: AveragedModel | None) -> dict[str, torch.Tensor]:
    """A copy of `model`'s state with the EMA's parameters in place of its own, if any."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if ema is not None:
        state.update({name: p.detach().clone() for name, p in ema.module.named_parameters()})
    return state


@contextlib.contextmanager
def _deferred_interrupt():
    """Turn Ctrl-C into a flag the loop checks between steps, so the state it saves is whole."""
    flag = {"hit": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag["hit"] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class Batch:
    """One step's batch: this process's slice of the global batch and of the padding noise
    (None in one process, where the flow draws its own)."""

    x: torch.Tensor
    y: torch.Tensor
    noise: torch.Tensor | None
    step: int

    def padding(self, model: ConditionalGlow) -> contextlib.AbstractContextManager:
        """The flow's channel padding draws from the global batch's noise under torchrun."""
        return model.pad.given(self.noise) if self.noise is not None else contextlib.nullcontext()


class AdversarialTerm:
    """Hybrid adversarial training: (1 - w) x the objective on the batch plus w x the
    objective on its PGD-attacked copy (`attacked_batch`), w = `profile.recipe.adversarial_weight`."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer

    def __call__(self, batch: Batch, loss: torch.Tensor, stats: dict) -> tuple[torch.Tensor, dict]:
        t = self.trainer
        with t.autocast, batch.padding(t.model):
            attacked = attacked_batch(t.model, batch.x, batch.y, t.objective, t.profile, t.seed + batch.step)
            adv_pxy, adv_logits = t.net(attacked)
        adv_loss, adv_stats = loss_and_stats(adv_pxy, adv_logits, batch.y, t.objective, t.ce_weight, t.model.n_dims)
        w = t.profile.recipe.adversarial_weight
        stats = {**stats, "loss": (1 - w) * stats["loss"] + w * adv_stats["loss"], "adv_bpd": adv_stats["bpd"]}
        return (1 - w) * loss + w * adv_loss, stats

    def after_step(self) -> None:
        """Nothing of its own to update."""

    def state(self) -> dict:
        return {}

    def load(self, state: dict) -> None:
        """Nothing of its own to restore."""


class GanTerm:
    """Flow-GAN: the objective plus w x the generator loss of a discriminator trained
    alongside (one Adam step after the flow's), w = `profile.recipe.gan_weight`."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.disc = Discriminator(trainer.data.channels, trainer.model.num_classes).to(trainer.device)
        self.optimizer = torch.optim.Adam(self.disc.parameters(), lr=trainer.profile.recipe.lr, betas=(0.5, 0.999))
        self.disc_loss: torch.Tensor | None = None

    def __call__(self, batch: Batch, loss: torch.Tensor, stats: dict) -> tuple[torch.Tensor, dict]:
        w = self.trainer.profile.recipe.gan_weight
        with self.trainer.autocast:
            gen_loss, self.disc_loss = gan_losses(self.trainer.model, self.disc, batch.x, batch.y)
        stats = {**stats, "loss": stats["loss"] + w * gen_loss.item()}
        stats |= {"gan_generator": gen_loss.item(), "gan_discriminator": self.disc_loss.item()}
        return loss + w * gen_loss, stats

    def after_step(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.disc_loss.backward()
        self.optimizer.step()

    def state(self) -> dict:
        return {"disc": self.disc.state_dict(), "disc_opt": self.optimizer.state_dict()}

    def load(self, state: dict) -> None:
        self.disc.load_state_dict(state["disc"])
        self.optimizer.load_state_dict(state["disc_opt"])


class Trainer:
    """What one training run holds (model, optimiser, EMA, loss terms, the batch generator,
    the logged curve) and its one step; `train` runs it and handles what happens between
    steps. Under torchrun every rank draws the same global batch and trains on its slice."""

    def __init__(
        self,
        model: ConditionalGlow,
        data: ImageDataset,
        objective: str,
        profile: Profile,
        ce_weight: float,
        seed: int,
        device: torch.device,
        precision: str,
    ):
        self.rank, self.size = distributed.world()
        if profile.scale.batch_size % self.size:
            raise ValueError(f"batch size {profile.scale.batch_size} does not split over {self.size} processes")
        if profile.recipe.gan_weight > 0 and self.size > 1:
            raise ValueError("Flow-GAN training (gan_weight > 0) runs in one process, not under torchrun")
        self.model, self.data, self.objective, self.profile = model, data, objective, profile
        self.ce_weight, self.seed, self.device = ce_weight, seed, device
        share = profile.scale.batch_size // self.size
        self.part = slice(self.rank * share, (self.rank + 1) * share)
        model.to(device).train()
        self.net = distributed.wrap(model, device)
        self.forward = torch.compile(self.net) if profile.recipe.compile else self.net  # the objective's pass only
        self.optimizer = torch.optim.Adam(model.parameters(), lr=profile.recipe.lr)
        self.ema = averaged(model, profile.recipe.ema_decay)
        self.adversarial = AdversarialTerm(self) if profile.recipe.adversarial_weight > 0 else None
        self.gan = GanTerm(self) if profile.recipe.gan_weight > 0 else None
        self.augment = profile.recipe.augment_mnist or data.flip  # CIFAR-10 (flip) keeps its augmentation
        self.batches = torch.Generator().manual_seed(seed)
        self.step, self.history, self.window, self.seconds = 0, [], [], 0.0
        self.precision = resolve_precision(precision, device, profile.recipe.bf16)
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    @property
    def terms(self) -> list[AdversarialTerm | GanTerm]:
        """The loss terms beyond the objective, in the order they are added."""
        return [t for t in (self.adversarial, self.gan) if t is not None]

    def state(self) -> dict:
        """Everything a resumed run needs to continue exactly (the checkpoint's contents)."""
        cuda = self.device.type == "cuda"
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "disc": None,
            "disc_opt": None,
            **(self.gan.state() if self.gan is not None else {}),
            "batches": self.batches.get_state(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if cuda else None,
            "step": self.step,
            "history": self.history,
            "window": self.window,
            "seconds": self.seconds,
        }

    def resume(self, checkpoint: Path) -> None:
        """Continue from `checkpoint` where it exists; else start the seeded run."""
        if checkpoint.exists():
            self.load(load_safely(checkpoint, self.device))
        else:
            torch.manual_seed(self.seed)

    def load(self, state: dict) -> None:
        """Continue from `state()` as saved by an earlier run."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        for term in self.terms:
            term.load(state)
        self.batches.set_state(state["batches"])
        torch.set_rng_state(state["rng"])
        if self.device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.step, self.history, self.window = state["step"], state["history"], state["window"]
        self.seconds = state["seconds"]

    def draw(self) -> Batch:
        """The next global batch (and, under torchrun, its padding noise), sliced to this process."""
        index = torch.randint(len(self.data), (self.profile.scale.batch_size,), generator=self.batches)
        x, y = self.data.batch(index, self.batches, self.augment)
        x, y = x.to(self.device), y.to(self.device)
        if self.size == 1:
            return Batch(x, y, None, self.step)
        noise = torch.rand(x.shape).to(self.device)
        if not all(bool(m.initialized) for m in self.model.modules() if isinstance(m, ActNorm)):
            with torch.no_grad(), self.model.pad.given(noise):
                self.model(x)  # ActNorm's data-dependent init from the global batch, as in one process
        return Batch(x[self.part], y[self.part], noise[self.part], self.step)

    def one_step(self, lr: float, interrupted: bool) -> tuple[dict, float, bool]:
        """One optimiser step at learning rate `lr`: (the batch's statistics, the gradient
        norm before clipping, whether any process was interrupted). The parameters are
        updated only when the loss and the gradient are finite."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = self.draw()
        with self.autocast, batch.padding(self.model):
            log_pxy, logits = self.forward(batch.x)
        loss, stats = loss_and_stats(log_pxy, logits, batch.y, self.objective, self.ce_weight, self.model.n_dims)
        for term in self.terms:
            loss, stats = term(batch, loss, stats)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.profile.recipe.clip_grad_norm).item()
        if self.size > 1:  # the global batch's statistics, and a Ctrl-C seen by any rank stops all
            *values, hit = distributed.mean([*stats.values(), float(interrupted)], self.device)
            stats, interrupted = dict(zip(stats, values, strict=True)), hit > 0
        if math.isfinite(stats["loss"]) and math.isfinite(grad_norm):
            self.optimizer.step()
            for term in self.terms:
                term.after_step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
        return stats, grad_norm, interrupted

    def count(self, stats: dict, seconds: float) -> None:
        """A step done in `seconds`: its statistics join the window of the next log entry."""
        self.step += 1
        self.seconds += seconds
        self.window.append(stats)

    def log(self, lr: float, bar: tqdm) -> None:
        """Append the mean of the steps since the last entry to the curve and show it."""
        mean = {k: sum(w[k] for w in self.window) / len(self.window) for k in self.window[0]}
        self.history.append({"step": self.step, "lr": lr, "seconds": self.seconds, **mean})
        bar.set_postfix(loss=f"{mean['loss']:.3f}", bpd=f"{mean['bpd']:.2f}", acc=f"{mean['acc']:.2f}")
        self.window.clear()


@dataclass
class Saves:
    """What a run writes between steps, from rank 0 only: the evaluation weights (the EMA's
    when there is one) at `steps` to `folder`/snapshot-<step>.pt, and the checkpoint every
    `every` steps and on Ctrl-C."""

    checkpoint: Path
    folder: Path | None
    steps: set[int]
    every: int

    def __post_init__(self):
        if self.steps and self.folder is None:
            raise ValueError("the profile asks for snapshots but no snapshot_dir was given")

    def after(self, run: Trainer, interrupted: bool) -> None:
        if not distributed.is_main():
            return
        if run.step in self.steps:
            weights = evaluation_weights(run.model, run.ema)
            save_atomic({"step": run.step, "state_dict": weights}, self.folder / f"snapshot-{run.step}.pt")
        if run.step % self.every == 0 or interrupted:
            save_atomic(run.state(), self.checkpoint)


def _diverged(trainer: Trainer, stats: dict, grad_norm: float, checkpoint: Path) -> TrainingDiverged:
    """The error for a non-finite loss or gradient, carrying the curve so far."""
    kept = f"the last good checkpoint ({checkpoint}) is kept" if checkpoint.exists() else "no checkpoint yet"
    return TrainingDiverged(
        f"non-finite loss or gradient at step {trainer.step} (loss {stats['loss']}, grad norm {grad_norm}); "
        f"{kept}. Try a lower learning rate or a smaller clipping norm.",
        step=trainer.step,
        history=trainer.history,
    )


def train(
    model: ConditionalGlow,
    data: ImageDataset,
    *,
    objective: str,
    profile: Profile,
    total_steps: int,
    ce_weight: float,
    seed: int,
    checkpoint: Path,
    device: torch.device,
    progress: bool = True,
    on_step: Callable[[int], None] | None = None,
    snapshot_dir: Path | None = None,
    budget_seconds: float | None = None,
    precision: str = "auto",
) -> dict:
    """Train `model` in place for `total_steps` (a `Trainer`), resuming from `checkpoint`
    when it exists, in `precision` (bf16 only where native), logging every `log_every` steps
    and writing `Saves`; with `budget_seconds` it stops after the first step past that many
    seconds (`studylib probe`). Ctrl-C saves a checkpoint and re-raises KeyboardInterrupt; a
    rerun continues to the same result. The model ends in eval mode with the evaluation
    weights. Returns {"history", "train_seconds", "steps", "batch_per_process", "precision"}."""
    torch.set_flush_denormal(True)
    if budget_seconds is not None and distributed.world()[1] > 1:
        raise ValueError("a time budget (budget_seconds) runs in one process, not under torchrun")
    run = Trainer(model, data, objective, profile, ce_weight, seed, device, precision)
    saves = Saves(checkpoint, snapshot_dir, set(profile.snapshot_steps(total_steps)), profile.scale.checkpoint_every)
    run.resume(checkpoint)
    title, shown = f"train {data.name}/{objective} in {run.precision}", progress and distributed.is_main()
    bar = tqdm(total=total_steps, initial=run.step, desc=title, disable=not shown)
    with _deferred_interrupt() as interrupt, bar:
        while run.step < total_steps:
            started = time.perf_counter()
            lr = learning_rate(run.step, profile, total_steps)
            stats, grad_norm, interrupt["hit"] = run.one_step(lr, interrupt["hit"])
            if not (math.isfinite(stats["loss"]) and math.isfinite(grad_norm)):
                raise _diverged(run, stats, grad_norm, checkpoint)
            run.count({**stats, "grad_norm": grad_norm}, time.perf_counter() - started)
            spent = budget_seconds is not None and run.seconds >= budget_seconds
            if run.step % profile.scale.log_every == 0 or run.step == total_steps or spent:
                run.log(lr, bar)
            bar.update(1)
            if on_step is not None:
                on_step(run.step)
            saves.after(run, interrupt["hit"])
            if interrupt["hit"]:
                raise KeyboardInterrupt(f"training interrupted at step {run.step}; checkpoint saved to {checkpoint}")
            if spent:
                break
    model.load_state_dict(evaluation_weights(model, run.ema))
    model.eval()
    return {
        "history": run.history,
        "train_seconds": run.seconds,
        "steps": run.step,
        "batch_per_process": profile.scale.batch_size // run.size,
        "precision": run.precision,
    }


def fit(
    model_spec: dict, profile: Profile, data: ImageDataset, checkpoint: Path, device: torch.device, **options
) -> tuple[ConditionalGlow, dict]:
    """The model `model_spec` describes (`zoo.spec`: dataset, objective, seed, weight), drawn
    from its seed (`build.new_model`) and trained on `data` for `profile`'s steps (`train`,
    with its `options`): the one way the cache and the probe build and train a model.
    Returns (model, record)."""
    dataset, objective, seed = model_spec["dataset"], model_spec["objective"], model_spec["seed"]
    model = new_model(dataset, objective, profile, seed)
    record = train(
        model,
        data,
        objective=objective,
        profile=profile,
        total_steps=profile.steps_for(dataset),
        ce_weight=model_spec["ce_weight"],
        seed=seed,
        checkpoint=checkpoint,
        device=device,
        **options,
    )
    return model, record
