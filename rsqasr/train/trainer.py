"""The CTC training loop: checkpoints with everything needed to resume exactly, validation CER
per epoch, n-best averaging (espnet2's average_nbest_models over espnet2's Reporter), curves as
PNG, and DDP through torch.distributed (gloo on CPU, nccl on GPUs).

Exact resume: the sampler's position (epoch, batch index) is in the checkpoint, and every
batch's random numbers (SpecAugment, dropout) come from a seed derived from (seed, rank, epoch,
batch index), so a resumed run draws the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from rsqasr.ctc_model import CTCModel, greedy_ids
from rsqasr.quant import constrain_scales_, quant_noise_loss
from rsqasr.dataio.dataset import BucketBatchSampler, FeatsTextDataset, collate
from rsqasr.dataio.text import TextProcessor
from rsqasr.scoring import Counts, align
from rsqasr.utils.fileio import atomic_open
from rsqasr.utils.log import progress_enabled

logger = logging.getLogger(__name__)

CKPT_FORMAT = "rsqasr-train-1"


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss keeps being NaN); the message says why."""


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def save_torch(obj, path: Path) -> None:
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


def batch_seed(seed: int, rank: int, epoch: int, index: int) -> int:
    return (seed * 1_000_003 + rank * 7_919 + epoch * 104_729 + index) % (2**63 - 1)


def lr_lambda_factory(sched: dict, total_steps: int):
    name, warm = sched["name"], int(sched.get("warmup_steps", 0))
    power, floor = float(sched.get("power", 1.0)), float(sched.get("final_lr_ratio", 0.0))
    if name not in ("warmup_poly", "warmup_cosine", "poly", "constant"):
        raise ValueError(f"scheduler.name must be warmup_poly, warmup_cosine, poly or constant, not {name!r}")

    def f(step: int) -> float:
        if name == "constant":
            return 1.0
        if name.startswith("warmup_") and warm > 0 and step < warm:
            return (step + 1) / warm
        if name == "warmup_cosine":   # half a cosine from 1 after the warm-up down to the floor at the end
            done = min(max(step - warm, 0), total_steps - warm) / max(total_steps - warm, 1)
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * done))
        done = min(step, total_steps) / max(total_steps, 1)
        return max(floor, (1.0 - done) ** power)

    return f


def evaluate(model: CTCModel, dataset: FeatsTextDataset, text: TextProcessor, batch_size: int,
             device: torch.device, max_utts: int = 0) -> dict:
    """Mean CTC loss per utterance and greedy CER over ``dataset``."""
    model.eval()
    keys = dataset.keys[:max_utts] if max_utts else dataset.keys
    keys = sorted(keys, key=lambda u: dataset.num_frames[u])
    counts, loss_sum, n = Counts(), 0.0, 0
    with torch.no_grad():
        for s in range(0, len(keys), batch_size):
            b = collate([dataset.load(u) for u in keys[s: s + batch_size]])
            losses, logits, out_lens = model(b["feats"].to(device), b["feat_lens"].to(device),
                                             b["targets"].to(device), b["target_lens"].to(device))
            finite = torch.isfinite(losses)
            loss_sum += float(losses[finite].sum())
            n += int(finite.sum())
            for ids, tgt, tl in zip(greedy_ids(logits, out_lens), b["targets"], b["target_lens"]):
                ref = text.converter.ids2tokens(tgt[: int(tl)].tolist())
                counts += align(ref, text.converter.ids2tokens(ids)).counts
    model.train()
    return {"loss": loss_sum / max(n, 1), "cer": counts.rate}


def param_groups(model: torch.nn.Module, lr: float, scale_lr: float, relative: bool = True) -> list[dict]:
    """Optimizer groups: every weight in one group at ``lr``; each LSQ scale (RSQ fine-tuning) in
    its own group (no weight decay) at ``lr * scale_lr * |s0|`` with ``relative`` (Adam; s0: its
    value now, the KL initialization), else at ``lr * scale_lr`` (SGD, where LSQ's gradient scale
    already sizes the steps). Adam moves a parameter by about its learning rate per step whatever
    the gradient's size, so at the weights' rate a scale of 2e-4 would be pushed by 5e-4 in one
    step; relative to s0 the scale moves by about ``lr * scale_lr`` of itself per step."""
    from rsqasr.quant.lsq import LSQQuantizer

    scales = [m.scale for m in model.modules() if isinstance(m, LSQQuantizer)]
    ids = {id(p) for p in scales}
    groups = [{"params": [p for p in model.parameters() if id(p) not in ids]}]
    for p in scales:
        s0 = float(p.detach().abs().mean()) if relative else 1.0
        groups.append({"params": [p], "lr": lr * scale_lr * s0, "weight_decay": 0.0})
    return groups


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether the CPU computes bfloat16 dot products in hardware: AVX-512 BF16 or AMX-BF16 on
    x86-64, the BF16 extension on AArch64 (flags as Linux's /proc/cpuinfo lists them). Without
    them oneDNN converts to float32 and back, and a bf16 autocast is slower than float32."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags = set(value.split())
            return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    return False


def resolve_amp(amp: str, device: torch.device, quantized: bool, cpuinfo: str | Path = "/proc/cpuinfo"
                ) -> tuple[bool, str]:
    """train.amp -> (bf16 autocast on?, why). ``auto`` takes bf16 where the hardware computes it
    (a CUDA GPU with bf16, a CPU with native bf16 dot products) and float32 elsewhere, and always
    float32 for RSQ fine-tuning: LSQ's x/s and rounding in bfloat16 (8 significant bits) would put
    values in the wrong integer bin, so an explicit ``bf16`` there is refused."""
    if amp not in ("none", "bf16", "auto"):
        raise ValueError(f"train.amp must be none, bf16 or auto, not {amp!r}")
    if amp == "none":
        return False, "asked for"
    if quantized:
        if amp == "bf16":
            raise ValueError("train.amp: bf16 cannot be used for RSQ fine-tuning (fake quantization needs float32); "
                             "set amp: none or auto in the fine-tuning config")
        return False, "RSQ fine-tuning runs in float32"
    if amp == "bf16":
        return True, "asked for"
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, "the GPU has bf16" if ok else "the GPU has no bf16"
    ok = cpu_has_native_bf16(cpuinfo)
    return ok, ("the CPU has native bf16 dot products" if ok else
                "the CPU has no native bf16 (AVX-512 BF16 / AMX / ARM BF16): emulated bf16 would be slower")


class Trainer:
    def __init__(self, conf: dict, model: CTCModel, train_set: FeatsTextDataset, valid_set: FeatsTextDataset,
                 text: TextProcessor, exp_dir: Path, dist_info: DistInfo, meta: dict):
        self.conf, self.tc = conf, conf["train"]
        self.model, self.train_set, self.valid_set, self.text = model, train_set, valid_set, text
        self.exp_dir, self.d, self.meta = Path(exp_dir), dist_info, meta
        self.sampler = BucketBatchSampler(train_set.num_frames, self.tc["batch_size"], self.tc["max_frames"],
                                          shuffle=True, seed=self.tc["seed"], rank=dist_info.rank,
                                          world_size=dist_info.world_size, sorted_epochs=self.tc["sortagrad"])
        if len(self.sampler) == 0:
            raise TrainingError(f"{train_set.data_dir}: fewer batches ({len(self.sampler.batches)}) than processes "
                                f"({dist_info.world_size})")
        self.accum = int(self.tc["accum_grad"])
        steps_per_epoch = len(self.sampler) // self.accum
        self.total_steps = int(self.tc["max_steps"]) or steps_per_epoch * int(self.tc["epochs"])
        oc = conf["optim"]
        groups = param_groups(model, oc["lr"], float(conf["rsq"]["scale_lr"]), relative=oc["name"] == "adam")
        if oc["name"] == "adam":
            self.optim = torch.optim.Adam(groups, lr=oc["lr"], betas=tuple(oc["betas"]),
                                          weight_decay=oc["weight_decay"])
        elif oc["name"] == "sgd":
            self.optim = torch.optim.SGD(groups, lr=oc["lr"], momentum=0.9, weight_decay=oc["weight_decay"])
        else:
            raise ValueError(f"optim.name must be adam or sgd, not {oc['name']!r}")
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.optim, lr_lambda_factory(conf["scheduler"], self.total_steps))
        self.ddp_model: torch.nn.Module = model
        if dist_info.world_size > 1:
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[dist_info.device.index] if dist_info.device.type == "cuda" else None)
        from espnet2.train.reporter import Reporter

        self.reporter = Reporter()
        # RSQ fine-tuning: the net's layers were wrapped by rsqasr.quant.quantize_model
        self.quantized = hasattr(model.net, "quant_plan")
        self.amp, why = resolve_amp(self.tc["amp"], dist_info.device, self.quantized)
        logger.info("train.amp: %s -> %s (%s)", self.tc["amp"], "bf16 autocast" if self.amp else "float32", why)
        self.rsq_beta = float(conf["rsq"]["beta"]) if self.quantized else 0.0
        self.noise_norm = conf["rsq"]["noise_norm"]
        if self.quantized:
            # the activation scales learn the statistics of the inference-time network: no dropout
            off = [m for m in model.modules() if isinstance(m, torch.nn.Dropout) and m.p > 0]
            for m in off:
                m.p = 0.0
            if off:
                logger.info("RSQ fine-tuning: %d dropout layer(s) switched off", len(off))
        self.state = {"epoch": 1, "batch": 0, "step": 0, "bad_in_a_row": 0, "bad_total": 0,
                      "epoch_loss_sum": 0.0, "epoch_utts": 0}

    # --- checkpoints -------------------------------------------------------------------
    @property
    def ckpt_path(self) -> Path:
        return self.exp_dir / "checkpoint.pt"

    def save_checkpoint(self) -> None:
        if not self.d.is_main:
            return
        save_torch({"format": CKPT_FORMAT, "meta": self.meta, "model": self.model.state_dict(),
                    "optimizer": self.optim.state_dict(), "scheduler": self.sched.state_dict(),
                    "reporter": self.reporter.state_dict(), "state": dict(self.state)}, self.ckpt_path)

    def resume(self) -> bool:
        if not self.ckpt_path.is_file():
            return False
        ck = load_checkpoint(self.ckpt_path, self.meta)
        self.model.load_state_dict(ck["model"])
        self.optim.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        self.reporter.load_state_dict(ck["reporter"])
        self.state.update(ck["state"])
        logger.info("resumed from %s: epoch %d, batch %d, step %d", self.ckpt_path, self.state["epoch"],
                    self.state["batch"], self.state["step"])
        return True

    # --- the loop ----------------------------------------------------------------------
    def _all_finite(self, losses: torch.Tensor) -> bool:
        ok = torch.tensor(1.0 if bool(torch.isfinite(losses).all()) else 0.0)
        if self.d.world_size > 1:
            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        return bool(ok.item() == 1.0)

    def _done(self) -> bool:
        return (self.tc["max_steps"] and self.state["step"] >= self.tc["max_steps"]) or \
            self.state["epoch"] > int(self.tc["epochs"])

    def train(self) -> None:
        tc, st = self.tc, self.state
        self._t_start, self._epochs_here = time.time(), 0   # for the ETA of the epoch lines
        self.model.train()
        while not self._done():
            epoch = st["epoch"]
            self.reporter.set_epoch(epoch)
            self.sampler.set_epoch(epoch, start=st["batch"])
            batches = list(self.sampler)
            t0 = time.time()
            bar = tqdm(total=len(self.sampler), initial=st["batch"], desc=f"epoch {epoch}", unit="batch",
                       disable=not (self.d.is_main and progress_enabled()))
            for keys in batches:
                index = st["batch"]
                torch.manual_seed(batch_seed(tc["seed"], self.d.rank, epoch, index))
                b = collate([self.train_set.load(u) for u in keys])
                with torch.autocast(self.d.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    losses, _, _ = self.ddp_model(b["feats"].to(self.d.device), b["feat_lens"].to(self.d.device),
                                                  b["targets"].to(self.d.device), b["target_lens"].to(self.d.device))
                st["batch"] = index + 1
                bar.update(1)
                if not self._all_finite(losses):
                    st["bad_in_a_row"] += 1
                    st["bad_total"] += 1
                    logger.warning("epoch %d batch %d: non-finite CTC loss (utterances %s...); batch skipped "
                                   "(%d in a row, %d in all)", epoch, index, keys[0], st["bad_in_a_row"], st["bad_total"])
                    self.optim.zero_grad(set_to_none=True)
                    if st["bad_in_a_row"] >= tc["max_bad_batches"]:
                        raise TrainingError(f"{st['bad_in_a_row']} batches in a row had a NaN/inf loss "
                                            f"(last: epoch {epoch}, batch {index}); lower the learning rate or check the data")
                    continue
                st["bad_in_a_row"] = 0
                loss = losses.sum() / len(keys)
                if self.rsq_beta > 0:
                    loss = loss + self.rsq_beta * quant_noise_loss(self.model.net, self.noise_norm)
                (loss / self.accum).backward()
                st["epoch_loss_sum"] += float(losses.detach().sum())
                st["epoch_utts"] += len(keys)
                if st["batch"] % self.accum != 0:
                    continue
                if tc["grad_clip"] > 0:
                    gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc["grad_clip"])
                    if not torch.isfinite(gnorm):
                        logger.warning("non-finite gradient norm; step skipped")
                        self.optim.zero_grad(set_to_none=True)
                        continue
                self.optim.step()
                if self.quantized:
                    constrain_scales_(self.model.net)
                self.sched.step()
                self.optim.zero_grad(set_to_none=True)
                st["step"] += 1
                if self.d.is_main and st["step"] % tc["log_interval"] == 0:
                    logger.info("epoch %d step %d: loss %.3f lr %.2e", epoch, st["step"],
                                st["epoch_loss_sum"] / max(st["epoch_utts"], 1), self.sched.get_last_lr()[0])
                if st["step"] % tc["save_interval_steps"] == 0:
                    self.save_checkpoint()
                if tc["max_steps"] and st["step"] >= tc["max_steps"]:
                    break
            bar.close()
            self._end_epoch(epoch, time.time() - t0)

    def _end_epoch(self, epoch: int, seconds: float) -> None:
        st = self.state
        loss_sum = torch.tensor([st["epoch_loss_sum"], float(st["epoch_utts"])])
        if self.d.world_size > 1:
            dist.all_reduce(loss_sum)
        train_loss = float(loss_sum[0] / max(loss_sum[1], 1))
        if self.d.is_main:
            v = evaluate(self.model, self.valid_set, self.text, self.tc["batch_size"], self.d.device,
                         self.tc["valid_max_utts"])
            with self.reporter.observe("train") as sub:
                sub.register({"loss": train_loss, "lr": self.sched.get_last_lr()[0], "seconds": seconds})
                sub.next()
            with self.reporter.observe("valid") as sub:
                sub.register({"loss": v["loss"], "cer": v["cer"]})
                sub.next()
            # the ETA from this process's epochs so far (validation included)
            self._epochs_here += 1
            per_epoch = (time.time() - self._t_start) / self._epochs_here
            left = max(0, int(self.tc["epochs"]) - epoch)
            if self.tc["max_steps"]:
                left = min(left, math.ceil(max(0, self.tc["max_steps"] - st["step"]) / max(len(self.sampler), 1)))
            logger.info("epoch %d/%d done in %.0f s: train loss %.3f, valid loss %.3f, valid CER %.4f, step %d, "
                        "ETA %.1f min", epoch, int(self.tc["epochs"]), seconds, train_loss, v["loss"], v["cer"],
                        st["step"], left * per_epoch / 60)
            save_torch(self.model.state_dict(), self.exp_dir / f"{epoch}epoch.pth")
        st.update(epoch=epoch + 1, batch=0, epoch_loss_sum=0.0, epoch_utts=0)
        self.save_checkpoint()
        if self.d.is_main:
            try:
                self.reporter.matplotlib_plot(self.exp_dir / "images")
            except Exception as e:  # noqa: BLE001 - a plot must never stop training
                logger.warning("could not draw the training curves: %s", e)
        if self.d.world_size > 1:
            dist.barrier()

    def finish(self) -> Path:
        """Average the n best epochs by valid CER; returns the averaged model's path."""
        from espnet2.main_funcs.average_nbest_models import average_nbest_models

        if self.d.is_main:
            average_nbest_models(self.exp_dir, self.reporter, [("valid", "cer", "min")], int(self.tc["keep_nbest"]))
            with atomic_open(self.exp_dir / "history.tsv") as f:
                f.write("epoch\ttrain_loss\tvalid_loss\tvalid_cer\n")
                for e in range(1, self.reporter.get_epoch() + 1):
                    if self.reporter.has("valid", "cer", e):
                        f.write(f"{e}\t{self.reporter.get_value('train', 'loss', e):.4f}\t"
                                f"{self.reporter.get_value('valid', 'loss', e):.4f}\t"
                                f"{self.reporter.get_value('valid', 'cer', e):.4f}\n")
        if self.d.world_size > 1:
            dist.barrier()
        return self.exp_dir / "valid.cer.ave.pth"


# What a checkpoint holds besides tensors and plain containers: numpy scalars in the reporter's
# history, the elapsed time as a timedelta. weights_only=True refuses everything else (no code
# runs from a crafted file).
_CKPT_SAFE_GLOBALS = [datetime.timedelta, np._core.multiarray.scalar, np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.float32)),
                      type(np.dtype(np.int64))]


def load_checkpoint(path: Path, meta: dict | None = None) -> dict:
    """Load a training checkpoint; with ``meta``, insist it was made for the same model."""
    try:
        with torch.serialization.safe_globals(_CKPT_SAFE_GLOBALS):
            ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file
        raise TrainingError(f"{path}: cannot load checkpoint: {e}") from e
    if not isinstance(ck, dict) or ck.get("format") != CKPT_FORMAT:
        raise TrainingError(f"{path}: not an rsqasr training checkpoint")
    if meta is not None and ck["meta"] != meta:
        diff = {k: (ck["meta"].get(k), meta.get(k)) for k in set(ck["meta"]) | set(meta) if ck["meta"].get(k) != meta.get(k)}
        raise TrainingError(f"{path}: checkpoint was made for another model, data or training config: "
                            f"(checkpoint, now) = {diff}; use a new experiment dir, or retrain from scratch "
                            f"(--force true in the recipe, --resume false here)")
    return ck


def init_distributed(ngpu: int) -> DistInfo:
    """Read torchrun's environment; one process without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if ngpu > 0:
        if not torch.cuda.is_available():
            raise TrainingError(f"--ngpu {ngpu} but CUDA is not available; use --ngpu 0")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1:
        dist.init_process_group(backend="nccl" if ngpu > 0 else "gloo")
    return DistInfo(rank=rank, world_size=world, device=device)
