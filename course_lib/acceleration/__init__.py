"""Acceleration: making a model faster without (much) changing what it computes.

Three families, one module each:

- parallel computation (:mod:`.parallel`): intra-op threads, batching, and data-parallel training with
  PyTorch's ``DistributedDataParallel`` (several processes, one machine or many);
- algorithmic optimization: Conv-BatchNorm folding (:mod:`.folding`, :func:`fold_batchnorm`, exact), low-rank
  factorization of
  Linear layers (:mod:`.low_rank`, an accuracy/speed trade-off) and ``torch.compile`` (:mod:`.compiling`);
- hardware (:mod:`.hardware`): device selection, ``channels_last``; integer kernels are in
  :mod:`course_lib.quantization`;
- measuring where the time goes (:mod:`.profiling`, :func:`kernel_times`: each kernel's share, for Amdahl's law).
"""
from .compiling import try_compile
from .folding import fold_batchnorm
from .hardware import describe_device, to_channels_last
from .low_rank import factorize_linears, low_rank_linear, rank_for_energy
from .parallel import batch_throughput, ddp_train, max_param_diff, single_process_train, thread_latency
from .profiling import KernelProfile, KernelTime, kernel_times

__all__ = ["fold_batchnorm", "factorize_linears", "low_rank_linear", "rank_for_energy", "try_compile",
           "to_channels_last", "describe_device", "thread_latency", "batch_throughput", "ddp_train",
           "single_process_train", "max_param_diff", "kernel_times", "KernelProfile", "KernelTime"]
