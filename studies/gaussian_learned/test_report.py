"""The learned-codec study's report, from synthetic evaluation points."""

from __future__ import annotations

import json

import pytest

from studies.gaussian_learned.report import learned_gaps, write_study


def test_the_study_report_tabulates_every_scheme_beside_the_bound(tmp_path):
    def point(method, k, rate, mse_db, dim=1, **extra):
        return {"source": "gaussian", "method": method, "scheme": "gls", "num_decoders": k, "rate_bits": rate,
                "mse_db": mse_db, "mse_db_se": 0.1, "per_decoder_mse_db": mse_db + 3, "match_prob": 0.5,
                "noise_var": 0.5, "dim": dim, "operating_point": "x", "messages": 100, **extra}

    points = [point("gls_analytic", 4, 2, -14.0), point("gls_learned", 4, 2, -13.4),
              point("nested_scalar", 1, 4, -9.0, dim=4, step=0.5)]
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "a" / "metrics.json").write_text(json.dumps({"complete": True, "points": points}))
    out = write_study(tmp_path / "runs", tmp_path / "results")
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0].startswith("scheme,dim,num_decoders,rate_bits,mse_db,mse_db_se,per_decoder_mse_db,match_prob")
    bounds = [r for r in rows if r.startswith("wyner_ziv_bound")]
    # var(A|T) 2^(-2R/d) per component: d = 1, 2 bits -> -16.81 dB; d = 4, 4 bits -> -10.79 dB
    assert any(",1,,2,-16.81" in r for r in bounds) and any(",4,,4,-10.79" in r for r in bounds)
    assert learned_gaps([{**p, "scheme": p["method"]} for p in points]) == {(4, 2): pytest.approx(0.6)}
    assert "| gls_learned | 4 |" in (out / "results.md").read_text()
