"""course_lib.timing: statistics, interleaving, reliability rules and bookkeeping, on scripted clocks.

No assertion here depends on how fast this machine is: the clocks and the load are fakes that the variants
advance by scripted amounts, and the one real call checks only the plumbing.
"""
import json
import os
import platform
import resource

import numpy as np
import pytest
import torch
from torch import nn

from course_lib import timing


class Clocks:
    """A wall clock and a CPU clock (seconds) that only the scripted variants move."""

    def __init__(self):
        self.wall = self.cpu = 0.0

    def wall_clock(self):
        return self.wall

    def cpu_clock(self):
        return self.cpu

    def variant(self, name, times_ms, log=None):
        """A callable whose k-th call takes ``times_ms[k]``: a number (wall = CPU) or a ``(wall, cpu)`` pair."""
        calls = iter(times_ms)

        def run(x):
            step = next(calls)
            wall, cpu = step if isinstance(step, tuple) else (step, step)
            self.wall += wall / 1e3
            self.cpu += cpu / 1e3
            if log is not None:
                log.append(name)
            return x
        return run

    def compare(self, models, **kwargs):
        kwargs = {"warmup": 0, "read_load": lambda: (0.0, 0.0, 0.0), **kwargs}
        return timing.compare_latency(models, torch.zeros(3, 2), wall_clock=self.wall_clock,
                                      cpu_clock=self.cpu_clock, **kwargs)


def steady(ms=2.0, n=1000):
    return [ms] * n


def context(**changes):
    fields = dict(load_before=0.0, load_after=0.0, cores=2, affinity=2, capability="AVX2", cpu_model="test",
                  cpu_flags=("avx2",), torch_version="2", threads=1, device="cpu",
                  started="2026-01-01T00:00:00+00:00", seconds=1.0, attempt=1)
    return timing.Context(**{**fields, **changes})


def latency(name, wall_ms, run="r1", problems=()):
    return timing.Latency(name, tuple(wall_ms), tuple(wall_ms), 1, 4, context(), run, tuple(problems))


@pytest.mark.parametrize("n", [2, 3, 10, 57])
def test_summary_is_median_and_linear_percentiles(n):
    values = list(np.random.default_rng(n).lognormal(size=n))
    median, p10, p90 = timing.summary(values)
    assert median == pytest.approx(np.median(values))
    assert (p10, p90) == pytest.approx(tuple(np.percentile(values, [10, 90])))
    assert min(values) <= p10 <= median <= p90 <= max(values)
    assert timing.summary([4.0]) == (4.0, 4.0, 4.0)


def test_cpu_info_reads_model_and_int8_flags():
    text = ("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse avx2 avx512f avx512_vnni amx_tile\n\n"
            "processor\t: 1\nmodel name\t: Other\nflags\t\t: fpu\n")
    assert timing.cpu_info(text) == ("Test CPU 9000", ("avx512_vnni", "avx512f", "avx2"))
    assert timing.cpu_info("model name : Old\nflags : sse2 avx\n") == ("Old", ())


def test_rounds_are_interleaved_with_rotating_order_and_warmup_is_not_recorded():
    clocks, log = Clocks(), []
    script = {"a": [9, 1, 2, 3], "b": [9, 10, 20, 30], "c": [9, 100, 200, 300]}
    models = {name: clocks.variant(name, times, log) for name, times in script.items()}
    result = clocks.compare(models, warmup=1, repeats=3, max_spread=1e9)
    assert log == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]
    for name, times in script.items():
        assert result[name].wall_ms == pytest.approx(times[1:]) and result[name].cpu_ms == pytest.approx(times[1:])
        assert result[name].repeats == 3 and result[name].batch_size == 3
    assert list(result) == ["a", "b", "c"]


def test_each_variant_can_have_its_own_input():
    seen = {}

    def record(name):
        def run(x):
            seen[name] = tuple(x.shape)
            return x
        return run

    inputs = {"batch 1": torch.zeros(1, 2), "batch 8": torch.zeros(8, 2)}
    result = timing.compare_latency({name: record(name) for name in inputs}, inputs, warmup=0, repeats=2, retries=0)
    assert seen == {"batch 1": (1, 2), "batch 8": (8, 2)}
    assert [lat.batch_size for lat in result.values()] == [1, 8]
    with pytest.raises(ValueError, match="example_input must give the input of each of the models"):
        timing.compare_latency({"a": record("a")}, {"b": torch.zeros(1, 2)})
    with pytest.raises(TypeError, match=r"example_input\['a'\] must be a tensor"):
        timing.compare_latency({"a": record("a")}, {"a": [1.0]})


def test_statistics_of_the_scripted_times():
    clocks = Clocks()
    times = [5.0, 1.0, 3.0, 2.0, 4.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    lat = clocks.compare({"a": clocks.variant("a", times)}, repeats=10, max_spread=1e9)["a"]
    assert lat.median_ms == pytest.approx(np.median(times))
    assert (lat.p10_ms, lat.p90_ms) == pytest.approx(tuple(np.percentile(times, [10, 90])))
    assert lat.spread == pytest.approx(np.percentile(times, 90) / np.percentile(times, 10))


def test_a_quiet_steady_measurement_is_reliable_first_time():
    clocks = Clocks()
    result = clocks.compare({"a": clocks.variant("a", steady(2.0)), "b": clocks.variant("b", steady(1.0))},
                            repeats=20)
    assert all(lat.reliable and lat.why == "" and lat.context.attempt == 1 for lat in result.values())
    assert str(result["a"]).startswith("2.000 ms (p10 2.000, p90 2.000; CPU 2.000 ms; batch 3")
    assert result["a"].cpu_wall_ratio == pytest.approx(1.0)


def test_a_wide_spread_is_measured_again_then_flagged():
    clocks, log = Clocks(), []
    noisy = [1.0, 10.0] * 100  # p90/p10 about 10
    result = clocks.compare({"a": clocks.variant("a", noisy, log), "b": clocks.variant("b", steady(), log)},
                            repeats=10, retries=2)
    assert len(log) == 3 * 2 * 10  # three attempts of 10 rounds of both
    a, b = result["a"], result["b"]
    assert not a.reliable and a.context.attempt == 3 and b.reliable
    assert a.why == f"a: p90/p10 = {np.percentile([1, 10] * 5, 90) / np.percentile([1, 10] * 5, 10):.2f} > 1.5"
    assert str(a) == f"not measured reliably: {a.why}" and "ms" not in str(a)
    assert clocks.compare({"a": clocks.variant("a", noisy)}, repeats=10, max_spread=20)["a"].reliable


def test_cpu_time_well_below_wall_time_means_descheduled():
    clocks = Clocks()
    shared = [(2.0, 1.2)] * 100  # 60% of the wall time on the CPU
    lat = clocks.compare({"a": clocks.variant("a", shared)}, repeats=10, retries=0)["a"]
    assert not lat.reliable and lat.why == "a: CPU/wall time = 0.60 < 0.9 (descheduled)"
    assert clocks.compare({"a": clocks.variant("a", shared)}, repeats=10, min_cpu_ratio=0)["a"].reliable
    busy = [(2.0, 3.8)] * 100  # two threads busy: CPU time above wall time is normal
    assert clocks.compare({"a": clocks.variant("a", busy)}, repeats=10)["a"].reliable


@pytest.mark.parametrize("load,cores,threads,flagged", [(2.0, 2, 1, False), (2.1, 2, 1, True), (2.5, 2, 2, False),
                                                        (2.6, 2, 2, True), (7.9, 8, 2, False), (8.1, 8, 2, True)])
def test_load_rule(load, cores, threads, flagged):
    # others = load - threads must fit on max(cores - threads, slack) cores (slack 0.5)
    assert bool(timing.load_problem(0.0, load, cores=cores, threads=threads, load_slack=0.5)) == flagged
    assert bool(timing.load_problem(load, 0.0, cores=cores, threads=threads, load_slack=0.5)) == flagged


def test_load_problem_says_which_reading_and_how_much():
    assert (timing.load_problem(2.44, 3.0, cores=2, threads=1, load_slack=0.5)
            == "load 2.4 before and 3.0 after timing on 2 cores (1 thread in use; at most 2 allowed)")
    assert timing.load_problem(0.3, 2.4, cores=2, threads=2, load_slack=0.1).startswith("load 2.4 after timing")


def test_a_high_load_is_measured_again_and_a_quiet_attempt_is_kept():
    clocks, cores = Clocks(), os.cpu_count()
    loads = iter([cores + 3.0, cores + 3.0, 0.1, 0.1])  # before/after of attempt 1, then of attempt 2
    result = clocks.compare({"a": clocks.variant("a", steady())}, repeats=5, threads=1,
                            read_load=lambda: (next(loads), 0.0, 0.0))
    lat = result["a"]
    assert lat.reliable and lat.context.attempt == 2 and lat.context.load_before == 0.1
    always = clocks.compare({"a": clocks.variant("a", steady())}, repeats=5, threads=1, retries=1,
                            read_load=lambda: (cores + 3.0, 0.0, 0.0))["a"]
    assert not always.reliable and always.context.attempt == 2
    assert always.why.startswith(f"load {cores + 3.0:.1f} before and {cores + 3.0:.1f} after timing on {cores} cores")


def test_speedup_uses_paired_rounds():
    baseline, candidate = latency("fp32", [10.0, 20.0, 30.0, 12.0]), latency("int8", [5.0, 40.0, 10.0, 4.0])
    ratios = [2.0, 0.5, 3.0, 3.0]
    s = timing.speedup(baseline, candidate)
    assert (s.ratio, s.p10, s.p90) == pytest.approx((np.median(ratios), *np.percentile(ratios, [10, 90])))
    assert s.rounds == 4 and s.reliable and (s.baseline, s.candidate) == ("fp32", "int8")
    assert float(s) == s.ratio and f"{s:.1f}" == f"{np.median(ratios):.1f}"
    p10, p90 = np.percentile(ratios, [10, 90])
    assert str(s) == f"{np.median(ratios):.2f}x (p10 {p10:.2f}, p90 {p90:.2f})"
    same = timing.speedup(baseline, baseline)
    assert (same.ratio, same.p10, same.p90) == (1.0, 1.0, 1.0)


def test_an_unreliable_speedup_is_never_stated_as_a_figure():
    why = "load 2.4 after timing on 2 cores (2 threads in use; at most 2.5 allowed)"
    s = timing.speedup(latency("a", [3.0, 3.0], problems=[why]), latency("b", [1.0, 1.0], problems=[why, "b: x"]))
    assert not s.reliable and s.why == f"{why}; b: x"
    assert str(s) == f"not measured reliably: {why}; b: x" == f"{s:.2f}" == f"{s}"
    assert "3.00" not in str(s)


def test_speedup_rejects_unpaired_or_foreign_arguments():
    with pytest.raises(ValueError, match="one compare_latency call"):
        timing.speedup(latency("a", [1.0]), latency("b", [1.0], run="r2"))
    with pytest.raises(TypeError, match="candidate must be a Latency"):
        timing.speedup(latency("a", [1.0]), 2.0)


def test_results_round_trip_through_json():
    clocks = Clocks()
    result = clocks.compare({"a": clocks.variant("a", [1.0, 1.1, 1.2] * 9), "b": clocks.variant("b", steady())},
                            repeats=9, read_load=lambda: (50.0, 0.0, 0.0), retries=0)
    for lat in result.values():
        data = json.loads(json.dumps(lat.as_dict()))
        assert timing.Latency.from_dict(data) == lat
        assert data["reliable"] is False and data["why"] == lat.why and data["median_ms"] == lat.median_ms
        assert data["context"]["cpu_flags"] == list(lat.context.cpu_flags)
    s = timing.speedup(result["a"], result["b"])
    data = json.loads(json.dumps(s.as_dict()))
    assert timing.Speedup.from_dict(data) == s and data["reliable"] is False and data["ratio"] == s.ratio


def test_timing_record_is_the_paired_speedup_with_each_variants_spread_and_context():
    base, cand = [10.0, 20.0, 30.0, 12.0, 11.0], [5.0, 10.0, 10.0, 4.0, 5.5]
    ratios = [b / c for b, c in zip(base, cand)]
    record = json.loads(json.dumps(timing.timing_record(latency("fp32", base), latency("int8", cand))))
    assert (record["speedup"], record["p10"], record["p90"]) == \
        pytest.approx((np.median(ratios), *np.percentile(ratios, [10, 90])))
    assert record["rounds"] == 5 and record["reliable"] is True and record["why"] == ""
    p10, p90 = np.percentile(base, [10, 90])
    assert record["baseline"] == pytest.approx({"name": "fp32", "median_ms": np.median(base), "p10_ms": p10,
                                                "p90_ms": p90, "spread": p90 / p10, "cpu_wall_ratio": 1.0,
                                                "threads": 1, "batch_size": 4})
    assert record["candidate"]["name"] == "int8" and record["candidate"]["median_ms"] == np.median(cand)
    assert record["context"] == {**context().as_dict(), "cpu_flags": ["avx2"]}
    flagged = timing.timing_record(latency("a", base, problems=["load 3.0 before"]), latency("b", cand))
    assert flagged["reliable"] is False and flagged["why"] == "load 3.0 before"


def test_threads_are_set_per_variant_and_restored_even_after_an_error():
    seen = {}

    def record(name):
        def run(x):
            seen[name] = torch.get_num_threads()
            return x
        return run

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        timing.compare_latency({"one": record("one"), "two": record("two")}, torch.zeros(1, 2), warmup=0,
                               repeats=2, threads={"one": 1, "two": 2}, retries=0)
        assert seen == {"one": 1, "two": 2} and torch.get_num_threads() == 3

        def fail(x):
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            timing.compare_latency({"a": fail}, torch.zeros(1, 2), threads=1)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_modules_run_in_eval_and_inference_mode_and_keep_their_modes():
    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.norm = nn.Linear(2, 2), nn.BatchNorm1d(2)
            self.seen = set()

        def forward(self, x):
            self.seen.add((self.training, self.norm.training, torch.is_inference_mode_enabled()))
            return self.norm(self.lin(x))

    probe = Probe().train()
    probe.norm.eval()  # a frozen BatchNorm in a training network
    timing.compare_latency({"probe": probe}, torch.rand(4, 2), warmup=1, repeats=2, retries=0)
    assert probe.seen == {(False, False, True)}
    assert probe.training and not probe.norm.training


@pytest.mark.parametrize("models,kwargs,error,match", [
    ([nn.Linear(2, 2)], {}, TypeError, "models must be a dict"),
    ({}, {}, ValueError, "models must name at least one model"),
    ({"a": "model"}, {}, TypeError, r"models\['a'\] must be a torch.nn.Module or a callable"),
    ({"a": nn.Linear(2, 2)}, {"repeats": 0}, ValueError, "repeats must be an integer >= 1"),
    ({"a": nn.Linear(2, 2)}, {"repeats": 2.5}, TypeError, "repeats must be an integer"),
    ({"a": nn.Linear(2, 2)}, {"warmup": -1}, ValueError, "warmup must be"),
    ({"a": nn.Linear(2, 2)}, {"threads": 0}, ValueError, "threads must be an integer >= 1"),
    ({"a": nn.Linear(2, 2)}, {"threads": {"b": 1}}, ValueError, "threads must give the threads of each"),
    ({"a": nn.Linear(2, 2)}, {"threads": {"a": 0}}, ValueError, r"threads\['a'\] must be an integer >= 1"),
    ({"a": nn.Linear(2, 2)}, {"retries": -1}, ValueError, "retries must be"),
    ({"a": nn.Linear(2, 2)}, {"max_spread": 0.5}, ValueError, "max_spread must be a finite number >= 1"),
    ({"a": nn.Linear(2, 2)}, {"min_cpu_ratio": -0.1}, ValueError, "min_cpu_ratio must be"),
    ({"a": nn.Linear(2, 2)}, {"load_slack": float("nan")}, ValueError, "load_slack must be"),
])
def test_bad_arguments_are_rejected(models, kwargs, error, match):
    with pytest.raises(error, match=match):
        timing.compare_latency(models, torch.rand(1, 2), **kwargs)


def test_bad_example_input_and_model_are_rejected():
    with pytest.raises(TypeError, match="example_input must be a tensor"):
        timing.compare_latency({"a": nn.Linear(2, 2)}, [[1.0, 2.0]])
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        timing.measure_latency(lambda x: x, torch.rand(1, 2))


def test_a_real_call_records_its_context():
    result = timing.compare_latency({"linear": nn.Linear(8, 4), "double": lambda x: x * 2}, torch.rand(2, 8),
                                    warmup=1, repeats=3, threads=1, retries=0)
    assert list(result) == ["linear", "double"]
    lat = result["linear"]
    assert lat.repeats == 3 and lat.threads == 1 and lat.batch_size == 2 and all(t > 0 for t in lat.wall_ms)
    ctx = lat.context
    assert result["double"].context == ctx and result["double"].run == lat.run
    assert ctx.cores == os.cpu_count() and 1 <= ctx.affinity <= ctx.cores and ctx.threads == 1
    assert ctx.capability == torch.backends.cpu.get_cpu_capability() and ctx.torch_version == torch.__version__
    assert set(ctx.cpu_flags) <= set(timing.INT8_FLAGS) and ctx.device == "cpu" and ctx.attempt == 1
    assert ctx.load_before >= 0 and ctx.load_after >= 0 and ctx.seconds > 0
    assert isinstance(timing.speedup(result["linear"], result["double"]), timing.Speedup)
    json.dumps({name: lat.as_dict() for name, lat in result.items()})
    alone = timing.measure_latency(nn.Linear(8, 4), torch.rand(2, 8), warmup=0, repeats=2, retries=0)
    assert alone.name == "model" and alone.repeats == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_variants_are_synchronised_and_not_judged_by_cpu_time():
    model = nn.Linear(64, 64).cuda()
    clocks = Clocks()  # the fake CPU clock never moves: on the CPU this would read as descheduled
    result = timing.compare_latency({"gpu": model}, torch.rand(8, 64), warmup=1, repeats=3, retries=0,
                                    cpu_clock=clocks.cpu_clock, read_load=lambda: (0.0, 0.0, 0.0), max_spread=1e9)
    lat = result["gpu"]
    assert lat.context.device.startswith("cuda") and lat.reliable and all(t > 0 for t in lat.wall_ms)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc thresholds")
def test_with_the_steady_allocator_the_eager_teacher_reuses_its_pages():
    """At batch 256 the eager teacher's activations (25 MiB for the first conv's output) would get fresh pages
    on each call, about 14,000 page faults (counted by the kernel: getrusage); with the allocator steady, the
    pages are reused (a few faults may remain: the kernel may reclaim idle pages)."""
    from course_lib.models import teacher_cnn

    assert timing.steady_allocator() == "glibc, thresholds 1 GiB"
    model, x = teacher_cnn().eval(), torch.randn(256, 1, 28, 28)
    with torch.inference_mode():
        model(x)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(4):
            model(x)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 4 < 4000


def test_a_context_recorded_before_the_allocator_was_says_so():
    record = context().as_dict()
    del record["allocator"]
    assert timing.Context.from_dict(record).allocator == "unrecorded"
