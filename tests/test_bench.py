"""The benchmark script runs (smoke test at tiny sizes) and prints both of its tables."""

from __future__ import annotations

from benchmarks import bench_coding


def test_benchmark_quick_run_prints_generator_and_coder_tables(capsys):
    bench_coding.main(["--quick", "--device", "cpu", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "shared-randomness generators" in out and "torch.rand float32 (reference)" in out
    assert "importance-sampled GLS" in out and "encode Mcand/s" in out
