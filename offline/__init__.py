"""Offline work: dataset formats, self-supervised training, evaluation, benchmark preparation, CASIA-B."""
