"""The default encoder of ``cagereid live``/``enroll``/``serve``/``evaluate --tracks`` and the default ``--init`` of
``cagereid train --tracks``: trained for the live domain (MediaPipe world landmarks of real people, converted to
the Kinect v1 layout); ``encoder.pt`` + ``encoder.json``; how it was made: README.md here.

A package (not just a folder) so that a regular, non-editable install carries the weights as package data.
"""
from pathlib import Path

PATH = Path(__file__).resolve().parent
