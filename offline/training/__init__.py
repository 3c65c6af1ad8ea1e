"""Training: configuration (`config`), encoder training (`encoder`), recognition network (`rn`), the whole
``cagereid train`` job (`run`); `common` holds what they share (seeding, log, progress)."""
