"""Benchmark driver: runs bench_rsq (host timings), torch int8 / onnxruntime baselines and the
qemu-arm instruction counts, then writes src_arm/bench.json, src_arm/BENCH.md and
src_arm/bench_speedup.png.

Usage: python bench/bench.py --host-bin build-host/bench_rsq --arm-dir build-armv7 \
           [--arm-shapes 0,3] [--threads 1,2]
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import time

SHAPES = [(3, 128, 512), (3, 128, 768), (3, 128, 1024), (15, 128, 128), (9, 256, 512),
          (13, 512, 512), (15, 512, 512)]
PAPER = {(3, 128, 512): 1.12, (3, 128, 768): 1.14, (3, 128, 1024): 1.24, (15, 128, 128): 1.10,
         (9, 256, 512): 1.24, (13, 512, 512): 1.17, (15, 512, 512): 1.30}
T = 150
HOST_ISAS = ("avx2", "vnni")  # bench_rsq's native x86 kernel sets (one run each, 1 thread)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def theory(k):
    return 2 * k / (4 * (k // 3) + 2 * (k % 3))


def time_fn(fn, min_rep=50, budget=0.3):
    for _ in range(5):
        fn()
    ts = []
    t_start = time.perf_counter()
    while len(ts) < min_rep or time.perf_counter() - t_start < budget:
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
        if len(ts) >= 2000:
            break
    return statistics.median(ts), min(ts)


def torch_int8(k, cin, cout, threads):
    import torch
    torch.set_num_threads(threads)
    torch.backends.quantized.engine = "x86" if "x86" in torch.backends.quantized.supported_engines else "fbgemm"
    from torch.ao.nn.quantized import Conv1d
    conv = Conv1d(cin, cout, k, padding=k // 2)
    w = torch.quantize_per_tensor(torch.randint(-42, 43, (cout, cin, k)).float() * 0.01, 0.01, 0,
                                  torch.qint8)
    conv.set_weight_bias(w, torch.zeros(cout))
    conv.scale, conv.zero_point = 1.0, 0
    x = torch.quantize_per_tensor(torch.randint(-63, 64, (1, cin, T)).float() * 0.05, 0.05, 128,
                                  torch.quint8)
    with torch.no_grad():
        return time_fn(lambda: conv(x))


def ort_qlinearconv(k, cin, cout, threads):
    """onnxruntime QLinearConv, uint8 activations with zero point 128 (x + 128, |x| <= 63) and
    int8 weights: MLAS's u8s8 path. (int8 activations take a path about 10x slower on this
    AVX2 machine: 4.2 ms vs 0.41 ms for (3, 128, 512), so they would not be a fair baseline.)"""
    try:
        import numpy as np
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    w = np.random.randint(-42, 43, (cout, cin, k)).astype(np.int8)
    inits = [helper.make_tensor("xs", TensorProto.FLOAT, [], [0.05]),
             helper.make_tensor("xz", TensorProto.UINT8, [], [128]),
             helper.make_tensor("w", TensorProto.INT8, w.shape, w.flatten().tolist()),
             helper.make_tensor("ws", TensorProto.FLOAT, [], [0.01]),
             helper.make_tensor("wz", TensorProto.INT8, [], [0]),
             helper.make_tensor("ys", TensorProto.FLOAT, [], [1.0]),
             helper.make_tensor("yz", TensorProto.UINT8, [], [128])]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"],
                            kernel_shape=[k], pads=[k // 2, k // 2])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, cin, T])],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, cout, T])], inits)
    # ir_version pinned: onnx 1.23 writes IR 14 by default, onnxruntime 1.31 reads <= 13
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    x = (np.random.randint(-63, 64, (1, cin, T)) + 128).astype(np.uint8)
    return time_fn(lambda: s.run(None, {"x": x}))


def main():
    ap = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--host-bin", default=os.path.join(ROOT, "build-host", "bench_rsq"))
    ap.add_argument("--arm-dir", default=os.path.join(ROOT, "build-armv7"))
    ap.add_argument("--arm-shapes", default="0,1,2,3,4,5,6", help="shape indices to count under qemu ('' = none)")
    ap.add_argument("--aarch64-dir", default=os.path.join(ROOT, "build-aarch64"),
                    help="AArch64 build: its GEMM and Winograd counted under qemu-aarch64, SMMLA, SDOT and NEON kernels")
    ap.add_argument("--aarch64-only", action="store_true",
                    help="re-count the AArch64 kernels only, keep the rest of bench.json, re-render")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--md-only", action="store_true", help="re-render BENCH.md/png from bench.json")
    ap.add_argument("--rerun-baselines", action="store_true", help="re-measure torch/ort into bench.json")
    ap.add_argument("--note", default="", help="line added under the BENCH.md heading")
    args = ap.parse_args()
    if args.rerun_baselines:  # re-measure torch/ort only, keep everything else in bench.json
        with open(os.path.join(ROOT, "bench.json")) as f:
            recs = [r for r in json.load(f) if r["impl"] not in ("torch_int8", "ort_qlinearconv")]
        for th in [int(t) for t in args.threads.split(",")]:
            for (k, cin, cout) in SHAPES:
                for impl, fn in (("torch_int8", torch_int8), ("ort_qlinearconv", ort_qlinearconv)):
                    res = fn(k, cin, cout, th)
                    if res is not None:
                        recs.append({"shape": [k, cin, cout], "length": T, "target": "host", "impl": impl,
                                     "threads": th, "ms_median": res[0], "ms_min": res[1], "instructions": None})
        with open(os.path.join(ROOT, "bench.json"), "w") as f:
            json.dump(recs, f, indent=1)
        write_md(recs, args.note)
        return
    if args.md_only:
        with open(os.path.join(ROOT, "bench.json")) as f:
            write_md(json.load(f), args.note)
        return
    if args.aarch64_only:
        with open(os.path.join(ROOT, "bench.json")) as f:
            recs = [r for r in json.load(f) if r["target"] != "aarch64"]
        recs += count_aarch64(args)
        with open(os.path.join(ROOT, "bench.json"), "w") as f:
            json.dump(recs, f, indent=1)
        write_md(recs, args.note)
        return
    load0 = os.getloadavg()[0]
    recs = []
    for th in [int(t) for t in args.threads.split(",")]:
        # 1 thread: every native x86 kernel set the CPU has, side by side; more threads: AUTO's
        for isa in (HOST_ISAS if th == 1 else ("auto",)):
            run = subprocess.run([args.host_bin, "time", isa, str(th), "50"], capture_output=True, text=True)
            if run.returncode != 0:  # this CPU lacks the kernel set (e.g. no AVX-512 VNNI)
                print(f"bench: host {isa} skipped: {run.stderr.strip()}")
                continue
            for line in run.stdout.splitlines():
                r = json.loads(line)
                if r["impl"] == "fp32" and find(recs, r["shape"], "host", "fp32", th):
                    continue  # one FP32 row per shape (every kernel set times the same FP32 kernel)
                recs.append({"shape": r["shape"], "length": T, "target": "host", "impl": r["impl"],
                             "threads": th, "ms_median": r["ms_median"], "ms_min": r["ms_min"],
                             "instructions": None, "isa": r["isa"]})
        for (k, cin, cout) in SHAPES:
            for impl, fn in (("torch_int8", torch_int8), ("ort_qlinearconv", ort_qlinearconv)):
                res = fn(k, cin, cout, th)
                if res is not None:
                    recs.append({"shape": [k, cin, cout], "length": T, "target": "host", "impl": impl,
                                 "threads": th, "ms_median": res[0], "ms_min": res[1], "instructions": None})
    for si in [int(s) for s in args.arm_shapes.split(",") if s != ""]:
        for algo, impl in (("gemm", "gemm_s8"), ("wino", "wino23_s8"), ("gemm24", "gemm_s8_2x4")):
            n = int(subprocess.run([os.path.join(HERE, "qemu_count.sh"), args.arm_dir, str(si), algo],
                                   check=True, capture_output=True, text=True).stdout.strip())
            recs.append({"shape": list(SHAPES[si]), "length": T, "target": "armv7", "impl": impl,
                         "threads": 1, "ms_median": None, "ms_min": None, "instructions": n})
    recs += count_aarch64(args)
    with open(os.path.join(ROOT, "bench.json"), "w") as f:
        json.dump(recs, f, indent=1)
    note = args.note or (f"1-min load average at start {load0:.2f}, at end {os.getloadavg()[0]:.2f} "
                         f"on {os.cpu_count()} CPUs (where it nears the CPU count, other jobs were running and "
                         "the medians are noisy: the min column is then the better estimate of the kernels' speed).")
    write_md(recs, note)


def count_aarch64(args):
    """GEMM and Winograd instructions per call under qemu-aarch64: SMMLA (i8mm), SDOT (dot) and plain NEON kernels."""
    if not os.path.isfile(os.path.join(args.aarch64_dir, "bench_rsq")):
        print(f"bench: no {args.aarch64_dir}/bench_rsq: AArch64 counts skipped (src_arm/build.sh aarch64)")
        return []
    recs = []
    for si in [int(s) for s in args.arm_shapes.split(",") if s != ""]:
        for isa in ("i8mm", "dot", "neon"):
            for algo, impl in (("gemm", "gemm_s8"), ("wino", "wino23_s8")):
                n = int(subprocess.run([os.path.join(HERE, "qemu_count.sh"), args.aarch64_dir, str(si), algo, isa],
                                       check=True, capture_output=True, text=True).stdout.strip())
                recs.append({"shape": list(SHAPES[si]), "length": T, "target": "aarch64", "impl": impl,
                             "threads": 1, "ms_median": None, "ms_min": None, "instructions": n, "isa": isa})
    return recs


def find(recs, shape, target, impl, threads=1, isa=None):
    for r in recs:
        if r["shape"] == list(shape) and r["target"] == target and r["impl"] == impl and r["threads"] == threads \
                and (isa is None or r.get("isa") == isa):
            return r
    return None


def aarch64_md(recs):
    """BENCH.md's AArch64 section: instructions per call of each kernel set, and what they say."""
    isas = [("i8mm", "SMMLA"), ("dot", "SDOT"), ("neon", "NEON")]
    lines = ["## AArch64 (qemu-aarch64 executed guest instructions per call, 1 thread)", "",
             "SMMLA = the ARMv8.6 int8 matrix-multiply kernels (`gemm_s8_mmla.c`: one 8x8 `smmla` micro-kernel on "
             "row pairs, for the GEMM and the Winograd's four products), what AUTO runs on a core with i8mm "
             "(Cortex-A510/A710/X2 and later); SDOT = the ARMv8.2 dot-product kernels (`gemm_s8_dot.c`: a 4x8 "
             "`sdot` micro-kernel), what AUTO runs with dotprod only (Cortex-A55/A76/A78); NEON = the same NEON "
             "intrinsics kernels as ARMv7 (int16 chains), what AUTO runs without either (Cortex-A53/A73). "
             "GEMM/Wino: how many times fewer instructions the Winograd runs than the GEMM of the same kernel set.",
             "", "| shape | " + " | ".join(f"GEMM ({n}) | Winograd ({n}) | GEMM/Wino ({n})" for _, n in isas)
             + " | theory 2k/(4[k/3]+2(k%3)) |", "|---" * (3 * len(isas) + 2) + "|"]
    ratio = {isa: [] for isa, _ in isas}
    for s in SHAPES:
        cells, ok = [], True
        for isa, _ in isas:
            g, w = find(recs, s, "aarch64", "gemm_s8", isa=isa), find(recs, s, "aarch64", "wino23_s8", isa=isa)
            if not (g and w):
                ok = False
                break
            ratio[isa].append((s, g["instructions"] / w["instructions"]))
            cells += [f"{g['instructions']:,}", f"{w['instructions']:,}", f"{ratio[isa][-1][1]:.2f}x"]
        if ok:
            lines.append(f"| {s} | " + " | ".join(cells) + f" | {theory(s[0]):.2f}x |")
    if not all(ratio[isa] for isa, _ in isas):
        return lines + [""]

    def span(isa, pred=lambda s: True):
        v = [f"{r:.2f}" for s, r in ratio[isa] if pred(s)]
        return "-" if not v else f"{v[0]}x" if min(v) == max(v) else f"{min(v)}-{max(v)}x"

    def fewer(a, b, algo):  # instructions of kernel set b over a, per shape: how many times fewer a runs
        v = [find(recs, s, "aarch64", algo, isa=b)["instructions"] / find(recs, s, "aarch64", algo, isa=a)["instructions"]
             for s in SHAPES if find(recs, s, "aarch64", algo, isa=a) and find(recs, s, "aarch64", algo, isa=b)]
        return f"{min(v):.2f}-{max(v):.2f}x"

    lose = [s for isa, _ in isas for s, r in ratio[isa] if r <= 1.0]
    k3 = lambda s: s[0] == 3
    lines += ["", "Does INT8 Winograd still pay once the CPU has a dot-product or matrix-multiply instruction? In executed "
              "instructions, " + ("yes, on every shape here" if not lose else f"not everywhere: it loses on {sorted(set(map(tuple, lose)))}")
              + f": the Winograd runs {span('dot')} fewer instructions than the GEMM with SDOT ({span('dot', k3)} at k = 3) and "
              f"{span('i8mm')} fewer with SMMLA ({span('i8mm', k3)} at k = 3), against a theoretical 1.44-1.50x "
              f"({span('neon')} with plain NEON). The stronger the multiply instruction, the larger the share of the "
              f"Winograd's own work (the input transform B^T d, the int32 products written out and read back, the output "
              f"transform A^T m), so its margin shrinks; the output side is paid once per tile however many 3-tap chunks it "
              f"sums, so the margin shrinks most at k = 3 and least at the long kernels. SMMLA runs {fewer('i8mm', 'dot', 'gemm_s8')} "
              f"fewer instructions than SDOT in the GEMM and {fewer('i8mm', 'dot', 'wino23_s8')} in the Winograd; SDOT "
              f"{fewer('dot', 'neon', 'gemm_s8')} fewer than NEON in the GEMM. What this table cannot say is cycles: on a "
              "real core the multiply instructions' throughput and the Winograd's extra memory traffic decide (the likely "
              "reason ncnn turns its int8 Winograd off when sdot is there); instruction counts under qemu are the measure "
              "we have without the hardware.", ""]
    return lines


def write_md(recs, note=""):
    model = subprocess.run("lscpu | grep 'Model name' | sed 's/.*: *//'", shell=True, capture_output=True,
                           text=True).stdout.strip()
    lines = [f"# Benchmark ({datetime.date.today()}, host CPU: {model}, `nproc` = {os.cpu_count()})", "",
             "Generated by `src_arm/bench.sh`. Output length 150, batch 1. Cells: median ms / min ms "
             "(GMAC/s at the min; GMAC/s = 150*k*Cin*Cout / ms). GEMM/Wino: ratio of the medians "
             "(ratio of the mins).", ""]
    if note:
        lines += [note, ""]
    for th in sorted({r["threads"] for r in recs if r["target"] == "host"}):
        isas = [i for i in ("avx2", "vnni", "neon", "ref")
                if any(r["target"] == "host" and r["threads"] == th and r.get("isa") == i and r["impl"] == "gemm_s8"
                       for r in recs)]
        head, cols = [], []
        for i in isas:
            head += [f"INT8 GEMM ({i})", f"INT8 Winograd ({i})", f"GEMM/Wino ({i})"]
            cols += [("gemm_s8", i), ("wino23_s8", i), (None, i)]
        head += ["FP32", "torch int8", "ORT QLinearConv"]
        cols += [("fp32", None), ("torch_int8", None), ("ort_qlinearconv", None)]
        lines += [f"## Host, {th} thread(s): median / min ms (GMAC/s at min)", "",
                  "| shape (k,Cin,Cout) | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
        for s in SHAPES:
            macs = T * s[0] * s[1] * s[2]
            cells = []
            for impl, isa in cols:
                if impl is None:
                    g, w = find(recs, s, "host", "gemm_s8", th, isa), find(recs, s, "host", "wino23_s8", th, isa)
                    cells.append(f"{g['ms_median'] / w['ms_median']:.2f}x ({g['ms_min'] / w['ms_min']:.2f}x)"
                                 if g and w else "-")
                    continue
                r = find(recs, s, "host", impl, th, isa)
                cells.append(f"{r['ms_median']:.3f} / {r['ms_min']:.3f} ({macs / r['ms_min'] * 1e-6:.0f})"
                             if r else "n/a")
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## ARMv7 (qemu-arm executed guest instructions per call, 1 thread)", "",
              "GEMM = the default GEMM (2x3 tile, 12-deep int16 chains); GEMM 2x4 = the GEMM forced onto "
              "the Winograd's 2x4 micro-kernel (2 products per int16 lane; `bench_rsq count ... gemm24`).", "",
              "| shape | GEMM instr | GEMM 2x4 instr | Winograd instr | GEMM/Wino | GEMM 2x4/Wino | "
              "paper measured (Table 3) | theory 2k/(4[k/3]+2(k%3)) |",
              "|---|---|---|---|---|---|---|---|"]
    for s in SHAPES:
        g, w = find(recs, s, "armv7", "gemm_s8"), find(recs, s, "armv7", "wino23_s8")
        g24 = find(recs, s, "armv7", "gemm_s8_2x4")
        if g and w:
            c24 = f"{g24['instructions']:,}" if g24 else "-"
            r24 = f"{g24['instructions'] / w['instructions']:.2f}x" if g24 else "-"
            lines.append(f"| {s} | {g['instructions']:,} | {c24} | {w['instructions']:,} | "
                         f"{g['instructions'] / w['instructions']:.2f}x | {r24} | {PAPER[s]:.2f}x | "
                         f"{theory(s[0]):.2f}x |")
    lines.append("")
    if any(r["target"] == "aarch64" for r in recs):
        lines += aarch64_md(recs)
    with open(os.path.join(ROOT, "BENCH.md"), "w") as f:
        f.write("\n".join(lines))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        labels, arm, arm24, paper, th, host = [], [], [], [], [], []
        host_isa = "vnni" if find(recs, SHAPES[0], "host", "gemm_s8", 1, "vnni") else "avx2"
        for s in SHAPES:
            g, w = find(recs, s, "armv7", "gemm_s8"), find(recs, s, "armv7", "wino23_s8")
            hg, hw = find(recs, s, "host", "gemm_s8", 1, host_isa), find(recs, s, "host", "wino23_s8", 1, host_isa)
            labels.append(f"{s[0]},{s[1]},{s[2]}")
            arm.append(g["instructions"] / w["instructions"] if g and w else 0)
            g24 = find(recs, s, "armv7", "gemm_s8_2x4")
            arm24.append(g24["instructions"] / w["instructions"] if g24 and w else 0)
            host.append(hg["ms_min"] / hw["ms_min"] if hg and hw else 0)
            paper.append(PAPER[s])
            th.append(theory(s[0]))
        import numpy as np
        x = np.arange(len(SHAPES))
        plt.figure(figsize=(10, 4))
        for i, (vals, name) in enumerate(((arm, "ARMv7 instr, best GEMM / Wino"),
                                          (arm24, "ARMv7 instr, same-kernel GEMM / Wino"),
                                          (host, f"host {host_isa} time (1 thr, min)"),
                                          (paper, "paper Table 3"), (th, "theory"))):
            plt.bar(x + (i - 2) * 0.16, vals, 0.16, label=name)
        plt.xticks(x, labels)
        plt.ylabel("GEMM / Winograd")
        plt.axhline(1.0, color="k", lw=0.5)
        plt.legend(fontsize=8)
        plt.tight_layout()
        plt.savefig(os.path.join(ROOT, "bench_speedup.png"), dpi=100)
    except ImportError:
        pass


if __name__ == "__main__":
    main()
