"""The encoders shipped with the package (``encoder.pt`` + ``encoder.json`` each; see README.md here).

* `PATH` (this folder): the small demo encoder, trained on synthetic walkers only (``cagereid demo``).
* `LIVE_PATH` (``live/``): the live-domain encoder, the default of ``live``/``enroll``/``serve``/``camera``,
  ``evaluate --tracks`` and the ``--init`` of ``train --tracks``.

Packages (not just folders) so that a regular, non-editable install carries the weights as package data.
"""
from pathlib import Path

PATH = Path(__file__).resolve().parent
LIVE_PATH = PATH / "live"
