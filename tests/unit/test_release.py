"""Register and promote on a ``file://`` store, without TensorFlow: the promotion compare-and-swap
runs against the champion the candidate was judged against, never a freshly read alias.

Each run is staged with complete step results (``tests.results_fixtures``), judged by the real
gate, registered by the real registry.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from slipway.errors import BadInputError
from slipway.registry import AliasConflict, ModelRegistry
from slipway.release import (
    CandidateNotBlessed,
    ChampionMoved,
    judge_candidate,
    promote_candidate,
    register_candidate,
)
from slipway.steps.context import RunContext
from slipway.validation import load_reference
from tests.data_fixtures import pipeline_config
from tests.results_fixtures import blessed_and_registered, evaluated_run, release_batch

MODEL = "digits"


@pytest.fixture
def config(tmp_path: Path):
    return pipeline_config(tmp_path / "store", gate={"min_accuracy": 0.5})


@pytest.fixture
def champion_v1(config) -> RunContext:
    """The first run, promoted: champion v1, its snapshot the drift reference."""
    first = evaluated_run(config, "run-0", judged_against=None)
    version = blessed_and_registered(first)
    promote_candidate(first, release_batch(), version)
    return first


def test_promotion_moves_champion_and_records_run_on_reference(config, champion_v1: RunContext) -> None:
    registry = ModelRegistry(champion_v1.store, MODEL)
    assert registry.get_alias("champion") == 1
    reference = load_reference(champion_v1.store, config.name)
    assert reference is not None and reference["run_id"] == "run-0"  # was null before issue 7

    run = evaluated_run(config, "run-1", judged_against=1)
    version = blessed_and_registered(run)
    result = promote_candidate(run, release_batch(), version)
    assert result == {"model_name": MODEL, "champion": version, "previous_champion": 1}
    assert registry.get_alias("champion") == version
    reference = load_reference(run.store, config.name)
    assert reference["run_id"] == "run-1"
    assert reference["snapshot_key"] == run.evaluate_result().snapshot_key
    assert registry.history("champion")[-1]["from_version"] == 1

    again = promote_candidate(run, release_batch(), version)  # an Airflow retry after success
    assert again["champion"] == version and len(registry.history("champion")) == 2


def test_champion_moved_between_evaluate_and_promote_fails_and_changes_nothing(
    config, champion_v1: RunContext
) -> None:
    """Run A is evaluated against v1; run B is promoted meanwhile; A's promotion must not win."""
    registry = ModelRegistry(champion_v1.store, MODEL)
    run_a = evaluated_run(config, "run-a", judged_against=1)
    version_a = blessed_and_registered(run_a)

    run_b = evaluated_run(config, "run-b", judged_against=1)
    version_b = blessed_and_registered(run_b)
    promote_candidate(run_b, release_batch(), version_b)  # the concurrent promotion

    aliases_before = registry.aliases()
    history_before = registry.history()
    reference_before = load_reference(run_a.store, config.name)
    with pytest.raises(ChampionMoved, match=r"judged against v1, but the champion is now v3") as info:
        promote_candidate(run_a, release_batch(), version_a)
    assert isinstance(info.value, BadInputError) and isinstance(info.value, AliasConflict)
    assert f"v{version_a}" in str(info.value) and "unchanged" in str(info.value)
    assert registry.aliases() == aliases_before and registry.get_alias("champion") == version_b
    assert registry.history() == history_before
    assert load_reference(run_a.store, config.name) == reference_before


def test_first_model_promotion_fails_when_another_run_promoted_first(config) -> None:
    run_a = evaluated_run(config, "run-a", judged_against=None)
    run_b = evaluated_run(config, "run-b", judged_against=None)
    version_a, version_b = blessed_and_registered(run_a), blessed_and_registered(run_b)
    promote_candidate(run_b, release_batch(), version_b)
    with pytest.raises(ChampionMoved, match="judged against no champion"):
        promote_candidate(run_a, release_batch(), version_a)
    assert ModelRegistry(run_a.store, MODEL).get_alias("champion") == version_b


def test_simultaneous_promotions_judged_against_the_same_champion_one_wins(
    config, champion_v1: RunContext
) -> None:
    runs = [evaluated_run(config, f"run-{i}", judged_against=1) for i in range(1, 5)]
    versions = [blessed_and_registered(run) for run in runs]
    barrier = threading.Barrier(len(runs))
    outcomes: list[object] = [None] * len(runs)

    def promote(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = promote_candidate(runs[i], release_batch(), versions[i])["champion"]
        except ChampionMoved as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=promote, args=(i,)) for i in range(len(runs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if isinstance(o, int)]
    assert len(winners) == 1, outcomes
    assert ModelRegistry(champion_v1.store, MODEL).get_alias("champion") == winners[0]
    assert [m["to_version"] for m in ModelRegistry(champion_v1.store, MODEL).history("champion")] == [
        1,
        winners[0],
    ]


def test_register_refuses_a_rejected_candidate_as_bad_input(config, champion_v1: RunContext) -> None:
    run = evaluated_run(config, "run-bad", judged_against=1, accuracy=0.3)  # below the 0.5 floor
    assert not judge_candidate(run, release_batch()).blessed
    with pytest.raises(CandidateNotBlessed, match="the gate did not bless it") as info:
        register_candidate(run, release_batch())
    assert isinstance(info.value, BadInputError) and not isinstance(info.value, RuntimeError)
    assert ModelRegistry(run.store, MODEL).versions() == [1]
    with pytest.raises(CandidateNotBlessed):
        promote_candidate(run, release_batch(), 1)


def test_blessing_records_the_champion_it_was_judged_against(config, champion_v1: RunContext) -> None:
    run = evaluated_run(config, "run-1", judged_against=1)
    blessing = judge_candidate(run, release_batch())
    assert blessing.champion_version == run.evaluate_result().champion_version == 1
    version = register_candidate(run, release_batch())["version"]
    metadata = ModelRegistry(run.store, MODEL).get_version(version).metadata
    assert metadata["judged_against_champion"] == 1
