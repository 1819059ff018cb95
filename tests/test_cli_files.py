"""The command line on real files and on sources found as plugins: bytes on disk -> stream ->
each decoder's reconstruction from its own side-information file; ``--import`` of a module in
the working directory; installed packages' sources (entry point group ``dsc.sources``); every
bad input an ``error:`` with exit 2 and no output."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import dsc
from dsc.bitstream import read_header, read_stream
from dsc.cli import main
from dsc.registry import get_source, source_names, unregister

NOISE_VAR = 0.5  # the gaussian source's default side-information noise
POSTERIOR_VAR = NOISE_VAR / (1 + NOISE_VAR)  # var(A | T): the MSE of the side information alone, 1/3
ROOT = Path(__file__).resolve().parent.parent


def run(capsys, *argv) -> tuple[int, dict | str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else err


def refused(capsys, says: str, *argv, absent: tuple[Path, ...] = ()) -> str:
    """The command exits 2 with one ``error:`` line containing ``says`` and writes none of ``absent``."""
    code, err = run(capsys, *argv)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert says in err, err
    for path in absent:
        assert not path.exists(), path
    return err


def gaussian_draw(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A ~ N(0, 1) and T = A + N(0, NOISE_VAR), drawn by numpy (not by dsc)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n)
    return a, a + math.sqrt(NOISE_VAR) * rng.standard_normal(n)


# ---------------------------------------------------------------------------------------------
# Gaussian samples from files


def test_samples_on_disk_round_trip_to_each_decoders_reconstruction(tmp_path, capsys):
    a, t = gaussian_draw(400)
    np.save(tmp_path / "a.npy", a.astype(np.float32))  # float32 is read too (as float64)
    np.save(tmp_path / "t0.npy", t)
    np.save(tmp_path / "exact.npy", a)  # decoder 1 sees the source itself
    np.save(tmp_path / "far.npy", a + 4.0)  # decoder 2 sees something far off
    stream = tmp_path / "a.dsc"
    code, wrote = run(capsys, "compress", "gaussian", stream, "--input", tmp_path / "a.npy", "--rate-bits", 4,
                      "--check-bits", 8, "--num-decoders", 3, "--first", 10)
    assert code == 0 and wrote["messages"] == 400 and wrote["data"] == str(tmp_path / "a.npy")
    header = read_header(stream.read_bytes())
    assert header.num_messages == 400 and header.first_message == 10 and header.message_bits == 12
    assert header.num_candidates == get_source("gaussian").num_candidates  # the source's usual N by default

    errors, accepted = {}, {}
    for decoder, side in ((0, "t0"), (1, "exact"), (2, "far")):
        out, summary_file = tmp_path / f"r{decoder}.npy", tmp_path / f"s{decoder}.json"
        code, summary = run(capsys, "decompress", "gaussian", stream, "--decoder", decoder,
                            "--side-info", tmp_path / f"{side}.npy", "--out", out, "--summary", summary_file)
        assert code == 0 and summary["messages"] == 400 and summary["check_bits"] == 8
        assert "mse" not in summary  # the decoder does not know the sources
        reconstruction = np.load(out)
        assert reconstruction.shape == (400,)
        saved = json.loads(summary_file.read_text())
        flags = np.array(saved["accepted_per_message"])
        assert flags.shape == (400,) and saved["first_message"] == 10
        assert flags.sum() == summary["accepted_messages"] and flags.mean() == pytest.approx(summary["accepted"])
        side_info = np.load(tmp_path / f"{side}.npy")
        # a rejected pick falls back to E[A | T] = T / (1 + noise_var), from its own side information
        assert np.allclose(reconstruction[~flags], side_info[~flags] / (1 + NOISE_VAR))
        squared = (reconstruction - a) ** 2
        errors[decoder], accepted[decoder] = float(squared.mean()), flags.mean()
        if decoder == 0:  # noisy T, as the source's model expects: accepted picks far beat T alone
            assert flags.mean() > 0.1 and squared[flags].mean() < 0.1 * POSTERIOR_VAR
    # each decoder reconstructs from its own side information: exact side information is closer
    # than noisy, and far-off side information is far worse than either
    assert errors[1] < errors[0] and accepted[1] >= accepted[0]
    assert errors[2] > 1.0 > 10 * errors[1]


def test_a_side_information_file_equal_to_the_derived_one_decodes_exactly_the_same(tmp_path, capsys):
    stream = tmp_path / "ids.dsc"
    assert run(capsys, "compress", "gaussian", stream, "--count", 200, "--first", 50, "--num-candidates", 1024,
               "--rate-bits", 3, "--check-bits", 4)[0] == 0
    code, derived = run(capsys, "decompress", "gaussian", stream, "--decoder", 2, "--out", tmp_path / "derived.npy")
    assert code == 0 and derived["side_information"] == "derived" and derived["mse"] < POSTERIOR_VAR
    side = get_source("gaussian").coding_inputs({}, torch.arange(50, 250), decoders=[2]).side_information[:, 0]
    np.save(tmp_path / "t2.npy", side.numpy())
    code, from_file = run(capsys, "decompress", "gaussian", stream, "--decoder", 2, "--side-info", tmp_path / "t2.npy",
                          "--out", tmp_path / "file.npy")
    assert code == 0 and from_file["accepted"] == derived["accepted"]
    assert np.array_equal(np.load(tmp_path / "file.npy"), np.load(tmp_path / "derived.npy"))
    # another decoder's side information decodes too, but to another reconstruction
    assert run(capsys, "decompress", "gaussian", stream, "--decoder", 1, "--side-info", tmp_path / "t2.npy",
               "--out", tmp_path / "other.npy")[0] == 0
    assert not np.array_equal(np.load(tmp_path / "other.npy"), np.load(tmp_path / "file.npy"))


def test_a_stream_coded_from_a_file_needs_side_information_from_a_file(tmp_path, capsys):
    a, _ = gaussian_draw(30)
    np.save(tmp_path / "a.npy", a)
    stream = tmp_path / "a.dsc"
    assert run(capsys, "compress", "gaussian", stream, "--input", tmp_path / "a.npy", "--num-candidates", 256)[0] == 0
    refused(capsys, "coded from a file (compress --input)", "decompress", "gaussian", stream, "--out",
            tmp_path / "r.npy", absent=(tmp_path / "r.npy",))
    # the file stream's other options still enter its fingerprint
    np.save(tmp_path / "t.npy", a)
    refused(capsys, "written with s2 = 0.005", "decompress", "gaussian", stream, "--side-info", tmp_path / "t.npy",
            "--s2", 0.01, "--out", tmp_path / "r.npy", absent=(tmp_path / "r.npy",))


def test_a_codec_of_d_components_reads_rows_of_d_values(tmp_path, capsys):
    from dsc.lit.train import run_training
    from tests.test_gaussian_learned import SMALL, compose_train

    run_training(compose_train(SMALL + [f"paths.output_dir={tmp_path / 'run'}", "data.dim=2"]))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    capsys.readouterr()
    a, t = gaussian_draw(40)
    np.save(tmp_path / "a.npy", np.stack([a, t], 1))  # two components
    np.save(tmp_path / "t.npy", np.stack([t, a], 1))
    np.save(tmp_path / "scalars.npy", a)
    stream = tmp_path / "d2.dsc"
    refused(capsys, "codes d = 2 components: shape (n, 2)", "compress", "gaussian", stream, "--ckpt", ckpt,
            "--input", tmp_path / "scalars.npy", absent=(stream,))
    assert run(capsys, "compress", "gaussian", stream, "--ckpt", ckpt, "--input", tmp_path / "a.npy",
               "--num-candidates", 64)[0] == 0
    code, summary = run(capsys, "decompress", "gaussian", stream, "--ckpt", ckpt, "--side-info", tmp_path / "t.npy",
                        "--out", tmp_path / "r.npy")
    assert code == 0 and np.load(tmp_path / "r.npy").shape == (40, 2)


def test_bad_files_are_refused_with_their_name_and_nothing_is_written(tmp_path, capsys):
    a, t = gaussian_draw(20)
    files = {"a.npy": a, "ints.npy": np.arange(20), "nan.npy": np.where(np.arange(20) == 3, np.nan, a),
             "wide.npy": np.stack([a, a, a], 1), "empty.npy": np.zeros(0), "short.npy": t[:19], "t.npy": t}
    for name, values in files.items():
        np.save(tmp_path / name, values)
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    (tmp_path / "garbage.npy").write_bytes(b"not an array")
    (tmp_path / "a.txt").write_text("0.5\n")
    stream = tmp_path / "s.dsc"
    for says, file in (("no such file", "missing.npy"), ("a .npy file", "a.txt"),
                       ("not a readable .npy", "garbage.npy"), ("not a readable .npy", "objects.npy"),
                       ("int64 values; floats are needed", "ints.npy"), ("NaN or infinite", "nan.npy"),
                       ("shape (20, 3)", "wide.npy"), ("holds no rows", "empty.npy")):
        err = refused(capsys, says, "compress", "gaussian", stream, "--input", tmp_path / file, absent=(stream,))
        assert file in err
    refused(capsys, "--count and --input exclude each other", "compress", "gaussian", stream, "--input",
            tmp_path / "a.npy", "--count", 20, absent=(stream,))
    refused(capsys, "is the input file", "compress", "gaussian", tmp_path / "a.npy", "--input", tmp_path / "a.npy",
            "--force")
    assert np.array_equal(np.load(tmp_path / "a.npy"), a)

    assert run(capsys, "compress", "gaussian", stream, "--input", tmp_path / "a.npy", "--num-candidates", 256)[0] == 0
    out = tmp_path / "r.npy"
    decompress = ("decompress", "gaussian", stream, "--out", out)
    refused(capsys, "for 19 messages; the stream holds 20", *decompress, "--side-info", tmp_path / "short.npy",
            absent=(out,))
    refused(capsys, "shape (20, 3)", *decompress, "--side-info", tmp_path / "wide.npy", absent=(out,))
    refused(capsys, "NaN or infinite", *decompress, "--side-info", tmp_path / "nan.npy", absent=(out,))
    refused(capsys, "is the input side-information file", "decompress", "gaussian", stream, "--side-info",
            tmp_path / "t.npy", "--out", tmp_path / "t.npy", "--force")
    assert np.array_equal(np.load(tmp_path / "t.npy"), t)
    for bad_out in (tmp_path / "r.txt", tmp_path / "r.png"):
        refused(capsys, "name a .npy file", "decompress", "gaussian", stream, "--side-info", tmp_path / "t.npy",
                "--out", bad_out, absent=(bad_out,))
    refused(capsys, "gaussian reconstructions are not images", "decompress", "gaussian", stream, "--side-info",
            tmp_path / "t.npy", "--out", tmp_path / "folder", absent=(tmp_path / "folder",))
    refused(capsys, "name the same file", "decompress", "gaussian", stream, "--side-info", tmp_path / "t.npy",
            "--out", out, "--summary", out, absent=(out,))
    refused(capsys, "--decoder must be in [0, 4)", "decompress", "gaussian", stream, "--side-info",
            tmp_path / "t.npy", "--decoder", 4, "--out", out, absent=(out,))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporaries left


# ---------------------------------------------------------------------------------------------
# sources of one's own: --import and entry points

TINY = """
import math

import torch

from dsc.coding import CounterRandomness
from dsc.coding.streams import Purpose, stream_id
from dsc.models.gaussian import GaussianModel
from dsc.registry import CodecInputs, Source, register

ROW = {row}


def inputs(options, messages, decoders):
    rng = CounterRandomness(options["data_seed"])
    stream = stream_id(Purpose.SOURCE, messages, ROW)[:, None]
    source = rng.normal(stream, torch.zeros(1, 1, dtype=torch.long), torch.float64)[:, 0]
    noise = rng.normal(stream, 1 + decoders[None, :].cpu(), torch.float64)
    side = source[:, None] + math.sqrt(0.5) * noise
    return CodecInputs(GaussianModel(0.005, 0.5), source, side, "{name}: simulated")


def squared_error(sources, reconstructions):
    return (sources[:, None] - reconstructions) ** 2


{record} = register(Source(name="{name}", description="a scalar Gaussian of its own",
                       stream_rows={{ROW: "A (counter 0) and decoder k's noise (counter k + 1)"}},
                       inputs=inputs, distortion=squared_error, options={{"data_seed": 0}}, num_candidates=512))
"""


def tiny_module(folder: Path, module: str, name: str, row: int, record: str = "RECORD") -> Path:
    path = folder / f"{module}.py"
    path.write_text(TINY.format(row=row, name=name, record=record))
    return path


@pytest.fixture
def clean_registry(monkeypatch, tmp_path):
    """sys.path as it was (without the entries that mean "the working directory"), and the
    sources and modules a test added under ``tmp_path`` removed after it."""
    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if entry not in ("", ".")])
    names = set(source_names(installed=False))
    yield
    for name in set(source_names(installed=False)) - names:
        unregister(name)
    for name in [name for name, module in sys.modules.items()
                 if str(getattr(module, "__file__", "")).startswith(str(tmp_path))]:
        del sys.modules[name]


def test_import_registers_a_source_from_a_module_in_the_working_directory(tmp_path, capsys, monkeypatch,
                                                                          clean_registry):
    monkeypatch.chdir(tmp_path)
    assert str(tmp_path) not in sys.path
    tiny_module(tmp_path, "my_sources", "tiny", 45)
    stream = tmp_path / "tiny.dsc"
    err = refused(capsys, "unknown source 'tiny'", "compress", "tiny", stream, "--count", 40, absent=(stream,))
    assert "gaussian, image_folder, mnist" in err and "--import" in err and "dsc.sources" in err
    code, wrote = run(capsys, "compress", "tiny", stream, "--import", "my_sources", "--count", 300, "--rate-bits", 3,
                      "--check-bits", 8)
    assert code == 0 and wrote["data"] == "tiny: simulated" and wrote["num_candidates"] == 512  # its usual N
    code, summary = run(capsys, "decompress", "--import", "my_sources", "tiny", stream, "--decoder", 1)
    assert code == 0 and summary["messages"] == 300
    assert summary["mse_accepted"] < 0.1 and summary["mse"] < POSTERIOR_VAR  # picks beat the side information
    assert str(tmp_path) in sys.path  # the working directory was put first for the import
    # a source without file hooks says so
    np.save(tmp_path / "a.npy", np.zeros(5))
    refused(capsys, "source 'tiny' cannot read sources from a file: its record has no input_reader", "compress",
            "tiny", tmp_path / "f.dsc", "--import", "my_sources", "--input", tmp_path / "a.npy",
            absent=(tmp_path / "f.dsc",))
    refused(capsys, "cannot read side information from a file", "decompress", "tiny", stream, "--import",
            "my_sources", "--side-info", tmp_path / "a.npy", "--out", tmp_path / "r.npy", absent=(tmp_path / "r.npy",))


def test_modules_that_cannot_be_imported_or_register_nothing_or_clash_are_refused(tmp_path, capsys, monkeypatch,
                                                                                  clean_registry):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nothing_here.py").write_text("VALUE = 1\n")
    (tmp_path / "broken_source.py").write_text(
        TINY.format(row=46, name="half", record="HALF") + "\nraise RuntimeError('half-way through')\n")
    tiny_module(tmp_path, "clash", "gaussian", 47)
    stream = tmp_path / "s.dsc"
    compress = ("compress", "gaussian", stream, "--count", 5)
    refused(capsys, "--import: cannot import 'no_such_module': no module 'no_such_module' in the working directory",
            *compress, "--import", "no_such_module", absent=(stream,))
    refused(capsys, "--import: module 'nothing_here' registers no source", *compress, "--import", "nothing_here",
            absent=(stream,))
    refused(capsys, "RuntimeError: half-way through", *compress, "--import", "broken_source", absent=(stream,))
    assert "half" not in source_names(installed=False)  # what the failed import registered is gone again
    err = refused(capsys, "a source named 'gaussian' is already registered (by module dsc.catalog.gaussian)",
                  *compress, "--import", "clash", absent=(stream,))
    assert "cannot import 'clash'" in err
    assert get_source("gaussian").inputs.__module__ == "dsc.catalog.gaussian"
    refused(capsys, "name the module, 'nothing_here', not its file", *compress, "--import", "nothing_here.py",
            absent=(stream,))


def test_the_evaluation_jobs_imports_go_through_the_same_function(tmp_path, monkeypatch, clean_registry):
    from dsc.eval.runner import import_modules

    monkeypatch.chdir(tmp_path)
    tiny_module(tmp_path, "job_sources", "jobsrc", 48)
    import_modules(["job_sources"])
    assert get_source("jobsrc").num_candidates == 512
    (tmp_path / "nothing_here.py").write_text("VALUE = 1\n")
    with pytest.raises(dsc.ConfigError, match="registers no source"):
        import_modules(["nothing_here"])


def dist_info(site: Path, entry_points: str) -> None:
    """An installed distribution 'plugsrc' in ``site`` with these dsc.sources entry points."""
    info = site / "plugsrc-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plugsrc\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[dsc.sources]\n" + entry_points)


def test_an_installed_packages_source_is_loaded_only_when_named(tmp_path, capsys, monkeypatch, clean_registry):
    site = tmp_path / "site"
    site.mkdir()
    tiny_module(site, "plug_sources", "plugged", 49, record="PLUGGED")
    tiny_module(site, "plug_record", "byrecord", 50, record="BYRECORD")
    (site / "plug_broken.py").write_text("raise ImportError('a dependency is missing')\n")
    dist_info(site, "plugged = plug_sources\nbyrecord = plug_record:BYRECORD\nmisnamed = plug_sources\n"
                    "broken = plug_broken\n")
    monkeypatch.syspath_prepend(str(site))
    assert "plugged" not in source_names(installed=False) and "plug_sources" not in sys.modules
    stream = tmp_path / "p.dsc"
    code, wrote = run(capsys, "compress", "plugged", stream, "--count", 50)  # found by its entry point
    assert code == 0 and wrote["num_candidates"] == 512 and "plug_sources" in sys.modules
    assert "plug_broken" not in sys.modules  # only the entry point of the name asked for was loaded
    assert get_source("byrecord").name == "byrecord"
    with pytest.raises(dsc.ConfigError, match="'misnamed' = 'plug_sources'.*package plugsrc.*registers no source "
                                              "named 'misnamed'"):
        get_source("misnamed")
    refused(capsys, "cannot load the source of entry point 'broken' = 'plug_broken' (group dsc.sources, package "
            "plugsrc): ImportError: a dependency is missing", "compress", "broken", tmp_path / "b.dsc",
            absent=(tmp_path / "b.dsc",))
    # an unknown name lists what is known, and says which installed source failed
    err = refused(capsys, "unknown source 'nowhere'", "compress", "nowhere", tmp_path / "n.dsc")
    assert "plugged" in err and "failed to load" in err


def test_entry_points_of_a_fresh_interpreter_and_a_help_that_loads_none(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    tiny_module(site, "plug_sources", "plugged", 49)
    dist_info(site, "plugged = plug_sources\n")
    work = tmp_path / "work"  # another folder: the module is found through the installed distribution only
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    command = [sys.executable, "-m", "dsc", "compress", "plugged", "p.dsc", "--count", "20"]
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["messages"] == 20 and (work / "p.dsc").exists()
    code = textwrap.dedent("""
        import sys
        from dsc.cli import main
        try:
            main(["compress", "--help"])
        except SystemExit:
            pass
        print("LOADED", "plug_sources" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "usage: dsc compress" in done.stdout and "LOADED False" in done.stdout


# ---------------------------------------------------------------------------------------------
# MNIST digits from images


def save_png(path: Path, pixels: np.ndarray) -> None:
    Image.fromarray(pixels.astype(np.uint8), mode="L").save(path)


@pytest.fixture(scope="module")
def digits():
    """The first 6 MNIST test digits as bytes ``[6, 28, 28]`` uint8."""
    from dsc.sources.mnist_data import load_mnist

    images = load_mnist("embedded", None, False).test_images[:6]
    return (images * 255).round().to(torch.uint8).numpy()


def test_digits_on_disk_code_as_the_data_set_and_decode_to_png_halves(tmp_path, capsys, tiny_codec, digits):
    ckpt = tiny_codec()
    capsys.readouterr()
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, digit in enumerate(digits):
        save_png(folder / f"digit_{i}.png", digit)
    (folder / "notes.txt").write_text("not an image: ignored")
    np.save(tmp_path / "digits.npy", digits)
    np.save(tmp_path / "digits_float.npy", digits.astype(np.float32) / 255)
    common = ("--ckpt", ckpt, "--num-candidates", 64, "--rate-bits", 4, "--check-bits", 2)
    streams = {}
    for name, given in (("folder", folder), ("npy", tmp_path / "digits.npy"), ("float", tmp_path / "digits_float.npy")):
        streams[name] = tmp_path / f"{name}.dsc"
        code, wrote = run(capsys, "compress", "mnist", streams[name], "--input", given, *common)
        assert code == 0 and wrote["messages"] == 6, wrote
    assert streams["folder"].read_bytes() == streams["npy"].read_bytes() == streams["float"].read_bytes()
    by_id = tmp_path / "ids.dsc"
    assert run(capsys, "compress", "mnist", by_id, "--count", 6, *common)[0] == 0
    # the digits' right halves are coded exactly as the data set's (same labels; the contexts differ)
    assert torch.equal(read_stream(by_id.read_bytes()).labels, read_stream(streams["folder"].read_bytes()).labels)

    # decoder 1's own crops, from the derived ones, as PNG bytes: decoding with them is decoding as derived
    derived = get_source("mnist").coding_inputs({"ckpt": str(ckpt)}, torch.arange(6), decoders=[1])
    crops = ((derived.side_information[:, 0, 0] + 1) / 2 * 255).round().to(torch.uint8).numpy()
    size = crops.shape[-1]
    crop_folder = tmp_path / "crops"
    crop_folder.mkdir()
    for i, crop in enumerate(crops):
        save_png(crop_folder / f"{i:02d}.png", crop)
    code, plain = run(capsys, "decompress", "mnist", by_id, "--ckpt", ckpt, "--decoder", 1,
                      "--out", tmp_path / "derived.npy")
    assert code == 0
    halves = tmp_path / "halves"
    code, summary = run(capsys, "decompress", "mnist", streams["folder"], "--ckpt", ckpt, "--decoder", 1,
                        "--side-info", crop_folder, "--out", halves)
    assert code == 0 and summary["accepted"] == plain["accepted"] and summary["wrote"] == str(halves)
    names = sorted(p.name for p in halves.iterdir())
    assert names == [f"{i:06d}.png" for i in range(6)] + ["summary.json"]
    pngs = np.stack([np.asarray(Image.open(halves / name)) for name in names[:6]])
    expected = np.load(tmp_path / "derived.npy")
    assert expected.shape == (6, 28, 14) and expected.min() >= 0 and expected.max() <= 1
    assert pngs.shape == (6, 28, 14) and np.array_equal(pngs, np.round(expected * 255).astype(np.uint8))
    flags = json.loads((halves / "summary.json").read_text())["accepted_per_message"]
    assert len(flags) == 6 and sum(flags) == summary["accepted_messages"]
    # an existing folder is replaced only with --force, and then as a whole
    refused(capsys, "exists; pass --force", "decompress", "mnist", streams["folder"], "--ckpt", ckpt,
            "--side-info", crop_folder, "--out", halves)
    (halves / "stale.png").write_bytes(b"old")
    assert run(capsys, "decompress", "mnist", streams["folder"], "--ckpt", ckpt, "--side-info", crop_folder,
               "--out", halves, "--force", "--decoder", 1)[0] == 0
    assert not (halves / "stale.png").exists() and len(list(halves.iterdir())) == 7

    # bad images: their name and what is expected
    save_png(tmp_path / "big.png", np.zeros((32, 32)))
    np.save(tmp_path / "halves.npy", digits[:, :, 14:])
    np.save(tmp_path / "over.npy", digits.astype(np.float32))  # floats on 0..255, not [0, 1]
    np.save(tmp_path / "int16.npy", digits.astype(np.int16))
    (tmp_path / "empty").mkdir()
    out = tmp_path / "x.dsc"
    for says, given in (("is 32x32 pixels; mnist inputs (whole digits", "big.png"),
                        ("shape (6, 28, 14)", "halves.npy"), ("outside [0, 1]", "over.npy"),
                        ("int16 pixels", "int16.npy"), ("holds no PNG or JPEG images", "empty")):
        err = refused(capsys, says, "compress", "mnist", out, "--ckpt", ckpt, "--input", tmp_path / given,
                      absent=(out,))
        assert given in err
    save_png(tmp_path / "whole.png", digits[0])
    refused(capsys, f"is 28x28 pixels; mnist side information (crop, {size}x{size}", "decompress", "mnist",
            streams["folder"], "--ckpt", ckpt, "--side-info", tmp_path / "whole.png", "--out", tmp_path / "r.npy",
            absent=(tmp_path / "r.npy",))
    refused(capsys, "for 1 messages; the stream holds 6", "decompress", "mnist", streams["folder"], "--ckpt", ckpt,
            "--side-info", crop_folder / "00.png", "--out", tmp_path / "r.npy", absent=(tmp_path / "r.npy",))
