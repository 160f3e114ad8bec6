"""get_task: a Gymnasium env it cannot plan on is refused with the reason, and the known tasks."""

import pytest

from envs.registry import default_propagations, default_values, get_task, task_names


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


def test_hopper_and_walker2d_declare_a_value_and_its_agent_ships():
    declared = {name: get_task(name) for name in task_names() if get_task(name).value_agent}
    assert sorted(declared) == ["hopper", "walker2d"]
    assert all(spec.value_agent_path.is_file() for spec in declared.values())
    assert all(spec.value_weight == 2.0 for spec in declared.values())
    assert default_values() == (
        "hopper: checkpoints/agents/hopper-value-452k-sac.zip's critic at weight 2; "
        "walker2d: checkpoints/agents/walker2d-value-sac.zip's critic at weight 2; "
        "no value elsewhere"
    )
    assert get_task("half-cheetah").value_text == "none"


def test_half_cheetah_hopper_and_walker2d_world_models_sample_trajectories_by_default():
    sampled = [n for n in task_names() if get_task(n).world_model_propagation != "mean"]
    assert sorted(sampled) == ["half-cheetah", "hopper", "walker2d"]
    assert {get_task(n).world_model_propagation for n in sampled} == {"tsinf"}
    listed = "half-cheetah, hopper and walker2d tsinf, every other task mean"
    assert default_propagations() == listed
