"""The training loop: Adam with warmup and step decay, gradient clipping, a NaN/inf guard,
periodic checkpoints, exact resume after an interrupt, and a tqdm progress bar."""

from __future__ import annotations

import contextlib
import io
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel
from torch.torch_version import TorchVersion

from studylib.attacks.pgd import pgd
from studylib.config import Profile, resolve_precision
from studylib.data import ImageDataset
from studylib.models.flows import ConditionalGlow
from studylib.models.flows.actnorm import ActNorm
from studylib.models.gan import Discriminator, gan_losses
from studylib.progress import bar as tqdm
from studylib.training import distributed
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
    warm = min(1.0, (step + 1) / max(1, profile.warmup_steps))
    if profile.lr_schedule == "cosine":
        done = max(0, step - profile.warmup_steps) / max(1, total_steps - profile.warmup_steps)
        return profile.lr * warm * 0.5 * (1 + math.cos(math.pi * min(1.0, done)))
    decays = sum(step >= m * total_steps for m in profile.lr_milestones)
    return profile.lr * warm * profile.lr_gamma**decays


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

    return pgd(nll, x, profile.adversarial_eps, profile.adversarial_norm, profile.adversarial_steps, seed=seed)


def evaluation_weights(model: torch.nn.Module, ema: AveragedModel | None) -> dict[str, torch.Tensor]:
    """A copy of `model`'s state with the EMA's parameters in place of its own, if any."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if ema is not None:
        state.update({name: p.detach().clone() for name, p in ema.module.named_parameters()})
    return state


def save_atomic(obj: object, path: Path) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_safely(path: Path | io.BytesIO, map_location: str | torch.device = "cpu") -> object:
    """torch.load that runs no code: tensors and plain Python types only (weights_only), so a
    model file received from someone else cannot run anything on load. torch's own version
    string, which model entries saved before this recorded as its class, is allowed."""
    with torch.serialization.safe_globals([TorchVersion]):
        return torch.load(path, map_location=map_location, weights_only=True)


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
    """Train `model` in place for `total_steps`, resuming from `checkpoint` when it exists,
    in `precision` (`config.resolve_precision`: auto is bf16 only where it is native).

    Under torchrun every rank draws the same global batch (and padding noise) and trains on
    its 1/N slice with DistributedDataParallel, so N processes follow the one-process run;
    rank 0 alone writes the checkpoint.

    With `profile.ema_decay` > 0 the model ends with the moving average of its weights.
    With `profile.gan_weight` w > 0 it trains as a conditional Flow-GAN: the objective plus
    w x the generator loss of a discriminator trained alongside (kept in the checkpoint,
    dropped with it at the end).
    At each of `profile.snapshot_steps` the weights used for evaluation (the EMA's when
    there is one) are saved to `snapshot_dir`/snapshot-<step>.pt as {"step", "state_dict"}.
    With `budget_seconds` training stops after the first step past that many seconds (a probe
    of the run's start at its own learning-rate schedule; `studylib probe`).
    Returns {"history": [...], "train_seconds": s, "steps": n, "precision": "fp32" | "bf16"}.
    Ctrl-C saves a checkpoint and re-raises KeyboardInterrupt; rerunning continues to the
    same result as an uninterrupted run."""
    torch.set_flush_denormal(True)
    rank, size = distributed.world()
    if profile.batch_size % size:
        raise ValueError(f"batch size {profile.batch_size} does not split over {size} processes")
    if budget_seconds is not None and size > 1:
        raise ValueError("a time budget (budget_seconds) runs in one process, not under torchrun")
    part = slice(rank * profile.batch_size // size, (rank + 1) * profile.batch_size // size)
    model.to(device).train()
    net = distributed.wrap(model, device)
    forward = torch.compile(net) if profile.compile else net  # the objective's pass only
    optimizer = torch.optim.Adam(model.parameters(), lr=profile.lr)
    ema = averaged(model, profile.ema_decay)
    disc, disc_opt = None, None
    if profile.gan_weight > 0:
        if size > 1:
            raise ValueError("Flow-GAN training (gan_weight > 0) runs in one process, not under torchrun")
        disc = Discriminator(data.channels, model.num_classes).to(device)
        disc_opt = torch.optim.Adam(disc.parameters(), lr=profile.lr, betas=(0.5, 0.999))
    augment = profile.augment_mnist or data.flip  # CIFAR-10 (flip) keeps its augmentation
    batches = torch.Generator().manual_seed(seed)
    step, history, window, seconds = 0, [], [], 0.0
    if checkpoint.exists():
        state = load_safely(checkpoint, device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        if disc is not None:
            disc.load_state_dict(state["disc"])
            disc_opt.load_state_dict(state["disc_opt"])
        batches.set_state(state["batches"])
        torch.set_rng_state(state["rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        step, history, window, seconds = state["step"], state["history"], state["window"], state["seconds"]
    else:
        torch.manual_seed(seed)

    def save() -> None:
        if not distributed.is_main():
            return
        cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "disc": disc.state_dict() if disc is not None else None,
            "disc_opt": disc_opt.state_dict() if disc is not None else None,
            "batches": batches.get_state(),
            "rng": torch.get_rng_state(),
            "cuda_rng": cuda_rng,
            "step": step,
            "history": history,
            "window": window,
            "seconds": seconds,
        }
        save_atomic(state, checkpoint)

    snapshot_steps = set(profile.snapshot_steps(total_steps))
    if snapshot_steps and snapshot_dir is None:
        raise ValueError("the profile asks for snapshots but no snapshot_dir was given")

    def snapshot() -> None:
        if distributed.is_main():
            weights = evaluation_weights(model, ema)
            save_atomic({"step": step, "state_dict": weights}, snapshot_dir / f"snapshot-{step}.pt")

    precision = resolve_precision(precision, device, profile.bf16)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    shown = progress and distributed.is_main()
    bar = tqdm(total=total_steps, initial=step, desc=f"train {data.name}/{objective} in {precision}", disable=not shown)
    with _deferred_interrupt() as interrupt, bar:
        while step < total_steps:
            started = time.perf_counter()
            lr = learning_rate(step, profile, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            index = torch.randint(len(data), (profile.batch_size,), generator=batches)
            x, y = data.batch(index, batches, augment)
            x, y = x.to(device), y.to(device)
            noise = torch.rand(x.shape).to(device) if size > 1 else None  # the one-process draw
            if size > 1 and not all(bool(m.initialized) for m in model.modules() if isinstance(m, ActNorm)):
                with torch.no_grad(), model.pad.given(noise):
                    model(x)  # ActNorm's data-dependent init from the global batch, as in one process
            with autocast, model.pad.given(noise[part]) if size > 1 else contextlib.nullcontext():
                log_pxy, logits = forward(x[part])
            loss, stats = loss_and_stats(log_pxy, logits, y[part], objective, ce_weight, model.n_dims)
            if profile.adversarial_weight > 0:  # hybrid adversarial training
                with autocast, model.pad.given(noise[part]) if size > 1 else contextlib.nullcontext():
                    attacked = attacked_batch(model, x[part], y[part], objective, profile, seed + step)
                    adv_pxy, adv_logits = net(attacked)
                adv_loss, adv_stats = loss_and_stats(adv_pxy, adv_logits, y[part], objective, ce_weight, model.n_dims)
                w = profile.adversarial_weight
                loss = (1 - w) * loss + w * adv_loss
                stats = {**stats, "loss": (1 - w) * stats["loss"] + w * adv_stats["loss"], "adv_bpd": adv_stats["bpd"]}
            if disc is not None:  # Flow-GAN: the flow also tries to fool the discriminator
                with autocast:
                    gen_loss, disc_loss = gan_losses(model, disc, x, y)
                loss = loss + profile.gan_weight * gen_loss
                stats = {**stats, "loss": stats["loss"] + profile.gan_weight * gen_loss.item()}
                stats |= {"gan_generator": gen_loss.item(), "gan_discriminator": disc_loss.item()}
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), profile.clip_grad_norm).item()
            if size > 1:  # the global batch's statistics, and a Ctrl-C seen by any rank stops all
                *values, hit = distributed.mean([*stats.values(), float(interrupt["hit"])], device)
                stats, interrupt["hit"] = dict(zip(stats, values, strict=True)), hit > 0
            if not (math.isfinite(stats["loss"]) and math.isfinite(grad_norm)):
                kept = (
                    f"the last good checkpoint ({checkpoint}) is kept" if checkpoint.exists() else "no checkpoint yet"
                )
                raise TrainingDiverged(
                    f"non-finite loss or gradient at step {step} (loss {stats['loss']}, grad norm {grad_norm}); "
                    f"{kept}. Try a lower learning rate or a smaller clipping norm.",
                    step=step,
                    history=history,
                )
            optimizer.step()
            if disc is not None:
                disc_opt.zero_grad(set_to_none=True)
                disc_loss.backward()
                disc_opt.step()
            if ema is not None:
                ema.update_parameters(model)
            step += 1
            seconds += time.perf_counter() - started
            window.append({**stats, "grad_norm": grad_norm})
            spent = budget_seconds is not None and seconds >= budget_seconds
            if step % profile.log_every == 0 or step == total_steps or spent:
                mean = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
                history.append({"step": step, "lr": lr, "seconds": seconds, **mean})
                bar.set_postfix(loss=f"{mean['loss']:.3f}", bpd=f"{mean['bpd']:.2f}", acc=f"{mean['acc']:.2f}")
                window.clear()
            bar.update(1)
            if on_step is not None:
                on_step(step)
            if step in snapshot_steps:
                snapshot()
            if step % profile.checkpoint_every == 0 or interrupt["hit"]:
                save()
            if interrupt["hit"]:
                raise KeyboardInterrupt(f"training interrupted at step {step}; checkpoint saved to {checkpoint}")
            if spent:
                break
    model.load_state_dict(evaluation_weights(model, ema))
    model.eval()
    per_process = profile.batch_size // size
    return {
        "history": history,
        "train_seconds": seconds,
        "steps": step,
        "batch_per_process": per_process,
        "precision": precision,
    }
