"""Acoustic models: Table 1 sizes, length arithmetic, padding invariance, config errors, CTC training."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch
import yaml
from torch import nn

from conftest import REPO, run
from rsqasr.models import (ConvDFSMN, Wav2letter, build_model, check_input_lengths, conv1d_layers,
                           count_params_macs)
from rsqasr.quant.plan import winograd_candidates

AISHELL_CONF = REPO / "egs" / "aishell" / "conf"
MINI_CONF = REPO / "egs" / "mini_aishell" / "conf"
# Table 1 of the paper: params (M), FLOPs (G, one multiply-add = one), classifier in ().
TABLE1 = {
    "train_convdfsmn_b.yaml": (16.20e6, 2.45e9),
    "train_convdfsmn_s.yaml": (12.37e6, 1.87e9),
    "train_wav2letter.yaml": (17.32e6, 2.62e9),
}
CLASSIFIER = (6.52e6, 0.98e9)
PAPER_CONFIGS = [AISHELL_CONF / name for name in TABLE1]
MINI_CONFIGS = [MINI_CONF / "train_convdfsmn.yaml", MINI_CONF / "train_wav2letter.yaml"]
ALL_CONFIGS = PAPER_CONFIGS + MINI_CONFIGS


def model_conf(path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["model"]


def tiny(kind: str, **over) -> nn.Module:
    conf = {"convdfsmn": dict(kind="convdfsmn", front_channels=16, context_kernel=15, unit_widths=[24, 32],
                              num_blocks=2, hidden_size=32, proj_size=16, memory_size=5, output_size=24),
            "wav2letter": dict(kind="wav2letter", front_channels=16, conv_channels=[24, 24, 24],
                               fc_sizes=[32, 24])}[kind]
    conf.update(over)
    return build_model(conf, input_dim=20, vocab_size=11)


def expected_out_len(n: int) -> int:
    return math.ceil(math.ceil(n / 2) / 2)    # two (k=3, s=2, pad=1) convs; the rest keep length


@pytest.fixture(autouse=True)
def one_thread():
    """Small convs run fastest, and steadiest on a loaded machine, on one thread."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def model_info(capsys, *argv: str) -> tuple[int, str, str]:
    """Run the model_info entry point in-process: (exit status, stdout, stderr)."""
    from rsqasr.bin._cli import run as cli_run
    from rsqasr.bin.model_info import get_parser, main

    status = 0
    try:
        cli_run(main, get_parser(), ["--verbose", "0", *argv])
    except SystemExit as e:
        status = e.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("config", PAPER_CONFIGS, ids=lambda p: p.stem)
def test_model_info_json_matches_table1(config, capsys):
    status, out, _ = model_info(capsys, "--config", str(config), "--json")
    assert status == 0
    counts = json.loads(out)
    assert set(counts) == {"params", "macs", "classifier_params", "classifier_macs"}
    assert all(isinstance(v, int) for v in counts.values())
    params, macs = TABLE1[config.name]
    for key, ref in [("params", params), ("macs", macs),
                     ("classifier_params", CLASSIFIER[0]), ("classifier_macs", CLASSIFIER[1])]:
        assert abs(counts[key] - ref) / ref < 0.10, (key, counts[key], ref)
    # the classifier, Linear(768 -> V), runs at the subsampled rate: MACs = 150 frames x weights
    v = yaml.safe_load(config.read_text(encoding="utf-8"))["model_info_vocab_size"]
    assert counts["classifier_params"] == 769 * v and counts["classifier_macs"] == 150 * 768 * v


def test_model_info_command_line():
    proc = run([sys.executable, "-m", "rsqasr.bin.model_info", "--config",
                str(AISHELL_CONF / "train_convdfsmn_b.yaml")], cwd=REPO)
    assert "16.15 M" in proc.stdout and "2.42 G" in proc.stdout and "(classifier 6.46 M)" in proc.stdout
    for shape in ["(15, 128, 128)", "(3, 128, 512)", "(3, 128, 768)", "(3, 128, 1024)"]:
        assert shape in proc.stdout


def test_model_info_vocab_and_config_errors(tmp_path, capsys):
    conf = tmp_path / "m.yaml"
    conf.write_text("model:\n  kind: wav2letter\n  front_channels: 8\n  conv_channels: [8]\n"
                    "  conv_kernels: [3]\n  fc_sizes: [8]\n")
    status, _, err = model_info(capsys, "--config", str(conf), "--json")
    assert status == 1 and "vocab_size" in err
    status, out, _ = model_info(capsys, "--config", str(conf), "--json", "--vocab_size", "100")
    assert status == 0 and json.loads(out)["classifier_params"] == 9 * 100
    conf.write_text("model:\n  kind: wav2letter\n  channels: 3\n")
    status, _, err = model_info(capsys, "--config", str(conf), "--vocab_size", "9")
    assert status == 1 and "'channels'" in err and "Traceback" not in err
    conf.write_text("train: {}\n")
    status, _, err = model_info(capsys, "--config", str(conf), "--vocab_size", "9")
    assert status == 1 and "no 'model:'" in err


def test_count_params_macs_by_hand():
    m = build_model(dict(kind="wav2letter", front_channels=4, conv_channels=[6], conv_kernels=[5], fc_sizes=[7]),
                    input_dim=3, vocab_size=5)
    c = count_params_macs(m, frames=10, input_dim=3)
    # frames 10 -> 5 -> 3 ; conv (3,3->4,s2), conv (3,4->4,s2), conv (5,4->6), conv (1,6->7), Linear(7->5)
    macs = 5 * 4 * 3 * 3 + 3 * 4 * 4 * 3 + 3 * 6 * 4 * 5 + 3 * 7 * 6 + 3 * 5 * 7
    params = (36 + 4) + (48 + 4) + (120 + 6) + (42 + 7) + (35 + 5)
    assert c == {"params": params, "macs": macs, "classifier_params": 40, "classifier_macs": 105}
    with pytest.raises(ValueError, match="input_dim"):
        count_params_macs(m, frames=10, input_dim=80)


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda p: f"{p.parent.parent.name}-{p.stem}")
def test_output_shapes_and_lengths(config):
    torch.manual_seed(0)
    model = build_model(model_conf(config), input_dim=80, vocab_size=13).eval()
    assert model.subsampling == 4 and model.min_input_frames == 1
    assert model.receptive_field > 100
    for n in [1, 2, 3, 4, 5, 7, 64, 599, 600, 601]:
        with torch.no_grad():
            logits, out_lens = model(torch.randn(1, n, 80), torch.tensor([n]))
        assert logits.shape == (1, expected_out_len(n), 13), n
        assert out_lens.tolist() == [expected_out_len(n)] == [model.output_lengths(n)]
    assert model.output_lengths(600) == 150
    assert model.output_lengths(torch.tensor([1, 600, 601])).tolist() == [1, 150, 151]
    with pytest.raises(ValueError, match="too short"):
        model(torch.randn(2, 5, 80), torch.tensor([5, 0]))
    with pytest.raises(ValueError, match="too short"):
        model(torch.randn(1, 0, 80), torch.tensor([0]))
    with pytest.raises(ValueError, match="exceed"):
        model(torch.randn(1, 5, 80), torch.tensor([6]))
    with pytest.raises(ValueError, match="input_dim=80"):
        model(torch.randn(1, 50, 40), torch.tensor([50]))
    with pytest.raises(ValueError, match=r"\(B, T, D\)"):
        model(torch.randn(50, 80), torch.tensor([50]))


def test_check_input_lengths():
    check_input_lengths(torch.tensor([3, 4]), 3, 4)
    with pytest.raises(ValueError, match=r"utterance\(s\) \[1\] have \[2\] frames"):
        check_input_lengths(torch.tensor([3, 2]), 3)


def assert_padding_does_not_leak(model, lens, dim, atol):
    torch.manual_seed(1)
    model.eval()
    t = max(lens) + 9
    feats = torch.randn(len(lens), t, dim)
    for i, n in enumerate(lens):
        feats[i, n:] = 1e3          # garbage in the padding: must not reach valid frames
    with torch.no_grad():
        logits, out_lens = model(feats, torch.tensor(lens))
        assert logits.shape[1] == model.output_lengths(t)
        for i, n in enumerate(lens):
            alone, alone_len = model(feats[i:i + 1, :n], torch.tensor([n]))
            assert out_lens[i] == alone_len[0] == alone.shape[1]
            torch.testing.assert_close(logits[i, :out_lens[i]], alone[0], atol=atol, rtol=1e-4)
            # padded frames: encoder output zeroed, so the logits are the classifier bias
            pad = logits[i, out_lens[i]:]
            torch.testing.assert_close(pad, model.classifier.bias.expand_as(pad))


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda p: f"{p.parent.parent.name}-{p.stem}")
def test_padded_batch_matches_single(config):
    torch.manual_seed(0)
    model = build_model(model_conf(config), input_dim=80, vocab_size=13)
    assert_padding_does_not_leak(model, [77, 1, 150, 6, 33], 80, atol=1e-4)


def test_even_kernels_keep_length_and_padding_invariance():
    model = tiny("convdfsmn", context_kernel=4, unit_kernel=6)
    conv = model.context.conv
    assert conv.padding == (0,) and model.context.extra_pad == (2, 1)
    assert model.output_lengths(40) == 10
    assert_padding_does_not_leak(model, [40, 13, 2], 20, atol=1e-5)
    model = tiny("wav2letter", conv_kernels=[8, 3, 4], front_kernel=4)
    # (k=4, s=2, pad 1 each side) convs: 3 frames -> 1 -> 0, so 4 is the minimum here
    assert model.min_input_frames == 4 and model.output_lengths(3) == 0 and model.output_lengths(4) == 1
    assert_padding_does_not_leak(model, [40, 13, 4], 20, atol=1e-5)
    with pytest.raises(ValueError, match="at least 4 input frames"):
        model(torch.randn(1, 3, 20), torch.tensor([3]))


def test_config_errors():
    with pytest.raises(ValueError, match=r"'hiden_size'.*allowed keys: kind, front_channels"):
        build_model({"kind": "convdfsmn", "hiden_size": 3}, 80, 10)
    with pytest.raises(ValueError, match=r"'conv_kernel'.*conv_kernels"):
        build_model({"kind": "wav2letter", "conv_kernel": [3]}, 80, 10)
    with pytest.raises(ValueError, match="unknown model kind 'lstm'"):
        build_model({"kind": "lstm"}, 80, 10)
    with pytest.raises(ValueError, match="no 'kind'"):
        build_model({"num_blocks": 2}, 80, 10)
    with pytest.raises(ValueError, match="num_blocks must be int"):
        build_model({"kind": "convdfsmn", "num_blocks": "4"}, 80, 10)
    with pytest.raises(ValueError, match="memory_size must be odd"):
        build_model({"kind": "convdfsmn", "memory_size": 4}, 80, 10)
    with pytest.raises(ValueError, match="same length"):
        build_model({"kind": "wav2letter", "conv_kernels": [3, 3]}, 80, 10)
    conf = {"kind": "convdfsmn", "num_blocks": 1}
    build_model(conf, 80, 10)
    assert conf == {"kind": "convdfsmn", "num_blocks": 1}      # not mutated


def shapes(convs):
    return [(c.kernel_size[0], c.in_channels, c.out_channels) for _, c in convs]


def test_winograd_candidates():
    b = build_model(model_conf(AISHELL_CONF / "train_convdfsmn_b.yaml"), 80, 100)
    assert isinstance(b, ConvDFSMN)
    for _, conv in winograd_candidates(b, include_depthwise=True):
        assert type(conv) is nn.Conv1d and conv.stride == (1,) and conv.kernel_size[0] >= 3
    # Table 3: the paper's ConvDFSMN convs with k >= 3, stride 1 -- exactly those, as dense convs
    assert sorted(shapes(winograd_candidates(b))) == [(3, 128, 512), (3, 128, 768), (3, 128, 1024), (15, 128, 128)]
    memories = [c for _, c in winograd_candidates(b, include_depthwise=True) if c.groups > 1]
    assert len(memories) == 4 and all(c.groups == c.in_channels == 512 and c.kernel_size == (21,) for c in memories)
    # every other conv is pointwise or strided; the classifier is a Linear, not a conv
    others = [c for _, c in conv1d_layers(b) if c.kernel_size[0] > 1 and c.stride[0] == 1]
    assert len(others) == 8
    assert isinstance(b.classifier, nn.Linear) and b.classifier.out_features == 100
    w = build_model(model_conf(AISHELL_CONF / "train_wav2letter.yaml"), 80, 100)
    assert isinstance(w, Wav2letter)
    assert shapes(winograd_candidates(w)) == [(9, 256, 512), (13, 512, 512), (15, 512, 512)]
    mini = build_model(model_conf(MINI_CONF / "train_convdfsmn.yaml"), 80, 850)
    ks = {k for k, _, _ in shapes(winograd_candidates(mini))}
    assert 3 in ks and 15 in ks
    for config in MINI_CONFIGS:
        n = count_params_macs(build_model(model_conf(config), 80, 850))["params"]
        assert 1.5e6 <= n <= 2.5e6, (config.name, n)


@pytest.mark.parametrize("kind", ["convdfsmn", "wav2letter"])
def test_ctc_training_lowers_loss(kind):
    torch.manual_seed(0)
    model = tiny(kind, dropout=0.0)
    model.train()
    feats = torch.randn(4, 60, 20)
    feat_lens = torch.tensor([60, 52, 44, 37])
    targets = torch.randint(1, 11, (4, 5))
    target_lens = torch.tensor([5, 4, 3, 5])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    losses = []
    for _ in range(30):
        logits, out_lens = model(feats, feat_lens)
        loss = ctc(logits.log_softmax(-1).transpose(0, 1), targets, out_lens, target_lens)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.parametrize("kind", ["convdfsmn", "wav2letter"])
def test_batchnorm_folds_into_the_convs_exactly(kind):
    from rsqasr.models.common import fold_batchnorm

    torch.manual_seed(0)
    net = tiny(kind, batch_norm=True)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert bns
    for bn in bns:  # statistics as if trained
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    net.eval()
    x, lens = torch.randn(2, 57, 20), torch.tensor([57, 40])
    before, out_lens = net(x, lens)
    assert fold_batchnorm(net) == len(bns)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules())
    after, _ = net(x, lens)
    for b, n in enumerate(out_lens.tolist()):
        torch.testing.assert_close(after[b, :n], before[b, :n], rtol=1e-4, atol=1e-4)
    assert fold_batchnorm(net) == 0
