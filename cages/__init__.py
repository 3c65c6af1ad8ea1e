"""CAGE model: per-axis attention encoder-decoder, contrastive loss, features, recognition network, matcher.

Imports nothing from `pose`, `stream` or `offline`; needs only torch and numpy.
"""
