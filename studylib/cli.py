"""`studylib` command line: train, evaluate, inspect the model cache, benchmark."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import warnings
from pathlib import Path

from studylib.config import (
    DATASETS,
    DEVICES,
    LR_SCHEDULES,
    OBJECTIVES,
    PRECISIONS,
    PROFILES,
    READOUTS,
    TRAIN_OBJECTIVES,
)
from studylib.data import DataError
from studylib.training.loop import TrainingDiverged

EPILOG = """examples:
  studylib train --dataset mnist --objective reweighted --profile quick
  studylib evaluate --dataset cifar10 --objective split --profile quick --subset 2000
  studylib cache list
  studylib bench --dataset cifar10 --levels 3 --steps 8 --hidden 64
  studylib probe --profile paper --dataset mnist --objective split --minutes 3
  studylib book run --profile smoke --chapters 01
  studylib book sync --profile quick
  studylib book html

Data come from $STUDYLIB_DATA (a folder with MNIST/raw/ and cifar10.npz), else torchvision
downloads them; trained models are cached under $STUDYLIB_HOME (default ~/.cache/studylib).
Profiles: smoke (seconds, meaningless numbers), quick (the CPU-scale study), paper (appendix B, GPU)."""


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument(
        "--objective",
        required=True,
        choices=TRAIN_OBJECTIVES,
        help="unconditional: one class, the label unused (the flow beside Base that eq. 4 compares it with)",
    )
    p.add_argument("--profile", default="quick", choices=PROFILES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--ce-weight", type=float, default=None, help="override the profile's cross-entropy weight w")
    p.add_argument(
        "--budget", type=float, default=1.0, help="train for this multiple of the profile's steps (chapter 10's sweep)"
    )
    p.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="how a model not yet cached trains: auto is bf16 where the hardware runs it natively, else fp32",
    )


def _widths(text: str) -> tuple[int, ...]:
    """--hidden: one coupling width (64) or one per level (32,64,64)."""
    try:
        return tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a width or widths like 32,64,64, got {text!r}") from None


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="studylib",
        description="Class-conditional GLOW classifiers: train, evaluate and benchmark the models of the study.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a model (or reuse it from the cache), then print test accuracy and bpd")
    _model_args(p)
    p.add_argument(
        "--subset", type=int, default=None, help="evaluate on this many test images (default: the profile's)"
    )
    p = sub.add_parser("evaluate", help="test accuracy and bits/dim of a model (trained first if not cached)")
    _model_args(p)
    p.add_argument("--subset", type=int, default=None, help="evaluate on this many test images (default: all)")
    p = sub.add_parser("cache", help="list, export, import or clear trained models")
    p.add_argument("action", choices=("list", "export", "import", "clear"))
    p.add_argument("file", nargs="?", default=None, help="import: the archive to import")
    p.add_argument("--out", default=None, help="export: the archive to write (.tar.gz)")
    p.add_argument("--profile", default=None, choices=PROFILES, help="export / clear: only this profile's models")
    p.add_argument("--datasets", nargs="+", default=(), choices=DATASETS, help="export / clear: only these datasets")
    p.add_argument(
        "--chapters", nargs="+", default=(), help="export / clear: only models these chapters used (book run here)"
    )
    p.add_argument("--replace", action="store_true", help="import: replace entries already in the cache")
    p.add_argument("--yes", action="store_true", help="clear: delete trained models without asking")
    p = sub.add_parser("bench", help="training and evaluation images/s of a GLOW size (a benchmark, not a test)")
    p.add_argument("--dataset", default="mnist", choices=DATASETS)
    p.add_argument("--levels", type=int, default=3)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--hidden", type=_widths, default=(64,), help="coupling width, or one per level: 32,64,64")
    p.add_argument("--batch-size", type=int, default=None, help="images per step (default 64; --peers: the profile's)")
    p.add_argument("--iterations", type=int, default=None, help="timed steps per round (default 10; 5 with --peers)")
    p.add_argument(
        "--precision", default="auto", choices=PRECISIONS, help="auto: bf16 autocast where native, else fp32"
    )
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--peers", action="store_true", help="compare with normflows and FrEIA (the bench extra)")
    p.add_argument("--profile", default="quick", choices=PROFILES, help="--peers: the configurations compared")
    p.add_argument("--repeats", type=int, default=3, help="--peers: interleaved rounds (the median is kept)")
    p.add_argument(
        "--compile", action="store_true", help="--peers: also each model under torch.compile (minutes per model)"
    )
    p.add_argument(
        "--foolbox", action="store_true", help="our boundary and CW-L2 attacks against foolbox's (bench extra)"
    )
    p.add_argument(
        "--images", type=int, default=20, help="--foolbox: correctly classified, undetected test images attacked"
    )
    p.add_argument("--attack-steps", type=int, default=1000, help="--foolbox: foolbox BoundaryAttack steps")
    p.add_argument(
        "--out",
        default=None,
        help="JSON file of the results (plain bench: appends its row, as chapter 9's precision rows)",
    )
    p = sub.add_parser(
        "probe", help="train a profile's model for a few minutes: images/s, peak memory, accuracy, projected hours"
    )
    p.add_argument("--dataset", default="mnist", choices=DATASETS)
    p.add_argument("--objective", default="split", choices=OBJECTIVES)
    p.add_argument("--profile", default="paper", choices=PROFILES)
    p.add_argument("--minutes", type=float, default=3.0, help="training time before the model is scored")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--subset", type=int, default=None, help="score on this many test images (default: all)")
    p.add_argument("--out", default=None, help="JSON file the row is appended to")
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help="auto: bf16 where native, else fp32")
    p = sub.add_parser("ablate", help="train one profile's variants, one lever at a time, at a fixed wall-clock budget")
    p.add_argument("--dataset", default="mnist", choices=DATASETS)
    p.add_argument("--objective", default="split", choices=OBJECTIVES)
    p.add_argument("--profile", default="quick", choices=PROFILES)
    p.add_argument("--minutes", type=float, default=8.0, help="training budget per lever on this machine")
    p.add_argument("--levers", nargs="*", default=None, help="lever names (default: all)")
    p.add_argument("--stronger", action="store_true", help="then the combined levers at the full budget (30/20 min)")
    p.add_argument("--ce-weight", type=float, default=None, help="--stronger at this cross-entropy weight w")
    p.add_argument("--hidden", type=int, nargs="+", default=None, help="--stronger at these coupling widths per level")
    p.add_argument("--compile", action="store_true", help="--stronger trained through torch.compile")
    p.add_argument("--seed", type=int, default=None, help="--stronger from this seed (default 0)")
    p.add_argument("--steps", type=int, default=None, help="--stronger for this many steps (default: the budget's)")
    p.add_argument("--readout", default=None, choices=READOUTS, help="--stronger, split prior's logits read here")
    p.add_argument("--schedule", default=None, choices=LR_SCHEDULES, help="--stronger, learning-rate schedule")
    p.add_argument(
        "--precision", default="auto", choices=PRECISIONS, help="--stronger: fp32 is the recipe with bf16 off (own row)"
    )
    p.add_argument("--out", default=None, help="JSON file the rows are appended to")
    p = sub.add_parser("book", help="run the chapters with papermill, sync their outputs, render offline HTML")
    p.add_argument("action", choices=("run", "sync", "html", "assignments"))
    p.add_argument("--profile", default="quick", choices=PROFILES)
    p.add_argument("--chapters", nargs="*", default=None, help="chapter numbers or names (default: all)")
    p.add_argument(
        "--out", default=None, help="output folder (default: build/book/<profile>, build/html, build/assignments)"
    )
    p.add_argument("--notebooks", default=None, help="html: folder of executed notebooks (default: book/)")
    return ap


def _train_or_evaluate(args: argparse.Namespace, default_subset: bool) -> dict:
    from studylib import data
    from studylib.config import get_profile
    from studylib.measure import evaluate
    from studylib.training import distributed, zoo

    if args.subset is not None and args.subset < 1:  # before any training
        raise ValueError(f"--subset must be a positive number of test images, got {args.subset}")
    profile = get_profile(args.profile).at_budget(args.budget)
    zoo.spec(args.dataset, args.objective, profile, args.seed, args.ce_weight)
    distributed.init_from_env(args.device)  # under torchrun: one rank per process
    model = zoo.get_model(
        args.dataset, args.objective, profile, args.seed, args.device, args.ce_weight, precision=args.precision
    )
    if not distributed.is_main():
        return {}
    subset = args.subset if args.subset is not None or not default_subset else profile.scale.eval_subset
    test = data.load(args.dataset, "test", subset=subset, seed=args.seed)
    result = evaluate.evaluate(model, test, profile.scale.eval_batch_size)
    result["train_seconds"] = round(model.info["train_seconds"], 1)
    result["cache_key"] = model.info["key"]
    result["precision"] = zoo.trained_precision(model.info)
    return result


def _cache(args: argparse.Namespace) -> None:
    from studylib import storage
    from studylib.book import runner
    from studylib.training import archive, memo, zoo

    chapters = tuple(p.stem for p in runner.select(list(args.chapters))) if args.chapters else ()
    selection = archive.Selection(args.profile, tuple(args.datasets), chapters)
    chosen = selection != archive.Selection()
    if args.action == "import":
        if not args.file:
            raise ValueError("cache import needs the archive: studylib cache import FILE")
        imported, kept = archive.import_archive(Path(args.file), replace=args.replace)
        print(f"imported {len(imported)} models into {storage.models_dir()}; kept {len(kept)} already there")
        for key in kept:
            print(f"  kept {key} (--replace to overwrite it)")
        return
    entries = selection.entries()
    if args.action == "export":
        if not args.out:
            raise ValueError("cache export needs --out FILE")
        manifest = archive.export(Path(args.out), entries)
        size = Path(args.out).stat().st_size / 2**20
        print(f"exported {len(manifest['entries'])} trained models to {args.out} ({size:.1f} MiB)")
        return
    if args.action == "clear":
        _clear(entries, chosen, args.yes)
        return
    if not entries:
        print(f"no trained models in {storage.models_dir()}" + (" match the selection" if chosen else ""))
    for entry in entries:
        if (entry / "model.pt").exists():
            state = f"trained ({archive.trained_in(entry)})"
        elif (entry / zoo.DIVERGED).exists():
            state = "diverged (recorded)"
        else:
            state = "in progress (checkpoint)"
        print(f"{entry.name:48s} {state:28s} {_mib(entry):7.1f} MiB  {archive.origin(entry)}")
    if not chosen:
        print(f"{len(memo.stored_results())} memoised results in {storage.memo_dir()}")


def _mib(entry: Path) -> float:
    return sum(f.stat().st_size for f in entry.iterdir() if f.is_file()) / 2**20


def _clear(entries: list[Path], chosen: bool, yes: bool) -> None:
    """Show what would go, ask before deleting trained models (unless `yes`), then delete."""
    from studylib.training import memo

    results = [] if chosen else memo.stored_results()  # a selection keeps every memoised result
    trained = [e for e in entries if (e / "model.pt").exists()]
    for entry in entries:
        print(f"  {entry.name:48s} {_mib(entry):7.1f} MiB")
    total = sum(_mib(e) for e in entries)
    print(f"{len(entries)} entries ({len(trained)} trained, {total:.1f} MiB) and {len(results)} memoised results")
    if not entries and not results:
        return
    if trained and not yes:
        if not sys.stdin.isatty():
            raise ValueError("cache clear would delete trained models: add --yes to confirm (not a terminal)")
        if input("delete them? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return
    for entry in entries:
        shutil.rmtree(entry)
    for path in results:
        path.unlink()
    print(f"removed {len(entries)} cache entries and {len(results)} memoised results")


def _book(args: argparse.Namespace) -> None:
    from pathlib import Path

    from studylib.book import runner

    out = Path(args.out) if args.out else None
    if args.action == "run":
        print(f"executed notebooks in {runner.run(args.profile, args.chapters, out)}")
    elif args.action == "sync":
        runner.sync(args.profile, args.chapters, out)
        print("book/*.ipynb and book/results/ updated from the run")
    elif args.action == "assignments":
        editions = runner.assignments(out or Path("build/assignments"), args.chapters)
        for chapter, student in editions.items():
            print(f"{chapter}: student edition {student}")
        print(f"nbgrader course folder: {student.parents[2]} (teacher editions in source/)")
    else:
        notebooks = Path(args.notebooks) if args.notebooks else None
        print(f"offline HTML in {runner.html(out, notebooks)}/index.html")


def _bench(args: argparse.Namespace) -> dict:
    import torch

    from studylib import data
    from studylib.benchmarks import bench
    from studylib.config import Arch, cpu_capability, resolve_device, resolve_precision

    torch.set_flush_denormal(True)
    batch = 64 if args.batch_size is None else args.batch_size
    if args.levels < 1 or args.steps < 1 or batch < 1:
        raise ValueError("--levels, --steps and --batch-size must be positive integers")
    hidden = args.hidden[0] if len(args.hidden) == 1 else args.hidden
    arch = Arch(args.levels, args.steps, hidden)  # one width per level, or one for all: refused now
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    torch.manual_seed(0)
    contender = bench.ours(3 if args.dataset == "cifar10" else 1, arch)
    contender.module.to(device)
    x, y = data.load(args.dataset, "test", subset=batch).tensors()
    bf16 = {"studylib": precision == "bf16"}
    rates = bench.measure([contender], x.to(device), y.to(device), bf16, args.iterations or 10, 1)
    return {
        "config": f"{args.dataset} {arch.label()} batch {batch}",
        "precision": precision,
        "device": str(device),
        "cpu": cpu_capability(),
        "threads": torch.get_num_threads(),
        "train_images_per_s": round(rates["studylib"]["train"], 1),
        "eval_images_per_s": round(rates["studylib"]["eval"], 1),
    }


def _peers(args: argparse.Namespace) -> None:
    import json
    from pathlib import Path

    from studylib.benchmarks import bench
    from studylib.config import resolve_device

    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError("--batch-size must be a positive integer")
    device = resolve_device(args.device).type
    rows = bench.peers(
        args.profile, args.iterations or 5, args.repeats, args.batch_size, compiled=args.compile, device=device
    )
    for r in rows:
        half = f"{r['train_bf16']:>7.1f}" if r["train_bf16"] is not None else "  fails"
        print(
            f"{r['dataset']:<8} {r['model']:<10} {r['parameters']:>9,} params  train {r['train_fp32']:>7.1f} fp32 "
            f"{half} bf16  eval {r['eval_fp32']:>7.1f} fp32  best {r['train_best']:>7.1f} ({r['best_setting']})"
        )
    print(f"images/s; fp32 and bf16 with every model's convolution weights {bench.SAME_LAYOUT}")
    for r in rows:
        print(f"  {r['dataset']} {r['model']}: {r['built']} ({r['config']})")
    ratios = bench.speedups(rows)
    for dataset, ratio in ratios.items():
        print(
            f"{dataset}: train speedup over the faster peer "
            f"{ratio['float32']:.2f}x (float32), {ratio['best']:.2f}x (best)"
        )
    out = Path(args.out) if args.out else bench.peers_path(args.profile, device)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "speedups": ratios}, indent=1))
    print(f"rows in {out}")
    worst = {k: min(r[k] for r in ratios.values()) for k in ("float32", "best")}
    print(
        f"train speedup over the faster peer: {worst['float32']:.2f}\u00d7 (float32), {worst['best']:.2f}\u00d7 (best)"
    )


def _foolbox(args: argparse.Namespace) -> None:
    from studylib.benchmarks import reference_attacks
    from studylib.book.chapter import setup
    from studylib.studies import attacks

    params = setup(args.dataset, "split", args.profile, "cpu")
    record = attacks.compare_with_foolbox(params, args.images, args.attack_steps, args.out)
    eps, threshold = record["eps"], record["threshold_bpd"]
    for r in record["boundary"]:
        print(
            f"{r['attack']:<26} {r['budget']:<24} success within eps {eps:.3g}: {r['success_within_eps']:5.1f} %  "
            f"{r['model_calls'] or '-':>6} calls {r['images_scored']:>8} images scored {r['seconds']:>7.1f} s"
        )
    for r in record["cw"] + record["minimal_l2"]:
        l2 = f"{r['median_l2']:.4f}" if r["median_l2"] is not None else "-"
        print(
            f"{r['attack']:<30} fooled {r['fooled']:5.1f} %  median L2 {l2}  undetected within eps "
            f"{r['undetected_within_eps']:5.1f} % (T = {threshold:.3f} bits/dim)  {r['seconds']:>6.1f} s"
        )
    theirs, ours = (r["median_l2"] for r in record["cw"])
    if theirs and ours:
        print(f"CW-L2: our median L2 is {ours / theirs:.2f}x foolbox's")
    print(f"rows in {args.out or reference_attacks.results_path(args.dataset, args.profile)}")


def _probe(args: argparse.Namespace) -> None:
    from pathlib import Path

    from studylib.benchmarks import probe
    from studylib.book import ledger
    from studylib.config import resolve_device

    device = resolve_device(args.device)  # a missing GPU is refused before the data are read
    row = probe.probe(
        args.dataset,
        args.objective,
        args.profile,
        args.minutes,
        args.device,
        args.seed,
        args.subset,
        precision=args.precision,
    )
    out = Path(args.out) if args.out else probe.results_path(args.profile, device.type)
    rows = ledger.read_recorded(out)  # the committed rows, where this folder has none yet
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([*rows, row], indent=1))
    print(json.dumps(row, indent=2))
    print(
        f"{row['arch']} on {row['device_name']} in {row['precision']}: {row['steady_images_per_s']:.0f} images/s, peak "
        f"{row['peak_memory_gib']:.2f} GiB; after {row['steps']} of {row['total_steps']} steps "
        f"({row['train_seconds'] / 60:.1f} min): {row['accuracy']:.2f} %, {row['bpd']:.3f} bits/dim; "
        f"the whole run: about {row['projected_hours']:.1f} hours"
    )
    print(f"row appended to {out}")


def _ablate(args: argparse.Namespace) -> None:
    from pathlib import Path

    from studylib.benchmarks import ablation
    from studylib.config import get_profile
    from studylib.training import zoo

    levers = args.levers or list(ablation.LEVERS)
    for lever in levers:
        if lever not in ablation.LEVERS:
            raise ValueError(f"unknown lever {lever!r}; allowed values: {', '.join(ablation.LEVERS)}")
    if args.minutes <= 0:
        raise ValueError(f"--minutes must be positive, got {args.minutes}")
    options = (args.ce_weight, args.hidden, args.steps, args.readout, args.schedule, args.seed)
    if (any(o is not None for o in options) or args.compile or args.precision != "auto") and not args.stronger:
        raise ValueError(
            "--ce-weight, --hidden, --compile, --steps, --readout, --schedule, --seed and --precision "
            "apply to --stronger only"
        )
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be a positive number of training steps, got {args.steps}")
    prof = get_profile(args.profile)
    if args.hidden is not None:  # refused now, not after the sweep: one positive width per level
        ablation.variant(prof, args.dataset, {"hidden": args.hidden})
    zoo.spec(args.dataset, args.objective, prof, args.seed or 0, args.ce_weight)  # bad weight or seed: refused now
    out = Path(args.out) if args.out else ablation.results_path(args.dataset, args.objective, args.profile)
    rows = ablation.sweep(
        levers, out, dataset=args.dataset, objective=args.objective, profile=args.profile, minutes=args.minutes
    )
    if args.stronger:
        hidden = tuple(args.hidden) if args.hidden else None
        row = ablation.run_stronger(
            args.dataset,
            args.objective,
            args.profile,
            ce_weight=args.ce_weight,
            hidden=hidden,
            compiled=args.compile,
            steps=args.steps,
            readout=args.readout,
            schedule=args.schedule,
            seed=args.seed or 0,
            precision=args.precision,
        )
        rows = [r for r in rows if r["lever"] != row["lever"]] + [row]
        out.write_text(json.dumps(rows, indent=1))
    width = max(len(r["lever"]) for r in rows)
    for r in rows:
        rate = f"{r['images_per_s']:>7.1f} img/s {r['steps']:>6} steps"
        print(f"{r['lever']:<{width}} {rate} {r['bpd']:.3f} bpd {r['accuracy']:.2f} %")
    print(f"rows in {out}")


def _one_line(message, category, filename, lineno, line=None) -> str:
    """A warning as the command line shows it: one line, no source excerpt."""
    return f"studylib: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    warnings.formatwarning = _one_line
    try:
        if args.command in ("train", "evaluate"):
            result = _train_or_evaluate(args, default_subset=args.command == "train")
            if result:  # under torchrun, rank 0 reports
                print(json.dumps(result, indent=2))
        elif args.command == "cache":
            _cache(args)
        elif args.command == "book":
            _book(args)
        elif args.command == "ablate":
            _ablate(args)
        elif args.command == "probe":
            _probe(args)
        elif args.compile and not args.peers:
            raise ValueError("--compile applies to --peers only")
        elif args.peers:
            _peers(args)
        elif args.foolbox:
            _foolbox(args)
        else:
            row = _bench(args)
            print(json.dumps(row, indent=2))
            if args.out:
                out = Path(args.out)
                rows = json.loads(out.read_text()) if out.exists() else []
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps([*rows, row], indent=1))
                print(f"row appended to {out}")
    except KeyboardInterrupt as err:
        print(f"\ninterrupted: {err}", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, DataError, TrainingDiverged) as err:  # ArchiveRefused too
        print(f"studylib: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
