"""Monte-Carlo evaluation split over worker processes gives exactly the single-process results
(randomness is keyed by trial and digit index, reductions run in batch order)."""

from __future__ import annotations

import json

import pytest
import torch

import dsc
from dsc.eval.gaussian import GaussianRateDistortion
from dsc.eval.image_point import ImageRateDistortion
from dsc.eval.parallel import WorkerPool, worker_devices

CPU = torch.device("cpu")


def _square_plus_device(item: int, device: torch.device) -> tuple[int, str]:
    return item * item, device.type


def test_worker_pool_returns_results_in_item_order():
    with WorkerPool([CPU, CPU]) as pool:
        assert list(pool.map(_square_plus_device, range(7))) == [(i * i, "cpu") for i in range(7)]
    assert list(WorkerPool([CPU]).map(lambda item, device: item + 1, [1, 2])) == [2, 3]  # in-process


def test_gaussian_trials_split_over_workers_match_one_process(tmp_path):
    settings = dict(num_decoders=2, rate_bits=2, num_candidates=256, trials=2500, selection_trials=700,
                    test_channel_variances=[0.005, 0.002], batch_trials=512, check_bits=2, progress=False)
    one = GaussianRateDistortion(**settings).run(3, CPU, tmp_path)
    two = GaussianRateDistortion(**settings, workers=2).run(3, CPU, tmp_path)
    assert json.dumps(one) == json.dumps(two)
    assert one[0]["trials"] == 2500 and 0 < one[0]["match_prob"] < 1  # several batches, not a trivial point


def test_mnist_digits_split_over_workers_match_one_process(tiny_codec, tmp_path):
    settings = dict(ckpt_path=str(tiny_codec()), num_decoders=2, rate_bits=2, num_candidates=64, limit=90,
                    batch_size=25, check_bits=3, progress=False)
    one = ImageRateDistortion(**settings).run(1, CPU, tmp_path)
    two = ImageRateDistortion(**settings, workers=3).run(1, CPU, tmp_path)
    assert json.dumps(one) == json.dumps(two) and one[0]["digits"] == 90


def test_bad_worker_settings_are_clear_errors():
    with pytest.raises(dsc.DscError, match="workers"):
        worker_devices(CPU, 0)
    with pytest.raises(dsc.DscError, match="names one GPU"):
        worker_devices(torch.device("cuda:1"), 2)
    with pytest.raises(dsc.DscError, match="GPUs"):
        worker_devices(torch.device("cuda"), torch.cuda.device_count() + 2)
    assert worker_devices(CPU, 3) == [CPU] * 3
    with pytest.raises(dsc.DscError, match="workers"):
        GaussianRateDistortion(workers=0)
