"""The schedule search on hand-computed validation surfaces: which points it evaluates, in which batches,
where it widens its lists, where it stops, and what it notes."""

from __future__ import annotations

import math

import pytest

from llm4sbr_adapter.config import ConfigError
from llm4sbr_adapter.experiments.training.schedule_runs import lr_text
from llm4sbr_adapter.experiments.training.schedule_search import ScheduleSpace, edge_notes, search_schedule


def bowl(lr_best: float, step_best: float):
    """A surface peaking at (lr_best, step_best), falling with the squared log2 distance on each axis."""

    def value(lr: float, step: int) -> float:
        return -(math.log2(lr / lr_best) ** 2) - math.log2(step / step_best) ** 2

    return value


def counted(surface):
    """``evaluate(points)`` over ``surface``, keeping every call's points."""
    calls: list[list[tuple[float, int]]] = []

    def evaluate(points):
        calls.append(list(points))
        return [surface(lr, step) for lr, step in points]

    return evaluate, calls


def test_an_optimum_at_the_start_costs_one_list_per_setting():
    evaluate, calls = counted(bowl(1e-3, 6))
    result = search_schedule(evaluate, ScheduleSpace())
    assert calls == [[(5e-4, 6), (1e-3, 6), (2e-3, 6)], [(1e-3, 3), (1e-3, 12)]]
    assert result.chosen == (1e-3, 6) and result.value == 0.0 and result.passes == 1
    assert result.notes == [] and result.lrs == [5e-4, 1e-3, 2e-3] and result.steps == [3, 6, 12]


def test_an_interior_optimum_off_the_start_moves_both_settings_and_checks_once_more():
    space = ScheduleSpace(lrs=(2.5e-4, 5e-4, 1e-3, 2e-3, 4e-3), steps=(3, 6, 12, 24), start_lr=1e-3, start_step=6)
    evaluate, calls = counted(bowl(2e-3, 12))
    result = search_schedule(evaluate, space)
    assert calls == [
        [(2.5e-4, 6), (5e-4, 6), (1e-3, 6), (2e-3, 6), (4e-3, 6)],  # pass 1, lr: moves to 2e-3
        [(2e-3, 3), (2e-3, 12), (2e-3, 24)],  # pass 1, step (6 is known): moves to 12
        [(2.5e-4, 12), (5e-4, 12), (1e-3, 12), (4e-3, 12)],  # pass 2, lr at the new step: stays
    ]
    assert result.chosen == (2e-3, 12) and result.passes == 2 and result.notes == []
    assert list(result.points) == [p for call in calls for p in call]  # each point once


def test_a_best_lr_at_the_top_widens_the_list_until_it_is_inside():
    evaluate, calls = counted(bowl(4e-3, 6))
    result = search_schedule(evaluate, ScheduleSpace())
    assert calls[:3] == [[(5e-4, 6), (1e-3, 6), (2e-3, 6)], [(4e-3, 6)], [(8e-3, 6)]]
    assert calls[3:] == [[(4e-3, 3), (4e-3, 12)]]
    assert result.chosen == (4e-3, 6) and result.lrs == [5e-4, 1e-3, 2e-3, 4e-3, 8e-3]
    assert result.widened["lr high"] == 2 and result.notes == []


def test_the_extension_cap_leaves_a_note():
    evaluate, calls = counted(bowl(3.2e-2, 6))
    result = search_schedule(evaluate, ScheduleSpace(max_extensions=2))
    assert result.chosen == (8e-3, 6) and result.lrs[-1] == 8e-3
    assert result.notes == ["lr 8e-3 is the largest tried"]
    assert [(8e-3, 3), (8e-3, 12)] in calls  # the step list is searched at the widened lr
    capped = search_schedule(counted(bowl(3.2e-2, 6))[0], ScheduleSpace(max_extensions=0))
    assert capped.chosen == (2e-3, 6) and capped.notes == ["lr 2e-3 is the largest tried"]


def test_a_best_lr_at_the_bottom_halves():
    evaluate, _ = counted(bowl(2.5e-4, 6))
    result = search_schedule(evaluate, ScheduleSpace(max_extensions=3))
    assert result.chosen == (2.5e-4, 6) and result.lrs == [1.25e-4, 2.5e-4, 5e-4, 1e-3, 2e-3]
    assert lr_text(result.lrs[0]) == "1.25e-4"


@pytest.mark.parametrize(("max_epochs", "tried"), [(30, [3, 6, 12, 24, 30]), (20, [3, 6, 12, 20])])
def test_the_step_grows_to_no_decay_and_stops_there(max_epochs, tried):
    def surface(lr, step):  # no decay is best; lr 1e-3 best
        return step - abs(math.log2(lr / 1e-3))

    result = search_schedule(counted(surface)[0], ScheduleSpace(max_epochs=max_epochs, max_extensions=5))
    assert result.steps == tried and result.chosen == (1e-3, max_epochs)
    assert result.widened["step high"] == len(tried) - 3 and result.notes == []


def test_the_step_halves_down_to_one_and_stops_there():
    def surface(lr, step):
        return -step - abs(math.log2(lr / 1e-3))

    space = ScheduleSpace(steps=(6, 12), start_step=6, max_extensions=5)
    result = search_schedule(counted(surface)[0], space)
    assert result.steps == [1, 3, 6, 12] and result.chosen == (1e-3, 1) and result.notes == []


def test_a_one_value_list_at_a_limit_grows_at_its_other_end():
    def surface(lr, step):
        return step - abs(math.log2(lr / 1e-3))

    space = ScheduleSpace(lrs=(1e-3,), steps=(1,), start_step=1, max_epochs=4, max_extensions=3)
    result = search_schedule(counted(surface)[0], space)
    assert result.steps == [1, 2, 4] and result.chosen == (1e-3, 4) and result.notes == []
    assert result.lrs == [5e-4, 1e-3, 2e-3]  # lr: the low end first, then the top, then 1e-3 is inside
    assert result.widened == {"lr low": 1, "lr high": 1, "step low": 0, "step high": 2}


def test_a_tie_keeps_the_current_point_and_needs_no_widening_once_inside():
    evaluate, calls = counted(lambda lr, step: 0.5)
    result = search_schedule(evaluate, ScheduleSpace(start_lr=2e-3))
    assert result.chosen == (2e-3, 6)
    assert calls == [[(5e-4, 6), (1e-3, 6), (2e-3, 6)], [(4e-3, 6)], [(2e-3, 3), (2e-3, 12)]]
    assert result.passes == 1


def test_a_start_outside_the_lists_joins_them():
    evaluate, calls = counted(bowl(3e-3, 6))
    result = search_schedule(evaluate, ScheduleSpace(lrs=(1e-3, 2e-3), start_lr=3e-3, max_extensions=0))
    assert calls[0] == [(1e-3, 6), (2e-3, 6), (3e-3, 6)]
    assert result.chosen == (3e-3, 6) and result.notes == ["lr 3e-3 is the largest tried"]


def test_every_point_is_evaluated_once_over_three_passes():
    def surface(lr, step):  # a diagonal ridge: a = log2(lr / 1e-3), b = log2(step / 6), best near a = b = 4
        a, b = math.log2(lr / 1e-3), math.log2(step / 6)
        return -((a - b) ** 2) - 0.2 * (a + b - 8) ** 2

    evaluate, calls = counted(surface)
    result = search_schedule(evaluate, ScheduleSpace(max_extensions=4))
    # pass 1: a -> 1 (a* = 4/3), b -> 2 (step 24); pass 2: a -> 3 (a* = 8/3), b -> log2(5) (step 30, the limit);
    # pass 3: a stays at 3 (a* = 2.88), nothing moves
    assert result.chosen == (8e-3, 30) and result.passes == 3
    flat = [p for call in calls for p in call]
    assert len(flat) == len(set(flat)) == len(result.points)


def test_evaluate_must_answer_every_point_with_a_number():
    with pytest.raises(ValueError, match="returned 1 values for 3 points"):
        search_schedule(lambda points: [0.0], ScheduleSpace())
    with pytest.raises(ValueError, match="returned nan for lr 5e-4 step 6"):
        search_schedule(lambda points: [math.nan] * len(points), ScheduleSpace())


def test_edge_notes():
    assert edge_notes((1e-3, 3), [1e-3], [3, 30], 30) == [
        "lr 1e-3 is the only one tried",
        "step 3 is the smallest tried",
    ]
    assert edge_notes((1e-3, 30), [5e-4, 1e-3], [3, 30], 30) == ["lr 1e-3 is the largest tried"]
    assert edge_notes((5e-4, 1), [5e-4, 1e-3, 2e-3], [1, 3], 30) == ["lr 5e-4 is the smallest tried"]


def test_lr_spelling():
    assert [lr_text(v) for v in (5e-4, 0.001, 2.5e-4, 4e-3, 0.1, 1.0)] == [
        "5e-4",
        "1e-3",
        "2.5e-4",
        "4e-3",
        "1e-1",
        "1e0",
    ]


def test_bad_spaces_are_refused():
    with pytest.raises(ConfigError, match="lrs must be one or more positive"):
        ScheduleSpace(lrs=(1e-3, -1.0))
    with pytest.raises(ConfigError, match="steps must be one or more"):
        ScheduleSpace(steps=(0, 3))
