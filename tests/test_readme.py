"""The README's Python examples run as printed."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    """The README's ```python blocks, in order."""
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_shows_two_python_examples():
    assert len(python_blocks()) == 2


@pytest.mark.parametrize("index", [0, 1], ids=["policy-on-gymnasium-envs", "optimizer-alone"])
def test_a_readme_example_runs(index, capsys):
    exec(compile(python_blocks()[index], f"README.md python block {index}", "exec"), {})
    if index == 1:
        reward, shape = capsys.readouterr().out.split(" torch.Size")
        assert float(reward) < 0 and shape.strip() == "([64, 2])"


def test_the_policy_example_plans_five_lines_per_task_on_four_tasks():
    block = python_blocks()[0]
    loop = block[block.index("for env_id") :].splitlines()
    assert len(loop) == 6  # the loop line and five lines per task
    assert all(env_id in loop[0] for env_id in ("Hopper", "HalfCheetah", "Reacher", "Walker2d"))
