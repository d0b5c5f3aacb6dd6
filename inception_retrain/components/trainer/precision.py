"""Which precision the network computes in, chosen by the hardware it runs on.

training.precision is auto (the default), float32, bfloat16 or float16. auto picks:
  - mixed float16 on a GPU (tensor cores; the classic mixed-precision case),
  - mixed bfloat16 on a CPU whose flags include avx512_bf16 or amx_bf16 (oneDNN runs bfloat16
    convolutions natively there: 1.87x InceptionV3's float32 forward rate on this machine),
  - float32 otherwise (float16 on x86 CPUs, and bfloat16 without those flags, are emulated and
    slower than float32).
"Mixed" keeps variables, the optimizer and the new head in float32; layers of the InceptionV3
base compute in the low precision. The exported (serving) model is always float32 (see
model.float32_copy): it runs on any serving CPU or GPU, and the trainer measures, on eval
images, how far its scores are from the training-precision model's (report["precision"]).

No TensorFlow import here: choose() is testable with any flags.
"""
from typing import Dict, FrozenSet, Iterable, Optional

from inception_retrain.components.trainer.config import PRECISIONS as CHOICES  # noqa: E402

# tf_keras mixed-precision policy per resolved precision.
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> FrozenSet[str]:
    """The CPU feature flags (Linux /proc/cpuinfo "flags" line); empty when unreadable."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def choose(requested: str, gpus: int, flags: Iterable[str]) -> Dict[str, str]:
    """{"precision", "policy", "reason"}: what runs and why."""
    if requested not in CHOICES:
        raise ValueError(f"training.precision must be one of {', '.join(CHOICES)}, "
                         f"got {requested!r}")
    flags = set(flags)
    bf16_flags = [f for f in BF16_CPU_FLAGS if f in flags]
    if requested != "auto":
        precision = requested
        reason = f"training.precision={requested}"
        if requested == "float16" and not gpus:
            reason += " (float16 on a CPU is emulated: expect it slower than float32)"
        elif requested == "bfloat16" and not gpus and not bf16_flags:
            reason += (" (this CPU has neither avx512_bf16 nor amx_bf16: expect it slower "
                       "than float32)")
    elif gpus:
        precision, reason = "float16", f"auto: {gpus} GPU(s), mixed float16"
    elif bf16_flags:
        precision = "bfloat16"
        reason = f"auto: CPU with {' and '.join(bf16_flags)} (/proc/cpuinfo), mixed bfloat16"
    else:
        precision = "float32"
        reason = "auto: CPU without avx512_bf16 or amx_bf16, float32"
    return {"precision": precision, "policy": POLICIES[precision], "reason": reason}


def apply(choice: Dict[str, str]) -> None:
    """Sets the tf_keras global policy: layers built afterwards compute in it."""
    import tf_keras

    tf_keras.mixed_precision.set_global_policy(choice["policy"])


def compute_dtype(choice: Optional[Dict[str, str]]) -> str:
    return {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}[
        (choice or {}).get("precision", "float32")]
