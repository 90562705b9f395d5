"""Train a Conv1D CTC model from a YAML config (the recipe's pretrain stage).

One process on CPU or one GPU; several with torchrun (DDP; gloo on CPU, nccl on GPUs). Writes
to --exp_dir: checkpoint.pt (resume state, updated every train.save_interval_steps steps and
every epoch), <N>epoch.pth per epoch, valid.cer.ave.pth (the n best epochs averaged),
images/*.png (curves), history.tsv, train.log, config.yaml, tokens.txt and cmvn.npy (what
decoding needs).

Usage:
    python -m rsqasr.bin.train --config conf/train_convdfsmn.yaml --train_dir data/train \
        --valid_dir data/dev --token_list data/token_list/char/tokens.txt \
        --cmvn data/train/cmvn.ark --exp_dir exp/train_convdfsmn
    torchrun --standalone --nproc_per_node 2 -m rsqasr.bin.train --ngpu 0 ...   # DDP, 2 CPU processes
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import torch
import yaml

from rsqasr.bin._cli import make_parser, run
from rsqasr.ctc_model import CTCModel, cmvn_ark_to_npy
from rsqasr.inference import calibration_batches, quantize_net
from rsqasr.data.datadir import DataDirError
from rsqasr.dataio.dataset import FeatsTextDataset
from rsqasr.dataio.text import TextProcessor
from rsqasr.models import build_model
from rsqasr.train.config import load_config
from rsqasr.train.trainer import Trainer, TrainingError, init_distributed, load_checkpoint
from rsqasr.utils.fileio import atomic_write_text
from rsqasr.utils.log import LOG_FORMAT


def str2bool(v: str) -> bool:
    if v not in ("true", "false"):
        raise ValueError(f"expected true or false, got {v!r}")
    return v == "true"


def filter_trainable(ds: FeatsTextDataset, net: torch.nn.Module, max_frames: int) -> None:
    """Drop utterances the model cannot produce a CTC alignment for (too short for their label
    count); an utterance longer than a whole batch may hold is an error."""
    dropped = []
    for utt in list(ds.keys):
        n = ds.num_frames[utt]
        if max_frames and n > max_frames:
            raise DataDirError(f"{ds.data_dir}: utterance '{utt}' has {n} frames, more than train.max_frames "
                               f"({max_frames}) allows in one batch")
        out = int(net.output_lengths(torch.tensor([n]))[0]) if n >= net.min_input_frames else 0
        if out < len(ds.text.encode(ds.transcripts[utt])):
            dropped.append(utt)
    if dropped:
        logging.warning("%s: %d utterances too short for their transcripts (e.g. %s) are not trained on",
                        ds.data_dir, len(dropped), dropped[0])
        keep = set(ds.keys) - set(dropped)
        ds.keys = [u for u in ds.keys if u in keep]
        ds.num_frames = {u: n for u, n in ds.num_frames.items() if u in keep}
    if not ds.keys:
        raise DataDirError(f"{ds.data_dir}: no utterance left to train on")


# settings that do not change what is trained (logging, checkpoint cadence, how many to average)
_NOT_TRAINING = {"log_interval", "save_interval_steps", "keep_nbest", "num_workers"}


def config_digest(conf: dict) -> str:
    """A digest of every resolved setting that changes training: a checkpoint made with other
    settings is not resumed."""
    import hashlib
    import json

    c = {k: v for k, v in conf.items() if k != "model_info_vocab_size"}
    c["train"] = {k: v for k, v in conf["train"].items() if k not in _NOT_TRAINING}
    return hashlib.sha256(json.dumps(c, sort_keys=True, default=str).encode()).hexdigest()[:16]


_LOCK = None   # held open for the life of the process: the kernel releases it when the process ends


def lock_exp_dir(exp: Path) -> None:
    """Refuse to train into ``exp`` while another live process trains there (``exp/.lock``, an
    flock: a killed trainer's lock goes with it, so a stale file never blocks)."""
    import fcntl

    global _LOCK
    f = open(exp / ".lock", "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise TrainingError(f"{exp}: in use by pid {holder} (a training is running there); wait for it, "
                            f"stop it, or use another --exp_dir") from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    _LOCK = f


def main(args) -> None:
    conf = load_config(args.config, args.finetune_config)
    if args.seed is not None:
        conf["train"]["seed"] = args.seed
    if args.rsq_beta is not None:
        conf["rsq"]["beta"] = args.rsq_beta
    if args.init_checkpoint and not Path(args.init_checkpoint).is_file():   # before anything is written
        raise FileNotFoundError(f"{args.init_checkpoint}: --init_checkpoint not found")
    d = init_distributed(args.ngpu)
    exp = Path(args.exp_dir)
    exp.mkdir(parents=True, exist_ok=True)
    if d.is_main:
        lock_exp_dir(exp)
    if d.is_main:
        fh = logging.FileHandler(exp / "train.log")
        fh.setFormatter(logging.Formatter(LOG_FORMAT))
        logging.getLogger().addHandler(fh)
    text = TextProcessor(args.token_list, args.token_type, args.bpe_model)
    train_set = FeatsTextDataset(args.train_dir, text)
    input_dim = train_set.load(train_set.keys[0]).feats.shape[1]
    train_set.feat_dim = input_dim
    valid_set = FeatsTextDataset(args.valid_dir, text, feat_dim=input_dim)
    torch.manual_seed(conf["train"]["seed"])
    net = build_model(conf["model"], input_dim=input_dim, vocab_size=text.vocab_size)
    filter_trainable(train_set, net, conf["train"]["max_frames"])
    quant = conf["rsq"] if args.rsq else None
    meta = {"model": conf["model"], "input_dim": input_dim, "vocab_size": text.vocab_size, "quant": quant,
            "config": config_digest(conf), "train_dir": str(Path(args.train_dir).resolve())}
    resuming = args.resume and (exp / "checkpoint.pt").is_file()
    if not args.resume and d.is_main:
        stale = [exp / "checkpoint.pt", *exp.glob("*epoch.pth")]
        if any(p.is_file() for p in stale):
            logging.info("--resume false: removing the previous run's checkpoints in %s; training from scratch", exp)
            for p in stale:
                p.unlink(missing_ok=True)
    if resuming:
        load_checkpoint(exp / "checkpoint.pt", meta)  # another model's experiment: stop before writing anything
    if quant and not resuming and not args.init_checkpoint:
        raise ValueError("--rsq true fine-tunes a trained model: give it with --init_checkpoint")
    if d.is_main:
        cmvn_ark_to_npy(args.cmvn, exp / "cmvn.npy")
        shutil.copyfile(args.token_list, exp / "tokens.txt")
        if args.bpe_model:
            shutil.copyfile(args.bpe_model, exp / "bpe.model")
        atomic_write_text(exp / "config.yaml", yaml.safe_dump(
            {**conf, "input_dim": input_dim, "vocab_size": text.vocab_size, "token_type": args.token_type,
             "quant": quant}, allow_unicode=True, sort_keys=False))
    if d.world_size > 1:
        torch.distributed.barrier()
    model = CTCModel(net, exp / "cmvn.npy", conf["specaug"]).to(d.device)
    if not resuming and args.init_checkpoint:
        state = torch.load(args.init_checkpoint, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "model" in state and "format" in state:
            state = state["model"]
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise TrainingError(f"{args.init_checkpoint}: does not fit this model (missing {missing[:3]}..., "
                                f"unexpected {unexpected[:3]}...)")
        logging.info("initialized from %s", args.init_checkpoint)
    if quant:
        scales = None
        if not resuming:  # LSQ scales start from the KL calibration of the initial model
            from rsqasr.quant import calibrate, make_plan

            plan = make_plan(net, kind=quant["plan"], quantize_classifier=bool(quant["quantize_classifier"]),
                             depthwise=quant["depthwise"])
            scales = calibrate(net, plan, calibration_batches(model, args.train_dir, quant["calib_utts"]))
        quantize_net(net, quant, scales)
        model.to(d.device)
        logging.info("RSQ: %d quantized layers (%s plan), beta %g\n%s", len(net.quant_plan.quantized_layers()),
                     quant["plan"], quant["beta"], net.quant_plan.table())
    nparams = sum(p.numel() for p in net.parameters())
    logging.info("model %s: %.2f M parameters, input dim %d, vocabulary %d; %d train / %d valid utterances; "
                 "%d process(es) on %s", conf["model"]["kind"], nparams / 1e6, input_dim, text.vocab_size,
                 len(train_set), len(valid_set), d.world_size, d.device)
    trainer = Trainer(conf, model, train_set, valid_set, text, exp, d, meta)
    if resuming:
        trainer.resume()
    trainer.train()
    avg = trainer.finish()
    logging.info("finished after %d steps; averaged model: %s", trainer.state["step"], avg)
    if d.world_size > 1:
        torch.distributed.destroy_process_group()


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--config", required=True, help="conf/train_<model>.yaml")
    p.add_argument("--train_dir", required=True, help="data dir with feats.scp, utt2num_frames, text")
    p.add_argument("--valid_dir", required=True)
    p.add_argument("--token_list", required=True)
    p.add_argument("--token_type", choices=["char", "bpe"], default="char")
    p.add_argument("--bpe_model", default=None)
    p.add_argument("--cmvn", required=True, help="Kaldi global CMVN stats of the training data")
    p.add_argument("--exp_dir", required=True)
    p.add_argument("--ngpu", type=int, default=0, help="GPUs per process (0: CPU)")
    p.add_argument("--resume", type=str2bool, default=True, help="continue from exp_dir/checkpoint.pt if present")
    p.add_argument("--init_checkpoint", default=None, help="initialize the weights from this model (fine-tuning)")
    p.add_argument("--seed", type=int, default=None, help="override train.seed")
    p.add_argument("--finetune_config", default=None,
                   help="a config whose optim/scheduler/train/rsq sections override --config's (fine-tuning)")
    p.add_argument("--rsq", type=str2bool, default=False,
                   help="RSQ fine-tuning: wrap the layers with LSQ fake quantization (the config's rsq section), "
                        "scales initialized by KL calibration of --init_checkpoint")
    p.add_argument("--rsq_beta", type=float, default=None, help="override rsq.beta (0: RSQ without the noise loss)")
    return p


if __name__ == "__main__":
    run(main, get_parser())
