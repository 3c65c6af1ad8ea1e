"""The small demo encoder shipped with the package (``encoder.pt`` + ``encoder.json``; see README.md here).

A package (not just a folder) so that a regular, non-editable install carries the weights as package data.
"""
from pathlib import Path

PATH = Path(__file__).resolve().parent
