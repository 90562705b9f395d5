"""The engine's model file (``src_arm/FORMAT.md``): its layout, writer, reader and the checked export.

    q = resolve_quantization(net, "wino", quant_json)          # rsqasr.quant: PTQ or RSQ, or "none" (FP32)
    im = q.intmodel(net)
    write_model("exp/x/export/model_wino.rsq", im, tokens, "char", cmvn_mean, cmvn_std, meta)
    mf = read_model("exp/x/export/model_wino.rsq")             # ModelFile: meta, tokens, cmvn, intmodel
    logits = mf.intmodel.run(mf.normalize(feats))               # the integer reference, from the file alone
    export(exp_dir, model_file, out, quant="wino", quant_json=..., check_data_dir="data/dev")

- ``format``: constants, codes and the fixed-size records (header, section entry, graph node,
  layer) as NamedTuples with FORMAT.md's field names;
- ``writer``: ``encode_model`` / ``write_model`` (atomic);
- ``reader``: ``read_model``, which checks every field the C loader (``src_arm/app/model.c``)
  checks, and ``apply_cmvn``;
- ``check``: ``export`` of an experiment dir, which reads the written file back and checks it
  against the in-memory integer model and the quantized PyTorch model before it publishes it.
"""

from rsqasr.export.check import ExportCheckError, check_model_file, check_utterances, export, make_meta
from rsqasr.export.format import VERSION, ModelFormatError
from rsqasr.export.reader import ModelFile, apply_cmvn, read_model
from rsqasr.export.writer import encode_model, write_model
from rsqasr.quant.source import fp32_intmodel     # what rsqasr/bin/make_fuzz_seeds.py imports from here

__all__ = ["ModelFormatError", "ExportCheckError", "ModelFile", "VERSION", "apply_cmvn", "encode_model",
           "write_model", "read_model", "make_meta", "check_model_file", "check_utterances", "export",
           "fp32_intmodel"]
