"""Which device computes, said in one line: ``charlm train`` and ``charlm sample`` print it
first, so that "is my GPU used?" has its answer before the first step.

    device: CPU Intel(R) Xeon(R) Processor (2 cores, native bf16); precision float32; 1 replica (--strategy none)
    device: GPU NVIDIA H200; precision mixed_bfloat16; 1 replica (--strategy mirrored)

TensorFlow places the ops on its first GPU when it sees one, else on the CPU: a GPU that is
installed but missing from this line is one TensorFlow cannot use (no CUDA build of
TensorFlow: ``pip install 'charlm[gpu]'``). The CPU is named as Linux names it
(``/proc/cpuinfo``), with the cores this process may use and whether it computes bfloat16
natively (:func:`~charlm.models.fastrnn.cpu_has_native_bf16`: what makes mixed_bfloat16
worth trying).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import tensorflow as tf

from .fastrnn import cpu_has_native_bf16


def device_line(precision: str, replicas: int | None = None, strategy: str = "none") -> str:
    """The line: the device, the ``precision``, and the number of ``replicas`` the
    ``strategy`` trains on (left out when None: sampling has no strategy).

    >>> device_line("float32", 1).startswith("device: ")
    True
    >>> device_line("float32", 2, "mirrored").endswith("; 2 replicas (--strategy mirrored)")
    True
    """
    parts = [f"device: {device_name()}", f"precision {precision}"]
    if replicas is not None:
        parts.append(f"{replicas} replica{'' if replicas == 1 else 's'} (--strategy {strategy})")
    return "; ".join(parts)


def device_name() -> str:
    """The GPUs TensorFlow sees, by name; with none, the CPU (:func:`cpu_name`)."""
    gpus = gpu_names()
    if len(gpus) == 1:
        return f"GPU {gpus[0]}"
    if gpus:
        return f"{len(gpus)} GPUs ({', '.join(gpus)})"
    return cpu_name()


def gpu_names() -> list[str]:
    """The name of each GPU TensorFlow can use (``NVIDIA H200``), or its device name."""
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(details.get("device_name") or gpu.name)
    return names


def cpu_name(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model, the cores this process may run on, and whether it has native bf16.

    >>> cpu_name("/no/such/file").startswith("CPU ")
    True
    """
    bf16 = "native bf16" if cpu_has_native_bf16(cpuinfo) else "no native bf16"
    cores = cpu_cores()
    return f"CPU {cpu_model(cpuinfo)} ({cores} core{'' if cores == 1 else 's'}, {bf16})"


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The ``model name`` line of ``cpuinfo`` (Linux); elsewhere, what Python's ``platform``
    says (the processor, else the machine's architecture)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        if line.startswith("model name") and ":" in line:
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "of unknown model"


def cpu_cores() -> int:
    """The cores this process may use (its affinity: a container's or ``taskset``'s limit)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
