"""Quantization: plan, KL calibration, LSQ/RSQ fake quantization and the integer reference.

    from rsqasr.quant import make_plan, calibrate, quantize_model, quant_noise_loss, IntModel
    plan = make_plan(net, kind="wino")                  # "wino" | "int8_gemm" | "fp32"; quantize_classifier=False
    scales = calibrate(net, plan, batches)              # KL (TensorRT) on CMVN'd features
    save_quant(exp / "quant.json", plan, scales)
    IntModel.from_scales(net, plan, scales).run(feats)  # PTQ logits, bit-exact engine semantics
    quantize_model(net, plan, scales)                   # RSQ fine-tuning: ctc + beta * quant_noise_loss(net)
    IntModel.from_scales(net, plan, get_scales(net))    # after RSQ: the scales it learned
    q = resolve_quantization(net, "wino", quant_json)   # decode/export: PTQ or RSQ, whichever the experiment is

The models know nothing of this package; everything is found from outside (docs/quantization.md).
"""

from rsqasr.quant.calibrate import calibrate, kl_threshold, kl_threshold_bin
from rsqasr.quant.intref import IntModel
from rsqasr.quant.lsq import LSQQuantizer, lsq_quantize
from rsqasr.quant.plan import LayerPlan, QuantPlan, is_winograd_shaped, make_plan, winograd_candidates
from rsqasr.quant.rsq import QConv1d, QLinear, constrain_scales_, get_scales, quant_noise_loss, quantize_model, set_mode
from rsqasr.quant.scales import check_scales, load_quant, save_quant
from rsqasr.quant.source import VARIANTS, Quantization, fp32_intmodel, resolve_quantization

__all__ = ["make_plan", "QuantPlan", "LayerPlan", "is_winograd_shaped", "winograd_candidates", "calibrate",
           "kl_threshold", "kl_threshold_bin", "quantize_model", "quant_noise_loss", "constrain_scales_", "set_mode",
           "get_scales", "check_scales", "save_quant", "load_quant", "QConv1d", "QLinear", "LSQQuantizer",
           "lsq_quantize", "IntModel", "fp32_intmodel", "Quantization", "resolve_quantization", "VARIANTS"]
