"""The committed split: every HAM10000 image once, and no lesion on both sides."""

from __future__ import annotations

from ml.data import read_metadata, read_split


def test_split_covers_all_10015_images_once(data_dir):
    split = read_split()
    ids = [r.image_id for part in split.values() for r in part]

    assert len(ids) == len(set(ids)) == 10015
    assert set(ids) == {r.image_id for r in read_metadata(data_dir)}


def test_no_lesion_in_both_train_and_validation():
    split = read_split()
    train = {r.lesion_id for r in split["train"]}
    val = {r.lesion_id for r in split["val"]}

    assert train.isdisjoint(val)


def test_split_labels_match_metadata(data_dir):
    truth = {r.image_id: (r.lesion_id, r.dx) for r in read_metadata(data_dir)}
    split = read_split()

    assert all(truth[r.image_id] == (r.lesion_id, r.dx) for part in split.values() for r in part)


def test_every_class_is_in_validation():
    assert {r.dx for r in read_split()["val"]} == {"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"}
