"""Measures the sentiment scorer against human ratings (docs/sentiment.md).

Gold label: the mean rating through the same thresholds as the scorer
(positive >= 0.05, negative <= -0.05, else neutral)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from statistics import correlation
from typing import Callable

from .sentiment import label_for, sentiment_score


@dataclass(frozen=True)
class Evaluation:
    n: int
    pearson_r: float  # compound vs mean human rating
    accuracy_3class: float  # positive / neutral / negative
    accuracy_posneg: float  # gold positive or negative: right side of 0 (compound >= 0 counts positive)
    texts_per_second: float


def gold_load(path: Path) -> list[tuple[float, str]]:
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            _id, rating, text = line.split("\t", 2)
            rows.append((float(rating), text))
    return rows


def sentiment_evaluate(rows: list[tuple[float, str]], score: Callable[[str], float] | None = None) -> Evaluation:
    score = score or (lambda text: sentiment_score(text).compound)
    started = time.perf_counter()
    predicted = [score(text) for _rating, text in rows]
    elapsed = time.perf_counter() - started
    gold = [rating for rating, _text in rows]
    right3 = sum(label_for(p) == label_for(g) for p, g in zip(predicted, gold))
    polar = [(p, g) for p, g in zip(predicted, gold) if label_for(g) != "neutral"]
    right2 = sum((p >= 0) == (g > 0) for p, g in polar)
    return Evaluation(
        n=len(rows), pearson_r=correlation(predicted, gold), accuracy_3class=right3 / len(rows),
        accuracy_posneg=right2 / len(polar), texts_per_second=len(rows) / elapsed,
    )
