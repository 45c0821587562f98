"""The README's "Use it in your tests" examples run exactly as printed.

Each Python block there is a complete test file (or, for the embedding
block, a script): copy-paste examples that do not run are worse than none.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _section_blocks() -> list[str]:
    text = README.read_text()
    start = text.index("## Use it in your tests")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


def test_readme_has_an_example_per_client() -> None:
    blocks = "\n".join(_section_blocks())
    for client in ("import pika", "import aio_pika", "import kombu", "from kafka import", "from aiokafka import", "from confluent_kafka import"):
        assert client in blocks, client


@pytest.mark.timeout(120)
def test_readme_test_examples_pass(pytester) -> None:
    files = {}
    expected = 0
    for number, block in enumerate(_section_blocks()):
        if "def test_" in block:
            files[f"test_readme_{number}"] = block
            expected += block.count("\ndef test_") + block.startswith("def test_")
    assert expected >= 9
    pytester.makepyfile(**files)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=expected)


def test_readme_embedding_example_runs() -> None:
    (script,) = [block for block in _section_blocks() if "def test_" not in block]
    script += "\nimport asyncio\nasyncio.run(main())\n"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
