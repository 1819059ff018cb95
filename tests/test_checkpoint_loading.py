"""Loading checkpoints: a truncated, damaged or foreign file, or a checkpoint of another model,
is a specific DscError naming the file, never torch's own error; fuzzed like the bitstream
parser (truncations at every scale and random byte damage of a real checkpoint)."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
import torch

import dsc
from dsc.eval.image_point import load_codec
from dsc.lit.checkpoint import CheckpointMismatchError, CorruptCheckpointError, read_checkpoint


@pytest.fixture(scope="module")
def checkpoint_bytes(tiny_codec) -> bytes:
    return tiny_codec().read_bytes()


def test_unreadable_files_are_corrupt_checkpoint_errors(tmp_path, checkpoint_bytes):
    cases = {"empty.ckpt": b"", "text.ckpt": b"epoch=3\n", "half.ckpt": checkpoint_bytes[: len(checkpoint_bytes) // 2]}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(CorruptCheckpointError, match=f"{name} cannot be read as a checkpoint") as error:
            load_codec(path)
        assert "weights_only" not in str(error.value) and "best.ckpt" in str(error.value)
    listing = tmp_path / "list.ckpt"
    torch.save([1, 2, 3], listing)
    with pytest.raises(CorruptCheckpointError, match="holds a list, not a checkpoint"):
        read_checkpoint(listing, "python train.py")


def test_a_checkpoint_of_another_kind_is_a_mismatch(tmp_path):
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"weight": torch.zeros(2)}, "hyper_parameters": {"width": 3}}, foreign)
    with pytest.raises(CheckpointMismatchError, match="foreign.ckpt is not a checkpoint of the image codec"):
        load_codec(foreign)


def test_a_corrupt_resume_checkpoint_stops_training_before_it_starts(tmp_path, tiny_codec):
    from dsc.eval.image_point import load_codec
    from dsc.lit.checkpoint import check_resume

    bad = tmp_path / "last.ckpt"
    bad.write_bytes(tiny_codec().read_bytes()[:1000])
    module = load_codec(tiny_codec())
    with pytest.raises(CorruptCheckpointError, match="last.ckpt cannot be read"):
        check_resume(module, str(bad), "python train.py")
    assert check_resume(module, str(tiny_codec()), "python train.py") == 1  # one epoch trained


def test_messages_say_what_happened(tmp_path, tiny_codec):
    """A file that would run code is refused as such (and never run); a folder is a folder; a
    missing file is missing; none of them shows torch's advice about weights_only."""
    class Payload:
        def __reduce__(self):
            return (exec, ("raise SystemExit('the payload ran')",))

    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": Payload()}, evil)
    cases = {evil: "is not a plain weights file \\(refused: loading it would run code",
             tmp_path: "is a directory, not a checkpoint file", tmp_path / "none.ckpt": "none.ckpt does not exist"}
    for path, message in cases.items():
        with pytest.raises(CorruptCheckpointError, match=message) as raised:
            load_codec(path)
        assert "weights_only" not in str(raised.value) and raised.value.__cause__ is None


def test_hyper_parameters_are_checked_against_the_weights_before_building(tmp_path, tiny_codec):
    """A checkpoint whose hyper-parameters describe a far larger network than its weights is a
    mismatch found on the meta device: the network is never built for real, so a forged
    ``hidden`` cannot make the loader allocate gigabytes (checked under a memory limit)."""
    forged = tmp_path / "forged.ckpt"
    checkpoint = torch.load(tiny_codec(), map_location="cpu", weights_only=True)
    checkpoint["hyper_parameters"]["hidden"] = 400_000  # the fc layer alone: 400,000 x 392 floats ~ 0.6 GB
    torch.save(checkpoint, forged)
    script = (
        "import resource, sys\n"
        "from dsc.eval.image_point import load_codec\n"
        "from dsc.lit.checkpoint import CheckpointMismatchError\n"
        "size = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
        "resource.setrlimit(resource.RLIMIT_AS, (size + 300 * 2**20, resource.RLIM_INFINITY))\n"
        "try:\n"
        "    load_codec(sys.argv[1])\n"
        "except CheckpointMismatchError as error:\n"
        "    print('MISMATCH', error)\n"
    )
    run = subprocess.run([sys.executable, "-c", script, str(forged)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "MISMATCH" in run.stdout, run.stderr[-2000:]
    assert "has shape" in run.stdout and "hyper-parameters describe" in run.stdout


def test_fuzzed_checkpoints_load_or_raise_a_dsc_error(tmp_path, checkpoint_bytes):
    """Truncations at 64 lengths and 64 files with random damage: each either loads or raises a
    DscError; no other exception escapes the loader."""
    rng = random.Random(0)
    size = len(checkpoint_bytes)
    variants = [checkpoint_bytes[: int(size * (i / 64) ** 2)] for i in range(64)]
    for _ in range(64):
        data = bytearray(checkpoint_bytes)
        for _ in range(rng.choice([1, 4, 64])):
            data[rng.randrange(size)] = rng.randrange(256)
        variants.append(bytes(data))
    outcomes = {"loaded": 0, "refused": 0}
    for i, data in enumerate(variants):
        path = tmp_path / f"fuzz_{i}.ckpt"
        path.write_bytes(data)
        try:
            load_codec(path)
            outcomes["loaded"] += 1
        except dsc.DscError:
            outcomes["refused"] += 1
    assert outcomes["refused"] >= 64  # every truncation short of the whole file is refused
    assert sum(outcomes.values()) == len(variants)
