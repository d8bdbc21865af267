"""Skin-lesion classifier: data, model, training, evaluation and inference.

A plain Python package: nothing in it imports Django, so it can be trained, evaluated and
benchmarked on its own; the diagnosis worker task is the one bridge to the portal.
"""
