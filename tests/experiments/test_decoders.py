"""What Diffusion Elites decodes with: the prior's DDIM decode or its one-call student, chosen per
task and per flag, and a student refused where it does not belong."""

import shutil
from dataclasses import replace

import pytest

from envs.registry import CHECKPOINTS, get_task
from experiments.harness.cli import UsageError
from experiments.harness.wiring import load_decoders
from planner.distilled import DistilledPrior
from planner.prior import DiffusionPrior

SPEC = get_task("unicycle-goal")


def test_the_task_default_searches_and_decodes_with_its_student():
    search, final = load_decoders("de", SPEC)
    assert isinstance(search, DistilledPrior) and search is final
    search, final = load_decoders("de", get_task("hopper"))  # ships no student
    assert isinstance(search, DiffusionPrior) and search is final


@pytest.mark.parametrize(
    "decoder, final_decoder, kinds",
    [
        ("ddim", None, (DiffusionPrior, DiffusionPrior)),
        ("student", "ddim", (DistilledPrior, DiffusionPrior)),
        ("ddim", "student", (DiffusionPrior, DistilledPrior)),
    ],
)
def test_flags_choose_each_decoder(decoder, final_decoder, kinds):
    search, final = load_decoders("de", SPEC, decoder=decoder, final_decoder=final_decoder)
    assert (type(search), type(final)) == kinds


def test_other_planners_get_no_decoder():
    assert load_decoders("cem", SPEC) == (None, None)


def test_a_prior_given_by_path_decodes_by_ddim_unless_told_and_takes_its_own_students(tmp_path):
    copy = tmp_path / "mine.pt"
    shutil.copy(SPEC.prior_path, copy)
    search, final = load_decoders("de", SPEC, str(copy))
    assert isinstance(search, DiffusionPrior) and search is final
    # the shipped student was distilled from these very bytes: accepted
    search, _ = load_decoders("de", SPEC, str(copy), decoder="student")
    assert isinstance(search, DistilledPrior)


def test_a_student_of_another_prior_is_refused():
    other = CHECKPOINTS / "unicycle-action-mlp-h16.pt"
    with pytest.raises(UsageError, match=r"was distilled from unicycle-action\.pt"):
        load_decoders("de", SPEC, str(other), decoder="student")
    search, _ = load_decoders("de", SPEC, str(other), force=True, decoder="student")
    assert isinstance(search, DistilledPrior)


def test_a_task_without_a_student_says_how_to_get_one():
    with pytest.raises(UsageError, match=r"ships no student.*distill_prior\.py"):
        load_decoders("de", replace(SPEC, student=None), decoder="student")


def test_a_missing_or_foreign_student_is_refused(tmp_path):
    with pytest.raises(UsageError, match="no student checkpoint"):
        load_decoders("de", SPEC, decoder="student", student=str(tmp_path / "none.pt"))
    reacher = get_task("reacher")
    with pytest.raises(UsageError, match=r"for task 'reacher'.*--force-prior"):
        load_decoders("de", SPEC, decoder="student", student=str(reacher.student_path))


def test_an_unknown_decoder_is_refused():
    with pytest.raises(UsageError, match="--decoder must be one of"):
        load_decoders("de", SPEC, decoder="fast")
