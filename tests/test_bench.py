"""The benchmark script runs (smoke test at tiny sizes) and prints both of its tables."""

from __future__ import annotations

from benchmarks import bench_coding


def test_benchmark_quick_run_prints_generator_and_coder_tables(capsys):
    bench_coding.main(["--quick", "--device", "cpu", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "shared-randomness generators" in out and "torch.rand float32 (reference)" in out
    assert "importance-sampled GLS" in out and "encode Mcand/s" in out


def test_gaussian_benchmark_runs_and_both_sides_estimate_the_same_distortion(capsys):
    from benchmarks import bench_gaussian

    bench_gaussian.main(["--device", "cpu", "--trials", "400", "--reference-trials", "400", "--repeats", "1"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in rows] == ["1", "6"]
    for row in rows:
        ours, reference = float(row[-2]), float(row[-1])
        assert abs(ours - reference) < 3.0  # 400 trials each: per-trial dB has sd of about 8 dB


def test_mnist_benchmark_runs_and_both_paths_agree(capsys):
    from benchmarks import bench_mnist

    bench_mnist.main(["--device", "cpu", "--digits", "40", "--steps", "1", "--eval-batch", "20",
                      "--num-candidates", "16", "--fit-steps", "2"])
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip().startswith(("32-true", "bf16-mixed"))}
    assert set(rows) == {"32-true", "bf16-mixed"} and "1.00x" in rows["32-true"]
    assert all(row.count(" ms") == 4 for row in rows.values())  # step, val step, Lightning step, overhead
    mse = {line.split()[0]: float(line.split()[-1]) for line in out.splitlines()
           if line.strip().startswith(("dsc, each point", "reference, every point"))}
    assert abs(mse["dsc,"] - mse["reference,"]) < 1e-4  # same coding, same picks


def test_speculative_benchmark_runs_every_method(capsys):
    from benchmarks import bench_speculative

    bench_speculative.main(["--device", "cpu", "--vocab", "64", "--batch", "2", "--drafts", "2", "--length", "2",
                            "--repeats", "1"])
    out = capsys.readouterr().out
    for method in ("single_draft", "specinfer", "spectr", "gumbel", "gls", "gls_strong"):
        assert method in out
    assert "1.00x SpecInfer" in out


def test_bounds_benchmark_compares_the_same_picks_with_and_without_a_bound(capsys):
    bench_coding.main(["--quick", "--device", "cpu", "--repeats", "1", "--only", "bounds"])
    out = capsys.readouterr().out
    assert "with and without weight bounds" in out and "shared-randomness generators" not in out
    rows = [line.split() for line in out.splitlines() if line.startswith("2^")]
    assert [row[0] for row in rows] == ["2^8", "2^10"]
    assert all(row[-1] == "yes" and row[-2].endswith("x") and row[-3].endswith("x") for row in rows)


def test_cli_benchmark_times_each_command_against_the_reference(capsys):
    from benchmarks import bench_cli

    bench_cli.main(["--repeats", "1"])
    rows = {line.rsplit(None, 3)[0]: line.split() for line in capsys.readouterr().out.splitlines()[2:]}
    assert set(rows) == {"python -c 'import torch'", "dsc --help", "dsc compress --help"}
    assert rows["python -c 'import torch'"][-1] == "1.00x" and all(row[-1].endswith("x") for row in rows.values())
