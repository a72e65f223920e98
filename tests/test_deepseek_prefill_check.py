"""benchmarks/deepseek_prefill.py: the prefill a prompt costs as the measured TPOT under load
implies it, the stated lengths it reads back, and the what-if it patches in and out, on
hand-worked figures (docs/validation.md, "DeepSeek's TTFT: where the prefill gap lies")."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
spec = importlib.util.spec_from_file_location("deepseek_prefill", ROOT / "benchmarks" / "deepseek_prefill.py")
assert spec and spec.loader
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)


def test_implied_prefill_by_hand() -> None:
    # 64 clients, 922 output tokens on average, TTFT 2.664 s, TPOT 38.6 ms, the model's pure
    # decode step 14.2 ms: the prefill holds 1 - 14.2 / 38.6 = 0.6321 of the GPU; a request
    # cycles in 2.664 + 921 x 0.0386 = 38.2146 s, so 64 / 38.2146 = 1.6748 requests/s, and a
    # prompt costs 0.6321 / 1.6748 = 0.3774 s of GPU
    u, t = check.implied_prefill(64.0, 922.0, 2.664, 0.0386, 0.0142)
    assert math.isclose(u, 1.0 - 0.0142 / 0.0386)
    assert math.isclose(u, 0.63212, rel_tol=1e-4)
    assert math.isclose(t, 0.63212 * 38.2146 / 64.0, rel_tol=1e-4)
    assert math.isclose(t, 0.37744, rel_tol=1e-4)
    # a TPOT no longer than the pure decode step leaves no prefill share
    assert check.implied_prefill(8.0, 100.0, 0.2, 0.01, 0.01) == (0.0, 0.0)


def test_stated_lengths_from_the_mean_read() -> None:
    # InferenceX draws on [0.8 L, L]: the model reads 0.9 L; fixed lengths read L
    assert check.nominal(0.9 * 1024) == 1024
    assert check.nominal(0.9 * 8192) == 8192
    assert check.nominal(4000.0) == 4000
    assert check.nominal(2222.0) == 2222


def test_the_two_odd_populations() -> None:
    assert check.odd_population("TensorRT-LLM 1.1.0rc2.post2")
    assert check.odd_population("SGLang version not stated")
    assert not check.odd_population("SGLang (engine version not stated; NVIDIA Dynamo runtime image 0.5.1-rc0.pre1)")
    assert not check.odd_population("SGLang 0.5.9")
    assert not check.odd_population("TensorRT-LLM 1.2.0rc6.post2")
    assert not check.odd_population("TensorRT-LLM (engine version not stated; NVIDIA Dynamo runtime image 0.8.1.post2)")


def test_the_first_wave_what_if_is_undone() -> None:
    wave, firstwave = check.load_model.wave, check.load_model._firstwave
    with check.first_wave_one_prompt_a_step():
        assert check.load_model.wave is not wave and check.load_model._firstwave is not firstwave
    assert check.load_model.wave is wave and check.load_model._firstwave is firstwave
