"""The README's Python examples run as written and their claims hold."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_examples_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    exec(compile("\n".join(blocks), str(README), "exec"), namespace)
    out = capsys.readouterr().out
    rate, bound = (float(x) for x in re.search(r"= ([\d.]+) >= LML bound ([\d.]+)", out).groups())
    assert rate >= bound - 0.01
    assert float(re.search(r"pick\] = ([\d.]+)", out).group(1)) > 0.5
    # the pipeline example: the best of 4 decoders beats the side information alone (var(A|T) = 1/3)
    assert float(re.search(r"best-of-4 MSE ([\d.]+)", out).group(1)) < 1 / 3
