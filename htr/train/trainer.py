"""The training loop: epochs of train + valid, checkpoints, n-best bookkeeping and averaging.

Files in <output_dir> (ESPnet's layout):
    config.yaml             the resolved options; `ocr_train --config config.yaml` reruns the run
    train.log               everything logged (appended across resumes)
    checkpoint.pth          model, optimizers, schedulers, scaler, reporter, RNG states (for --resume);
                            mid-epoch ones (--save_every_steps/--save_every_minutes, or on SIGTERM/SIGUSR1)
                            also hold the position in the epoch's batch order and its partial statistics
    checkpoint.prev.pth     the checkpoint before it; checkpoint.sha256 their digests (a damaged
                            checkpoint.pth is passed over at resume, and the previous one used)
    {N}epoch.pth            model weights after epoch N (only the n best per criterion are kept)
    latest.pth, {phase}.{key}.best.pth, {phase}.{key}.ave_{n}best.pth, {phase}.{key}.ave.pth
    images/*.png            per-epoch curves; images/att_ws/ attention maps of a few valid lines
    tensorboard/            the same curves for tensorboard
"""
import contextlib
import hashlib
import logging
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import yaml

import htr
from htr.registry import initialize
from htr.train import distributed
from htr.train.batch_sampler import epoch_batches, make_batches, padding_ratio, shard
from htr.train.checkpoint import CheckpointWriteError, average_state_dicts, load_checkpoint, save_checkpoint
from htr.train.loader import ResilientLoader
from htr.train.optim import build_optimizer, build_scheduler
from htr.train.preemption import PREEMPTED, Preempted, SaveSchedule, StopSignal
from htr.train.reporter import Accumulator, Reporter
from htr.train.tasks import OCRTask
from htr.utils.atomic import atomic_save, atomic_symlink, atomic_write, clean_temp_files
from htr.utils.plot import line_plot
from htr.utils.progress import duration

def setup_logging(args, info):
    level = getattr(logging, args.log_level.upper()) if info.is_main else logging.WARNING
    fmt = f"%(asctime)s (rank {info.rank}) %(levelname)s %(message)s" if info.distributed else \
        "%(asctime)s %(levelname)s %(message)s"
    handlers = [logging.StreamHandler()]
    if info.is_main:
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(Path(args.output_dir) / "train.log", encoding="utf-8"))
    logging.basicConfig(level=level, format=fmt, handlers=handlers, force=True)


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def rng_state():
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_config(args, config, path):
    """ESPnet's config.yaml: every option, the token list inline, paths as given."""
    resolved = dict(vars(args))
    resolved.update(config)
    resolved["version"] = htr.__version__
    text = yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True, default_flow_style=False, indent=4)
    with atomic_write(path) as f:
        f.write(text)


def batch_digest(batches):
    """A fingerprint of an epoch's batch order: a mid-epoch resume must continue the same order."""
    return hashlib.sha1("\n".join(" ".join(b) for b in batches).encode("utf-8")).hexdigest()


def load_init_params(model, specs):
    """--init_param path[:src_prefix[:dst_prefix[:exclude,...]]]: copy matching weights in."""
    for spec in specs:
        path, src, dst, exclude = (spec.split(":") + ["", "", ""])[:4]
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state.get("model"), dict):
            state = state["model"]
        excluded = [e for e in exclude.split(",") if e]
        picked = {dst + k[len(src):]: v for k, v in state.items()
                  if k.startswith(src) and not any(k.startswith(e) for e in excluded)}
        own = model.state_dict()
        for key, value in picked.items():
            if key not in own:
                raise ValueError(f"--init_param {spec}: {key} is not a parameter of this model")
            if own[key].shape != value.shape:
                raise ValueError(f"--init_param {spec}: {key} has shape {tuple(value.shape)}, "
                                 f"the model wants {tuple(own[key].shape)}")
        model.load_state_dict(picked, strict=False)
        logging.info("--init_param %s: loaded %d of %d tensors", spec, len(picked), len(own))


class Trainer:
    def __init__(self, args, info, task=None):
        self.args, self.info = args, info
        self.task = task or OCRTask()
        self.out = Path(args.output_dir)
        self.device = distributed.choose_device(args, info)
        seed_everything(args.seed)
        self.config = self.task.model_config(args)
        self.model = initialize(self.task.build_model(self.config, source=args.config), args.init).to(self.device)
        load_init_params(self.model, args.init_param)
        n_params = sum(p.numel() for p in self.model.parameters())
        logging.info("model: %s, %s parameters, device %s, %d process(es), %d intra-op threads each",
                     self.task.describe(args), f"{n_params:,}", self.device, info.world_size, torch.get_num_threads())
        (self.train_set, train_lengths), (self.valid_set, valid_lengths) = self.task.load_data(args, self.model)
        fold = args.fold_length or [800]
        dim = self.task.batch_dim(self.config)
        self.train_batches = make_batches(args.batch_type, train_lengths, args.batch_size, args.batch_bins, fold,
                                          dim, args.min_batch_size)
        self.valid_batches = make_batches(args.valid_batch_type or args.batch_type, valid_lengths,
                                          args.valid_batch_size or args.batch_size,
                                          args.valid_batch_bins or args.batch_bins, fold, dim, args.min_batch_size)
        logging.info("train: %d batches; valid: %d batches (%s; %.1f%% of the train frames are padding)",
                     len(self.train_batches), len(self.valid_batches), args.batch_type,
                     100 * padding_ratio(self.train_batches, train_lengths))
        self.plot_utts = sorted(valid_lengths)[:args.num_att_plot]

        self.optimizer = build_optimizer(args.optim, self.model.parameters(), args.optim_conf, source=args.config,
                                         device=self.device)
        self.iters_per_epoch = args.num_iters_per_epoch or len(self.train_batches)
        steps = args.max_epoch * math.ceil(self.iters_per_epoch / args.accum_grad)
        self.scheduler = build_scheduler(args.scheduler, self.optimizer, args.scheduler_conf, steps, source=args.config)
        self.amp_dtype = getattr(torch, args.amp_dtype)
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=args.use_amp and self.amp_dtype == torch.float16)
        self.reporter = Reporter()
        self.start_epoch, self.updates, self.progress = 1, 0, None
        if args.resume:
            self.resume()
        self.schedule = SaveSchedule(args.save_every_steps, args.save_every_minutes)
        self.stop = StopSignal().install()
        self.ddp = self.model
        if info.distributed:
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=self.task.find_unused_parameters(self.model))
        if args.compile:  # the wrapper is compiled: self.model and its state-dict names stay as they are
            self.ddp = torch.compile(self.ddp, backend=args.compile_backend)
        self.tensorboard = None
        if info.is_main:
            clean_temp_files(self.out)
            write_config(args, self.config, self.out / "config.yaml")
            self.task.on_start(self)
            if args.use_tensorboard:
                from torch.utils.tensorboard import SummaryWriter  # slow import; only when used
                self.tensorboard = SummaryWriter(str(self.out / "tensorboard"))

    # ---- checkpoints -------------------------------------------------------------------------
    def resume(self):
        state, path = load_checkpoint(self.out, self.device)
        if state is None:
            return
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizers"][0])
        if self.scheduler is not None and state["schedulers"][0] is not None:
            self.scheduler.load_state_dict(state["schedulers"][0])
        if state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.reporter.load_state_dict(state["reporter"])
        rngs = state["rng"]
        set_rng_state(rngs[self.info.rank % len(rngs)])
        self.updates = state.get("updates", 0)
        self.progress = state.get("progress")  # set when the checkpoint was written mid-epoch
        if self.progress:
            self.start_epoch = self.progress["epoch"]
            logging.info("resumed from %s: continuing at epoch %d, batch %d of %d (update %d)", path,
                         self.start_epoch, self.progress["iteration"] + 1, self.iters_per_epoch, self.updates)
        else:
            self.start_epoch = max(self.reporter.epochs(), default=0) + 1
            logging.info("resumed from %s: continuing at epoch %d", path, self.start_epoch)

    def checkpoint_state(self, rngs, epoch, progress=None):
        """ESPnet's checkpoint.pth keys, plus the RNG states of every rank, the last finished epoch,
        the update count and, mid-epoch, where in the epoch training stands."""
        return {"model": self.model.state_dict(),
                "optimizers": [self.optimizer.state_dict()],
                "schedulers": [self.scheduler.state_dict() if self.scheduler else None],
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                "reporter": self.reporter.state_dict(),
                "rng": rngs,
                "epoch": epoch,
                "updates": self.updates,
                "progress": progress}

    def save_progress(self, epoch, iteration, acc, seen, elapsed, batches):
        """A mid-epoch checkpoint: every rank's RNG, rank 0 writes, all wait for it."""
        rngs = distributed.gather_objects(rng_state(), self.info)

        def write():
            progress = {"epoch": epoch, "iteration": iteration, "acc": acc.state_dict(), "seen": seen,
                        "elapsed": elapsed, "batches": batches}
            save_checkpoint(self.checkpoint_state(rngs, epoch - 1, progress), self.out)
            logging.info("checkpoint at epoch %d, batch %d of %d (update %d)", epoch, iteration,
                         self.iters_per_epoch, self.updates)
        self.main_writes(write)

    def main_writes(self, write):
        """Rank 0 runs write() while the others wait; all learn whether it failed (a full disk), so
        none is left waiting for rank 0 in a collective."""
        error = None
        if self.info.is_main:
            try:
                write()
            except CheckpointWriteError as e:
                error = e
            except (OSError, RuntimeError) as e:  # the epoch's weights (atomic_save gives the disk's own error)
                error = CheckpointWriteError(f"cannot write in {self.out}: {str(e).splitlines()[0]}")
        if self.info.distributed and distributed.all_sum([float(error is not None)], self.info, self.device)[0]:
            error = error or CheckpointWriteError("rank 0 could not write its checkpoint (its log says why)")
        if error is not None:
            raise error
        self.schedule.saved()

    def save_epoch(self, epoch, rngs):
        """Weights, links and pruning first, checkpoint.pth last: a kill in between redoes the epoch."""
        args, out = self.args, self.out
        atomic_save(self.model.state_dict(), out / f"{epoch}epoch.pth")
        atomic_symlink(f"{epoch}epoch.pth", out / "latest.pth")
        keep = {epoch}
        for phase, key, mode in args.best_model_criterion:
            ranked = self.reporter.sorted_epochs(phase, key, mode)
            if ranked:
                atomic_symlink(f"{ranked[0]}epoch.pth", out / f"{phase}.{key}.best.pth")
                keep.update(ranked[:args.keep_nbest_models])
        for old in out.glob("*epoch.pth"):
            if int(old.name[:-len("epoch.pth")]) not in keep:
                old.unlink()
        save_checkpoint(self.checkpoint_state(rngs, epoch), out)

    def average_nbest(self):
        n = self.args.keep_nbest_models
        for phase, key, mode in self.args.best_model_criterion:
            ranked = self.reporter.sorted_epochs(phase, key, mode)[:n]
            if not ranked:
                continue
            name = f"{phase}.{key}.ave_{n}best.pth"
            atomic_save(average_state_dicts([self.out / f"{e}epoch.pth" for e in ranked]), self.out / name)
            atomic_symlink(name, self.out / f"{phase}.{key}.ave.pth")
            logging.info("averaged epochs %s by %s.%s into %s", ranked, phase, key, name)

    # ---- epochs ------------------------------------------------------------------------------
    def to_device(self, batch):
        return {k: batch[k].to(self.device) for k in self.task.input_keys}

    def loader(self, dataset, batches, epoch):
        local = [shard(b, self.info.rank, self.info.world_size) for b in batches]
        return ResilientLoader(dataset, local, self.task.collate, self.args.num_workers, self.args.worker_timeout,
                               seed=self.args.seed * 1000003 + epoch, describe=getattr(dataset, "describe", str),
                               stopping=lambda: bool(self.stop.received))

    def note_skipped(self, batch, acc):
        for utt, reason in batch["skipped"]:
            logging.warning("skipping %s: %s", utt, reason if "worker lost" in reason else
                            f"cannot load its features ({reason})")
        if batch["skipped"]:
            acc.count("skipped_utts", len(batch["skipped"]))

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.args.use_amp)

    def train_epoch(self, epoch):
        args, info = self.args, self.info
        self.ddp.train()
        batches = epoch_batches(self.train_batches, args.seed, epoch, args.num_iters_per_epoch)
        self.train_set.epoch = epoch  # augmentation draws per epoch (the loader copies the dataset)
        log_interval = args.log_interval or max(1, len(batches) // 20)
        first, acc, seen, spent = 0, Accumulator(), 0, 0.0
        order = batch_digest(batches)
        if self.progress and self.progress["epoch"] == epoch:  # resumed mid-epoch: on from the next batch
            p = self.progress
            if p.get("batches") not in (None, order):
                logging.warning("the batches of epoch %d differ from the checkpoint's (data or batch options "
                                "changed): the epoch starts again from its first batch", epoch)
            else:
                first, acc, seen, spent = (p["iteration"], Accumulator().load_state_dict(p["acc"]), p["seen"],
                                           p["elapsed"])
        start = time.monotonic() - spent
        params = [p for p in self.model.parameters() if p.requires_grad]
        buffers = [b for b in self.model.buffers() if b.is_floating_point()]
        self.optimizer.zero_grad()
        save_due = stop_due = False
        for it, batch in enumerate(self.loader(self.train_set, batches[first:], epoch), first + 1):
            self.note_skipped(batch, acc)
            n_local = len(batch["utts"])
            # one collective per batch: sizes, and whether any rank wants a checkpoint or was signalled
            n_global, n_empty, n_save, n_stop = distributed.all_sum(
                [n_local, float(n_local == 0), float(self.schedule.time_due()), float(bool(self.stop.received))],
                info, self.device)
            save_due, stop_due = save_due or n_save > 0, stop_due or n_stop > 0
            if n_empty > 0:  # every rank agrees to skip, so none waits in a collective
                acc.count("skipped_batches")
                continue
            sync = it % args.accum_grad == 0 or it == len(batches)
            saved = [b.clone() for b in buffers]
            with self.autocast():
                loss, stats = self.ddp(**self.to_device(batch))
            # Sum over utterances / global batch: gradients equal a single process's on the whole
            # batch once DDP averages them over the ranks.
            loss = loss * (n_local * info.world_size / n_global) / args.accum_grad
            no_sync = self.ddp.no_sync if info.distributed and not sync else contextlib.nullcontext
            with no_sync():
                self.scaler.scale(loss).backward()
            # A non-finite loss: BatchNorm's running statistics took the bad batch in; put them back
            # (after backward, which still needs them), without asking the device whether (no host
            # sync per step). The update is skipped below by the gradient norm, which every rank
            # agrees on.
            finite = torch.isfinite(loss.detach())
            for b, s in zip(buffers, saved):
                b.copy_(torch.where(finite, b, s))
            acc.add(stats, n_local)
            seen += n_global
            if not sync:
                continue
            self.optimizer_step(params, acc)
            self.updates += 1
            if it % log_interval == 0:
                # step/total and ETAs at this epoch's pace (validation not counted): the job launcher
                # shows this line as the live status of the training stage
                elapsed = time.monotonic() - start
                left = len(batches) - it
                logging.info("epoch %d %d/%d: loss=%.4g lr=%.3g %.1f %s/s, epoch eta %s, training eta %s",
                             epoch, it, len(batches), float(stats["loss"]), self.optimizer.param_groups[0]["lr"],
                             seen / max(elapsed, 1e-9), self.task.unit, duration(elapsed / it * left),
                             duration(elapsed / it * (left + (args.max_epoch - epoch) * len(batches))))
            if save_due or stop_due or self.schedule.steps_due(self.updates):
                self.save_progress(epoch, it, acc, seen, time.monotonic() - start, order)
                save_due = False
                if stop_due:
                    raise Preempted(f"checkpoint written at epoch {epoch}, batch {it} of {len(batches)}")
        elapsed = time.monotonic() - start
        means = self.epoch_means(acc)
        means.update({f"{self.task.unit}_per_s": seen / max(elapsed, 1e-9)}, time_s=elapsed,
                     lr=self.optimizer.param_groups[0]["lr"])
        return means

    def optimizer_step(self, params, acc):
        self.scaler.unscale_(self.optimizer)
        max_norm = self.args.grad_clip if self.args.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=self.args.grad_clip_type)
        if not torch.isfinite(grad_norm):
            # Gradients were averaged over ranks, so every rank sees the same norm and skips together.
            logging.warning("non-finite gradient norm %s: step skipped", float(grad_norm))
            acc.count("nonfinite_steps")
            if self.scaler.is_enabled():
                self.scaler.update()  # lowers the scale so fp16 recovers
        else:
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.scheduler is not None:
                self.scheduler.step()
        self.optimizer.zero_grad()

    @torch.no_grad()
    def valid_epoch(self):
        self.model.eval()
        acc = Accumulator()
        for batch in self.loader(self.valid_set, self.valid_batches, 0):
            self.note_skipped(batch, acc)
            if not batch["utts"]:
                continue
            with self.autocast():
                _, stats = self.model(**self.to_device(batch))
            acc.add(stats, len(batch["utts"]))
        return self.epoch_means(acc)

    def epoch_means(self, acc):
        """Means over all ranks' batches."""
        acc.resolve()
        parts = distributed.gather_objects((acc.sums, acc.weights, acc.counts), self.info)
        total = Accumulator()
        for sums, weights, counts in parts:
            for k in sums:
                total.sums[k] = total.sums.get(k, 0.0) + sums[k]
                total.weights[k] = total.weights.get(k, 0.0) + weights[k]
            for k, n in counts.items():
                total.count(k, n)
        return self.task.finish_stats(total.means())

    # ---- reporting ---------------------------------------------------------------------------
    def report(self, epoch):
        logging.info(self.reporter.line(epoch))
        epochs = self.reporter.epochs()
        keys = sorted({k for e in epochs for phase in self.reporter.stats[e].values() for k in phase})
        for key in keys:
            for phase in ("train", "valid"):
                value = self.reporter.value(epoch, phase, key)
                if self.tensorboard is not None and value is not None:
                    self.tensorboard.add_scalar(f"{phase}/{key}", value, epoch)
        if self.tensorboard is not None:
            self.tensorboard.flush()
        if self.args.use_matplotlib:
            images = self.out / "images"
            images.mkdir(exist_ok=True)
            for key in keys:
                series = {phase: [(e, self.reporter.value(e, phase, key)) for e in epochs
                                  if self.reporter.value(e, phase, key) is not None] for phase in ("train", "valid")}
                line_plot(images / f"{key}.png", {k: v for k, v in series.items() if v}, key)
            self.task.plot(self, epoch)

    # ---- main loop ---------------------------------------------------------------------------
    def run(self):
        args = self.args
        for epoch in range(self.start_epoch, args.max_epoch + 1):
            logging.info("epoch %d/%d started", epoch, args.max_epoch)
            train_stats = self.train_epoch(epoch)
            valid_stats = self.valid_epoch()
            self.reporter.record(epoch, "train", train_stats)
            self.reporter.record(epoch, "valid", valid_stats)
            rngs = distributed.gather_objects(rng_state(), self.info)
            if self.info.is_main:
                self.report(epoch)
            self.main_writes(lambda: self.save_epoch(epoch, rngs))
            self.progress = None
            if args.patience and self.reporter.epochs_since_best(*args.early_stopping_criterion) >= args.patience:
                logging.info("no improvement of %s.%s for %d epochs: stopping early", *args.early_stopping_criterion[:2],
                             args.patience)
                break
            # a signal during validation takes effect here, once the epoch's checkpoint is written
            if distributed.all_sum([float(bool(self.stop.received))], self.info, self.device)[0] > 0 \
                    and epoch < args.max_epoch:
                raise Preempted(f"checkpoint written at the end of epoch {epoch}")
        if self.info.is_main:
            self.average_nbest()
            if self.tensorboard is not None:
                self.tensorboard.close()
            logging.info("training finished: %s", self.out)


def train(args, info, task=None):
    """Entry point of every rank."""
    setup_logging(args, info)
    distributed.init_process_group(info, args.dist_timeout)
    trainer = None
    try:
        trainer = Trainer(args, info, task)
        trainer.run()
    except Preempted as e:
        logging.warning("stopped on a signal: %s; rerun with --resume true to continue (exit status %d)",
                        e, PREEMPTED)
        raise SystemExit(PREEMPTED) from None
    finally:
        if trainer is not None:
            trainer.stop.uninstall()
        if info.distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
