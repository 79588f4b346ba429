"""The learned second opinion on after-session warning signs
(assistant/nlu/learned_warning_signs.py): its leave-one-set-out figures, its
place after the patterns in the trained pipeline, and its report sets' checks."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, cast
from unittest import mock

import numpy as np
import pytest

from assistant.nlu.fingerprints import NLU_CODE
from assistant.nlu.learned_warning_signs import (
    LEARNED_FLAG_ID,
    OTHER_BODY_WORDS,
    ReportSetError,
    Thresholds,
    WarningSignModel,
    body_words,
    fingerprint,
    load_report_set,
    question_set_texts,
    quiet_texts,
    report_set_files,
)
from assistant.nlu.linear_classifier import LinearIntentClassifier
from assistant.nlu.red_flag_rules import CATEGORIES, RedFlag, detector_for, normalise
from assistant.nlu.red_flags import RED_FLAG_KEY, RedFlagClassifier, _question_sets
from assistant.paths import PROJECT_ROOT, REPORT_SETS
from assistant.quality.warning_signs_cv import FoldFeatures, held_out_sets, pooled, warm_fit
from tests.conftest import report_figure

CONFIG = RedFlagClassifier.configured()
# Measured over 19 sets (recall 0.928, false alarms 3 of 2,206), then 23 (0.941, 8 of
# 2,665), 27 (0.940, 10 of 3,129), 31 (0.940, 13 of 3,592), 39 (0.945, 12 of 4,520), 43
# (0.949, 11 of 4,986), 51 (0.953, 15 of 5,909), 55 (0.955, 16 of 6,359), 59 (0.958, 16 of
# 6,820), 63 (0.960, 16 of 7,292), 67 (0.961, 16 of 7,752) and, with C=32 and 0.8 for an
# emergency (learned_warning_signs.py says why), 71 (0.974, 22 of 8,228), 75 (0.975, 22 of
# 8,691), 79 (0.974, 32 of 9,141: dev76's long rambling questions), 81 (0.973, 32 of 9,372;
# messages of context words only left to the patterns) and 83 (0.974, 28 of 9,606; the tuned-on
# blind question sets read as quiet examples). Each new set up to 31 brought
# harder quiet messages (dev20's long narratives gave 3 alarms), so the ceiling followed,
# each time by a note like this one; never lower the floor.
HELD_OUT_RECALL_FLOOR = 0.93
HELD_OUT_FALSE_ALARM_CEILING = 0.004
# No pattern has words for this report of pain on breathing in after back needling. (The
# patterns learned "killing me whenever i inhale" while tuning on dev32-dev35, so the
# ribs now scream instead.)
UNPATTERNED_REPORT = "ribs are screaming whenever i inhale since the physio put pins in my back"


@pytest.mark.model
def test_held_out_figures_one_blind_set_at_a_time() -> None:
    """Trained as `make model` trains it, on every set but one; that one predicted."""
    from rasa.shared.nlu.training_data.loading import load_data

    nlu = load_data(str(PROJECT_ROOT / "data" / "nlu"))
    quiet = quiet_texts(nlu) + question_set_texts(_question_sets(CONFIG))
    results = held_out_sets(REPORT_SETS, quiet, body_words(nlu), CONFIG["C"],
                            Thresholds.from_config(CONFIG))
    recall, alarm_rate = pooled(results)
    report_figure(f"learned warning signs, leave-one-set-out over {len(results)} blind sets (model alone, "
                  f"no patterns): recall {recall:.3f} on {sum(r.reports for r in results)} reports; "
                  f"false alarms {sum(r.alarms for r in results)} of {sum(r.quiet for r in results)} "
                  f"({alarm_rate:.2%})")
    assert len(results) >= 39
    assert recall >= HELD_OUT_RECALL_FLOOR
    assert alarm_rate <= HELD_OUT_FALSE_ALARM_CEILING


def test_through_the_trained_pipeline_it_catches_what_no_pattern_does(parse: Any) -> None:
    assert detector_for().detect(UNPATTERNED_REPORT) is None
    parsed = parse(UNPATTERNED_REPORT)
    assert parsed["intent"] == {"name": "emergency", "confidence": 1.0}
    assert parsed[RED_FLAG_KEY] == {"category": "emergency", "id": LEARNED_FLAG_ID}


def test_through_the_trained_pipeline_a_pattern_still_names_its_flag(parse: Any) -> None:
    assert parse("my lips are swelling up since the needles")[RED_FLAG_KEY]["id"] == "allergic_reaction"


# Answers the bot asks for ("which problem?", the call-back note) that are only body parts:
# before the check, the model gave these 0.94-0.99.
BODY_PART_ANSWERS = ["chest", "my chest", "breathing", "neck and chest", "my neck and chest",
                     "chest and shoulders", "my chest and ribs", "upper back and neck"]


@pytest.mark.parametrize("text", ["how long does a session take", "does dry needling hurt",
                                  "is it the same as acupuncture",
                                  "sore for a day after needling, normal i guess", *BODY_PART_ANSWERS,
                                  "and saturdays?", "and swelling?", "and neck pain"])
def test_ordinary_questions_body_part_answers_and_normal_soreness_stay_quiet(parse: Any, text: str) -> None:
    assert parse(text)["intent"]["name"] not in CATEGORIES


class AlwaysAlarms:
    def category(self, text: str, thresholds: Thresholds) -> str:
        return "emergency"


def classifier_with(learned: Any) -> RedFlagClassifier:
    return RedFlagClassifier(CONFIG, cast(Any, None), cast(Any, None), learned)


@pytest.mark.parametrize("text", ["/faq/does_it_hurt", " /request_callback ", '/inform{"x": 1}', "", "   "])
def test_button_payloads_and_empty_messages_never_reach_the_model(text: str) -> None:
    assert classifier_with(AlwaysAlarms()).flag(text) is None


def test_a_pattern_decides_first_and_keeps_its_name() -> None:
    classifier = classifier_with(AlwaysAlarms())
    swelling = "my lips are swelling since the needles"
    assert classifier.flag(swelling) == RedFlag("emergency", "allergic_reaction")
    assert classifier.flag("how long is a session") == RedFlag("emergency", LEARNED_FLAG_ID)


def test_a_list_of_body_parts_or_a_short_follow_up_is_left_to_the_patterns() -> None:
    model = WarningSignModel(body=frozenset(["neck", "shoulder", "shoulders", "blade"]) | OTHER_BODY_WORDS)
    for text in BODY_PART_ANSWERS + ["left shoulder blade", "fainted", "and saturdays?", "and swelling?",
                                     "ok what about infection", "my chest hurts"]:
        assert model.leaves_to_patterns(text), text
    for text in ["neck and chest pain", "fainted at the clinic", "cant lift right arm. face numb one side"]:
        assert not model.leaves_to_patterns(text), text


def test_a_message_that_only_says_what_was_done_and_when_is_left_to_the_patterns() -> None:
    """The opening of a report sent in bursts: no sign yet, so no alarm from the model."""
    model = WarningSignModel(body=frozenset(["neck", "shoulder", "blade", "calf"]) | OTHER_BODY_WORDS)
    for text in ["had needling on my shoulder blade today", "the needle site on my shoulder",
                 "had needles in my neck 3 days ago", "the spot where she put the needle in my calf"]:
        assert model.leaves_to_patterns(text), text
    for text in ["had needling on my shoulder blade today, now it stabs when i breathe",
                 "the needle site on my shoulder is hot", "needles in my neck and i feel faint"]:
        assert not model.leaves_to_patterns(text), text


@pytest.mark.parametrize("level, alarms", [(2, True), (1, False)])
def test_an_emergency_needs_less_certainty_than_a_see_a_doctor_today(level: int, alarms: bool) -> None:
    thresholds = Thresholds.from_config(CONFIG)
    between = (thresholds.emergency + thresholds.report) / 2
    model = WarningSignModel()
    with mock.patch.object(model, "_assess", return_value=(between, level)):
        assert model.level("my ribs are screaming", thresholds) == (level if alarms else 0)


@pytest.mark.parametrize("setting, message", [
    ({"threshhold": 0.9}, "no setting 'threshhold'"),
    ({"threshold": 0.7, "emergency_threshold": 0.8}, "0 < emergency_threshold <= threshold <= 1"),
    ({"emergency_threshold": 0}, "0 < emergency_threshold"),
])
def test_a_misspelt_setting_or_thresholds_out_of_order_are_refused(setting: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RedFlagClassifier.checked_config(setting)
    assert RedFlagClassifier.checked_config({"threshold": 0.95})["emergency_threshold"] == CONFIG[
        "emergency_threshold"]


def test_a_report_set_with_an_unknown_group_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "reports.yml"
    path.write_text("urgent:\n  - my leg is numb since the needles\nworrying:\n  - hmm\n", encoding="utf-8")
    with pytest.raises(ReportSetError, match="reports.yml: unknown group 'worrying'"):
        load_report_set(path)
    path.write_text("urgent: my leg is numb\n", encoding="utf-8")
    with pytest.raises(ReportSetError, match="'urgent' must be a list of messages"):
        load_report_set(path)


def test_editing_a_report_set_changes_the_fingerprint_so_rasa_retrains(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("urgent:\n  - my leg is numb since the needles\n", encoding="utf-8")
    before = fingerprint(tmp_path)
    assert fingerprint(tmp_path) == before
    (tmp_path / "a.yml").write_text("urgent:\n  - my arm is numb since the needles\n", encoding="utf-8")
    assert fingerprint(tmp_path) != before
    assert RedFlagClassifier.fingerprint_addon({"reports": str(tmp_path)}).startswith(fingerprint(tmp_path))


def test_a_change_to_a_helper_module_retrains_our_components(tmp_path: Path) -> None:
    """Rasa's cache sees a component's own class, not the modules it uses: an old
    pickle in new code broke once. A copy of the NLU code with one helper changed
    must give both components a new fingerprint."""
    for path in NLU_CODE.glob("*.py"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    helper = tmp_path / "ngram_features.py"
    helper.write_text(helper.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    with mock.patch("assistant.nlu.fingerprints.NLU_CODE", tmp_path):
        changed = (LinearIntentClassifier.fingerprint_addon({}), RedFlagClassifier.fingerprint_addon({}))
    assert changed[0] != LinearIntentClassifier.fingerprint_addon({})
    assert changed[1] != RedFlagClassifier.fingerprint_addon({})


def _first_sets(count: int) -> list:
    return [example for path in report_set_files(REPORT_SETS)[:count] for example in load_report_set(path)]


def test_direct_probabilities_equal_sklearns() -> None:
    """The fast path (ngram_features.py) against predict_proba, on a small model."""
    examples = _first_sets(3)
    model = WarningSignModel().fit(examples)
    texts = [text for text, _ in examples] + ["", "zzzz", "ÄÖÜ ½ 🙂", "sore " * 50]
    expected = model.classifier.predict_proba(model.features.transform([normalise(t) for t in texts]))
    assert np.allclose([model.probabilities(text) for text in texts], expected, rtol=0, atol=1e-9)
    copy = pickle.loads(pickle.dumps(model))  # the prepared weights are rebuilt after loading
    assert copy.features._weights[0] is None and np.allclose(copy.probabilities("my arm is numb"),
                                                 model.probabilities("my arm is numb"))


def test_the_faster_solver_reaches_sklearns_default_model() -> None:
    """Newton-CG (learned_warning_signs.SOLVER) against stock lbfgs, on eight sets."""
    examples = _first_sets(8)
    ours = WarningSignModel().fit(examples)
    stock = WarningSignModel()
    stock.classifier.set_params(solver="lbfgs")
    stock.fit(examples)
    assert ours.classifier.solver != stock.classifier.solver
    texts = [normalise(text) for text, _ in examples]
    assert np.allclose(ours.classifier.predict_proba(ours.features.transform(texts)),
                       stock.classifier.predict_proba(stock.features.transform(texts)), rtol=0, atol=1e-3)


def test_fitting_the_features_gives_what_transform_gives() -> None:
    texts = [normalise(text) for text, _ in _first_sets(2)]
    model = WarningSignModel()
    fitted = model.features.fit(texts)
    assert abs(fitted - model.features.transform(texts)).max() < 1e-12


def test_every_report_set_loads_and_has_each_level() -> None:
    levels = {level for path in sorted(REPORT_SETS.glob("*.yml")) for _, level in load_report_set(path)}
    assert levels == {0, 1, 2}


def test_a_folds_features_are_those_tfidf_fits_on_its_training_texts() -> None:
    """The leave-one-set-out shortcut (warning_signs_cv.FoldFeatures) against
    fitting the model's own vectorizers on the fold's training texts."""
    texts = [normalise(text) for text, _ in _first_sets(3)]
    held_rows = np.arange(40, 90)
    training = [text for i, text in enumerate(texts) if not 40 <= i < 90]
    fold = FoldFeatures(WarningSignModel().features.vectorizers, texts).fold(held_rows)
    reference = WarningSignModel().features
    expected = reference.fit(training)
    assert fold.kept.sum() == expected.shape[1] < fold.kept.size  # some n-grams are only in the held rows
    assert abs(fold.train[:, fold.kept] - expected).max() < 1e-12
    assert abs(fold.held[:, fold.kept] - reference.transform(texts[40:90])).max() < 1e-12
    assert fold.train[:, ~fold.kept].nnz == fold.held[:, ~fold.kept].nnz == 0


def test_a_fold_started_from_the_model_of_every_set_reaches_the_cold_fit() -> None:
    examples = _first_sets(8)
    texts = [normalise(text) for text, _ in examples]
    levels = np.array([level for _, level in examples])
    features = FoldFeatures(WarningSignModel().features.vectorizers, texts)
    everything = WarningSignModel()
    everything.classifier.fit(features.fold(np.array([], dtype=int)).train, levels)
    held_rows = np.arange(len(_first_sets(1)))
    fold = features.fold(held_rows)
    warm = warm_fit(fold, np.delete(levels, held_rows), everything)
    cold = WarningSignModel().fit([e for i, e in enumerate(examples) if i not in set(held_rows)])
    held = [text for text, _ in examples[:len(held_rows)]]
    assert warm.classifier.n_iter_[0] < cold.classifier.n_iter_[0]
    assert np.allclose(warm.classifier.predict_proba(fold.held),
                       cold.classifier.predict_proba(cold.features.transform([normalise(t) for t in held])),
                       rtol=0, atol=1e-3)
