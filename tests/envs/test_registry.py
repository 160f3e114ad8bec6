"""get_task: a Gymnasium env it cannot plan on is refused with the reason, and the known tasks."""

import pytest

from envs.registry import get_task, task_names


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Ant-v5", "contact forces (cfrc_ext)"),
        ("Humanoid-v5", "centre of mass"),
        ("HumanoidStandup-v5", "contact forces (cfrc_ext)"),
        ("Pusher-v5", "no planning version of its reward"),
        ("Hopper-v4", "plan on Hopper-v5"),
        ("CartPole-v1", "restarting the simulator from the env's full state"),
        ("nowhere", "unknown task 'nowhere'"),
    ],
)
def test_an_unplannable_name_is_refused_with_its_reason_and_the_known_tasks(name, reason):
    with pytest.raises(ValueError) as refused:
        get_task(name)
    assert reason in str(refused.value)
    assert "known tasks: " + ", ".join(task_names()) in str(refused.value)
    assert get_task("Hopper-v5") is get_task("hopper")
