"""Watching the classifier's batches in a test: the real method runs, its batch sizes are
recorded."""

from __future__ import annotations


def watch_batches(classifier, monkeypatch) -> list[int]:
    """How many images each predict_batch call of `classifier` took: the real method runs,
    watched, not replaced."""
    calls: list[int] = []
    real = classifier.predict_batch

    def predict_batch(images, *args, **kwargs):
        calls.append(len(images))
        return real(images, *args, **kwargs)

    monkeypatch.setattr(classifier, "predict_batch", predict_batch)
    return calls
