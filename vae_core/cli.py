"""`python -m vae_core train | evaluate | sample | push`.

Every user mistake ends as one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import sys
from pathlib import Path
from typing import NoReturn, cast

import numpy as np
import torch

from .checkpoint import CheckpointError, check_output, load_checkpoint
from .config import DEVICES, LIMITS, ModelConfig, Option, TrainConfig, options_of
from .datasets import DATASETS, DEFAULT_LIKELIHOOD, FOLDER_PREFIX, ZIP_PREFIX, DataError, load_dataset
from .hub import HubError, push
from .images import png_bytes, to_grid
from .models import LabelConditioned, PriorSampler, kinds, make_config, spec
from .models.structured import parse_given
from .train import DDP_NEEDS_TORCHRUN, Trainer, in_passing_thread, resolve_device
from .train.events import DatasetNote, Done, Epoch, Event, Failed, Final, Start, Step

USAGE_ERROR = 2


class UsageError(Exception):
    pass


class JobEnded(Exception):
    """torchrun sent SIGTERM: another process of the DDP job failed, so this one is being ended."""


def _job_ended(signum, frame) -> None:
    raise JobEnded


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse prints usage + message; we want one line
        raise UsageError(message)


def _limited(name: str, called: str | None = None):
    """An argparse type for the setting `name`, checked by `LIMITS[name]` as the app checks it.

    `called`: what its messages call it, where the setting uses another setting's limit."""
    limit = LIMITS[name]

    def parse(text: str) -> int | float:
        try:
            return limit.check((called or name).replace("_", " "), text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, where it has one worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def _dataset(text: str) -> str:
    if text in DATASETS or (text.startswith(FOLDER_PREFIX) and len(text) > len(FOLDER_PREFIX)):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(DATASETS)} or folder:PATH")


def _image_size(text: str) -> tuple[int, int]:
    """`28` or `28x20` (height × width)."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        sides = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 28 or 28x20 (height x width)") from None
    if len(sides) not in (1, 2):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 28 or 28x20 (height x width)")
    return (sides[0], sides[-1])


def _new_file(text: str) -> Path:
    """An output file: refused at once if it is a folder or its folder cannot be written."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; give a file name")
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: its folder does not exist or is not writable")
    return path


# a model option whose default the kind and the dataset decide, not its config class
DECIDED_LATER = {"likelihood": "the kind's own (bernoulli for scvae), else the dataset's (gaussian for frey-face), "
                               "else mse"}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m vae_core", description="Train, evaluate and sample VAEs.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    command = functools.partial(commands.add_parser, formatter_class=_Help)
    _train_arguments(command("train", help="train a model and write a checkpoint folder"))

    evaluate = command("evaluate", help="test-set ELBO, IWAE NLL and active units")
    evaluate.add_argument("checkpoint", help="a checkpoint folder")
    evaluate.add_argument("--iwae-k", "--samples", type=_limited("importance_samples"), default=100,
                          help="importance samples: IWAE bound k, or S for an scvae's conditional NLL")
    evaluate.add_argument("--given", help="scvae: given quadrants, e.g. top-left+bottom-left (default: as trained)")
    evaluate.add_argument("--data-root", help="folder with the dataset's files, if not in the default cache")
    evaluate.add_argument("--dataset", type=_dataset, help="test set to use instead of the checkpoint's own")
    evaluate.add_argument("--device", choices=DEVICES, default="auto", help="where to compute")
    evaluate.add_argument("--json", action="store_true", help="print the figures as one JSON line")

    sample = command("sample", help="decode prior samples to a PNG grid and/or .npy")
    sample.add_argument("checkpoint", help="a checkpoint folder")
    sample.add_argument("--n", type=_limited("n_samples"), default=64, help="how many samples")
    sample.add_argument("--digit", type=int, help="class to draw (required for a CVAE)")
    sample.add_argument("--temperature", type=_limited("temperature"), default=1.0,
                        help="scale of the prior draw z ~ N(0, T²I); lower is tamer")
    sample.add_argument("--seed", type=_limited("seed"), default=0, help="the same seed gives the same samples")
    sample.add_argument("--png", type=_new_file, help="write the samples as one PNG grid here")
    sample.add_argument("--npy", type=_new_file, help="write the samples as a float32 array (n, H, W) here")

    push = command("push", help="publish a checkpoint folder to the Hugging Face Hub, model card included")
    push.add_argument("checkpoint", help="a checkpoint folder")
    push.add_argument("--repo", required=True, help="the model repo, e.g. your-name/mnist-vae (created if new)")
    push.add_argument("--private", action="store_true", help="create the repo private")
    return parser


def _train_arguments(train: argparse.ArgumentParser) -> None:
    """`train`'s flags: the model's from the registry's config classes, then the run's."""
    found = kinds()
    train.add_argument("--kind", choices=tuple(found), default="vae",
                       help="; ".join(f"{name}: {kind.help}" for name, kind in found.items()))
    shared = options_of(ModelConfig)
    _option_arguments(train, shared)
    taken = set(shared)
    for kind in found.values():  # each kind's own settings, in a group of its own
        own = {name: value for name, value in options_of(kind.config).items() if name not in taken}
        if own:
            _option_arguments(train.add_argument_group(f"{kind.title} (--kind {kind.name})"), own)
            taken |= set(own)
    train.add_argument("--dataset", type=_dataset, default="mnist",
                       help=f"{', '.join(DATASETS)}, or folder:PATH for your own pictures (subfolders = classes)")
    train.add_argument("--data-root", help="folder with the idx files (torchvision layout or flat) or frey_rawface.mat")
    train.add_argument("--image-size", type=_image_size, default=(28, 28),
                       help="for folder: datasets, HEIGHTxWIDTH or one side; aspect kept by padding")
    train.add_argument("--init-from", help="a trained checkpoint to start from, where the kind can (an scvae starts "
                                           "its generation network from a baseline's)")
    train.add_argument("--kl-warmup", type=_limited("kl_warmup"), default=0.0,
                       help="epochs over which the KL weight rises linearly from 0 to beta")
    train.add_argument("--shift", type=_limited("shift"), default=0,
                       help="move each training picture by up to this many pixels each way (augmentation)")
    train.add_argument("--epochs", type=_limited("epochs"), default=10, help="epochs to train in all")
    train.add_argument("--batch-size", type=_limited("batch_size"), default=128, help="pictures per step")
    train.add_argument("--lr", type=_limited("lr"), default=1e-3, help="Adam's learning rate")
    train.add_argument("--seed", type=_limited("seed"), default=0, help="the same seed gives the same run")
    train.add_argument("--device", choices=DEVICES, default="auto", help="auto: CUDA, else MPS, else the CPU")
    train.add_argument("--resume", help="checkpoint folder to continue from (its model settings win)")
    train.add_argument("--out", required=True, help="checkpoint folder to write after every epoch")
    train.add_argument("--json", action="store_true", help="print one JSON event a line on stdout")
    train.add_argument("--compile", action="store_true",
                       help="torch.compile the training step (reduce-overhead mode on a GPU); takes tens of seconds")
    train.add_argument("--cuda-graphs", action="store_true",
                       help="replay the whole training step from a CUDA graph (GPU only; for launch-bound models)")
    train.add_argument("--ddp", action="store_true",
                       help="under torchrun: DistributedDataParallel (gloo on CPU, nccl on CUDA); "
                            "--batch-size is the global batch, split over the processes")


def _option_arguments(group, options: dict[str, tuple[Option, object]]) -> None:
    """One flag per model option, typed and checked by its own limit or choices."""
    for name, (opt, default) in options.items():
        kwargs: dict = {"help": opt.help, "default": default}
        if name in DECIDED_LATER:
            kwargs.update(default=None, help=f"{opt.help}. Default: {DECIDED_LATER[name]}")
        if opt.limit:
            kwargs["type"] = _limited(opt.limit, name)
        elif opt.choices:
            kwargs["choices"] = opt.choices
        group.add_argument(f"--{name.replace('_', '-')}", **kwargs)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return {"train": _train, "evaluate": _evaluate, "sample": _sample, "push": _push}[args.command](args)
    except (UsageError, ValueError, CheckpointError, DataError, HubError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except JobEnded:
        print(f"error: rank {os.environ.get('RANK', '?')}: ended by torchrun after another process failed",
              file=sys.stderr)
        return 1


def _train(args: argparse.Namespace) -> int:
    model_config, train_config = _configs(args)
    if args.ddp and "RANK" not in os.environ:
        raise UsageError(DDP_NEEDS_TORCHRUN)
    check_output(args.out)  # before any work: never replace what is not a checkpoint of ours
    for given in (args.resume, args.init_from):
        if given:  # a bad --resume or --init-from is a usage error, found before any work starts
            in_passing_thread(load_checkpoint, given)
    # Loaded here, not in the trainer thread, so a missing dataset is a usage error too; in a thread
    # that ends, so that the main thread keeps no OpenMP team to slow the trainer's (train/threads.py).
    data = in_passing_thread(load_dataset, args.dataset, args.data_root, args.image_size)
    if not args.resume:  # checks the model against the data (a CVAE needs classes) before any work
        model_config = data.fit(model_config)
    if args.ddp:
        signal.signal(signal.SIGTERM, _job_ended)
    trainer = Trainer(model_config, train_config, data).start()
    if os.environ.get("RANK", "0") != "0" and args.ddp:
        return _follow_quietly(trainer)
    last = _Progress(args.json).follow(trainer, args.out)
    if not args.json:
        saved = f" Checkpoint: {last.checkpoint}" if last.checkpoint else ""
        prefix = "error: " if isinstance(last, Failed) else ""
        print(prefix + last.message + saved, file=sys.stderr)
    return 0 if isinstance(last, Done) else 1


def _configs(args: argparse.Namespace) -> tuple[ModelConfig, TrainConfig]:
    """The run's model settings (its kind's own options only) and training settings, checked."""
    kind = spec(args.kind)
    options = {name: getattr(args, name) for name in options_of(kind.config)}
    options["likelihood"] = args.likelihood or kind.likelihood or DEFAULT_LIKELIHOOD.get(args.dataset, "mse")
    train_config = TrainConfig(
        dataset=args.dataset, data_root=args.data_root, image_size=args.image_size, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device, kl_warmup=args.kl_warmup,
        shift=args.shift, out=args.out, resume=args.resume, ddp=args.ddp, compile=args.compile,
        cuda_graphs=args.cuda_graphs, init_from=args.init_from,
    )
    return make_config(args.kind, **options), train_config


class _Progress:
    """The terminal's view of a run: a progress bar and a line an epoch, or one JSON event a line."""

    def __init__(self, as_json: bool):
        self.as_json = as_json
        self.bar = None
        self.start: Start | None = None

    def follow(self, trainer: Trainer, out: str) -> Final:
        """Show every event of the run; its final event (a synthetic failure if torchrun ended the job)."""
        saved_any = False
        try:
            for event in trainer.events():
                saved_any |= isinstance(event, Epoch)
                if self.as_json:
                    print(event.to_json(), flush=True)
                self._show(event)
        except KeyboardInterrupt:
            trainer.stop()
            trainer.join()
            raise
        except JobEnded:
            trainer.stop()  # its thread may be waiting on the dead peer; the process ends without it
            event = Failed(kind="job_ended", checkpoint=out if saved_any else None,
                           message=f"rank {os.environ.get('RANK', '0')}: another process of the job failed or was "
                                   "killed, so torchrun ended this one. Every checkpoint written is complete.")
            if self.as_json:
                print(event.to_json(), flush=True)
        finally:
            if self.bar is not None:
                self.bar.close()
        return cast(Final, event)  # `events()` ends with the run's final event

    @functools.singledispatchmethod
    def _show(self, event: Event) -> None:
        """What the terminal shows of an event, by its type; most show nothing beyond their JSON line."""

    @_show.register
    def _show_note(self, event: DatasetNote) -> None:
        print(f"note: {event.dataset_note}", file=sys.stderr)

    @_show.register
    def _show_start(self, event: Start) -> None:
        from tqdm import tqdm

        self.start = event
        self.bar = tqdm(total=(event.epochs - event.first_epoch + 1) * event.n_train, unit="img",
                        unit_scale=True, file=sys.stderr, dynamic_ncols=True)

    @_show.register
    def _show_step(self, event: Step) -> None:
        if self.bar is not None:
            seen = round((event.progress - self.start.first_epoch + 1) * self.start.n_train)
            self.bar.update(seen - self.bar.n)
            self.bar.set_postfix(epoch=event.epoch, loss=f"{event.loss:.2f}")

    @_show.register
    def _show_epoch(self, event: Epoch) -> None:
        if self.bar is not None and not self.as_json:
            terms = ", ".join(f"{term} {value:.3f}" for term, value in event.terms.items())
            self.bar.write(f"epoch {event.epoch}: train {event.train_loss:.3f}  test {event.test_loss:.3f} "
                           f"({terms})  {event.samples_per_s:,.0f} img/s")


def _follow_quietly(trainer: Trainer) -> int:
    """A DDP rank other than 0: rank 0 reports progress; this one speaks only if it fails."""
    last = list(trainer.events())[-1]
    if isinstance(last, Failed):
        print(f"error: {last.message}", file=sys.stderr)
    return 0 if isinstance(last, Done) else 1


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate

    device = resolve_device(args.device)
    ckpt = load_checkpoint(args.checkpoint, device)
    name = args.dataset or ckpt.info.get("dataset", "mnist")
    if not args.dataset and name.startswith((FOLDER_PREFIX, ZIP_PREFIX)):
        # a checkpoint's config.json never chooses a folder to read: the user names it
        raise UsageError("this checkpoint was trained on your own pictures: name them with --dataset folder:PATH")
    data = in_passing_thread(load_dataset, name, args.data_root, image_size=ckpt.model.config.image_shape[1:])
    if data.note:
        print(f"note: {data.note}", file=sys.stderr)
    x, labels = data.tensors("test", device)
    layout = parse_given(args.given) if args.given else None
    metrics = evaluate(ckpt.model, x, labels, samples=args.iwae_k, layout=layout)
    metrics["dataset_note"] = data.note
    if args.json:
        print(json.dumps(metrics))
    else:
        for key, value in metrics.items():
            print(f"{key:>13}: {value}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    model = ckpt.model
    if not isinstance(model, PriorSampler):
        raise UsageError("this is a structured-output CVAE: it completes given quadrants of a digit (the app's "
                         "Complete a digit tab), it has no prior samples to draw")
    n_classes = model.config.n_classes
    labelled = isinstance(model, LabelConditioned)
    if labelled and args.digit is None:
        raise UsageError("this checkpoint is a CVAE: choose a class with --digit")
    if not labelled and args.digit is not None:
        raise UsageError("--digit only applies to a CVAE; this checkpoint is an unconditional VAE")
    if args.digit is not None and not 0 <= args.digit < n_classes:
        raise UsageError(f"--digit must be between 0 and {n_classes - 1}")
    if not (args.png or args.npy):
        raise UsageError("say where to write the samples: --png FILE and/or --npy FILE")
    generator = torch.Generator().manual_seed(args.seed)
    labels = None if args.digit is None else torch.full((args.n,), args.digit)
    images = model.sample(args.n, labels, args.temperature, generator)
    if args.png:
        args.png.write_bytes(png_bytes(to_grid(images)))
    if args.npy:
        with open(args.npy, "wb") as f:  # exactly this name: np.save would add .npy to any other
            np.save(f, images[:, 0].numpy().astype(np.float32))
    print(f"wrote {args.n} samples to {' and '.join(str(p) for p in (args.png, args.npy) if p)}", file=sys.stderr)
    return 0


def _push(args: argparse.Namespace) -> int:
    url = push(args.checkpoint, args.repo, args.private)
    print(f"published {args.checkpoint} to {url}", file=sys.stderr)
    return 0
