"""MediaPipe pose calls of several people at once, in worker processes (one MediaPipe call uses one core).

`PoseWorkers(n)` starts ``n`` child processes. Each tracked person's MediaPipe graph (video mode: it follows
the person from frame to frame) lives in one worker, chosen when the person is first posed (the worker holding
the fewest graphs). The caller cuts and scales the crops (`pose.estimator.prepare_crop`), `submit`s all crops of
a frame, may do other work (the people detector) while the workers run, and `collect`s the results in order.

The workers are this program's own children (started with ``spawn``: MediaPipe runs threads, which ``fork``
does not copy), talking over `multiprocessing` pipes; nothing from outside the machine is read here. A worker
that dies raises `WorkerError` in the caller. A worker ends when its pipe closes, so none outlives the process
that started it, even one killed; that is why they may also be started from a daemonic process (a ``stream``
stage), which `multiprocessing` otherwise refuses (it cannot know that).
"""
from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np

from pose.estimator import Crop, EstimatorError, PoseResult


class WorkerError(EstimatorError):
    """A pose worker process failed or exited (one line)."""


def workers_arg(text: str):
    """``'auto'`` or a count >= 0, from a command-line flag (argparse type: its error names the flag)."""
    import argparse

    if text == "auto":
        return text
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected auto or a count >= 0, got {text!r}")
    return int(text)


def _serve(conn, model_complexity: int, min_detection_confidence: float, quiet: bool) -> None:
    """A worker: ``("pose", [(key, rgb, static), ...])`` -> ``[(raw or None, seconds), ...]``; ``("drop",
    key)`` closes that graph; ``("close",)`` ends."""
    from pose.estimator import PoseEstimator

    graphs: dict = {}
    try:
        while True:
            msg = conn.recv()
            if msg[0] == "pose":
                out = []
                for key, rgb, static in msg[1]:
                    est = graphs.get(key)
                    if est is None:
                        est = graphs[key] = PoseEstimator(model_complexity, static_image_mode=static,
                                                          min_detection_confidence=min_detection_confidence,
                                                          min_crop_height=0, quiet=quiet)
                    t0 = time.perf_counter()
                    raw = est.infer(rgb)
                    out.append((raw, time.perf_counter() - t0))
                conn.send(out)
            elif msg[0] == "drop":
                est = graphs.pop(msg[1], None)
                if est is not None:
                    est.close()
            else:
                break
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        for est in graphs.values():
            est.close()


def _start(p) -> None:
    """``p.start()``, also from a daemonic process: multiprocessing refuses children there because they could
    outlive it; ours cannot (a worker exits on EOF of its pipe, whose other end only its parent holds)."""
    me = mp.current_process()
    daemon = me._config.get("daemon", False)
    if not daemon:
        p.start()
        return
    me._config["daemon"] = False
    try:
        p.start()
    finally:
        me._config["daemon"] = daemon


class PoseWorkers:
    """``n`` pose worker processes; see the module docstring. Use as a context manager or call `close`."""

    def __init__(self, n: int, model_complexity: int = 1, *, min_detection_confidence: float = 0.5,
                 quiet: bool = True):
        if n < 1:
            raise WorkerError(f"need at least one pose worker, got {n}")
        ctx = mp.get_context("spawn")
        self._conns, self._procs = [], []
        for _ in range(n):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_serve, args=(child, model_complexity, min_detection_confidence, quiet),
                            daemon=True, name="cagereid-pose")
            _start(p)
            child.close()
            self._conns.append(parent)
            self._procs.append(p)
        self._home: dict = {}  # graph key -> worker index
        self._pending: list | None = None

    @property
    def n(self) -> int:
        return len(self._conns)

    def submit(self, jobs: list[tuple[object, Crop, bool]]) -> None:
        """Start the pose calls ``(key, crop, static_image_mode)`` of one frame (at most one per key)."""
        if self._pending is not None:
            raise WorkerError("collect() the previous batch first")
        per_worker: dict[int, list] = {}
        order = []
        for key, crop, static in jobs:
            w = self._home.get(key)
            if w is None:
                load = [0] * self.n
                for v in self._home.values():
                    load[v] += 1
                w = self._home[key] = int(np.argmin(load))
            order.append((w, len(per_worker.setdefault(w, []))))
            per_worker[w].append((key, crop.rgb, static))
        for w, batch in per_worker.items():
            self._send(w, ("pose", batch))
        self._pending = [order, sorted(per_worker), [c for _, c, _ in jobs]]

    def collect(self) -> list[tuple[PoseResult | None, float]]:
        """Results of the last `submit`, in its order: ``(PoseResult or None, seconds the call took)``."""
        if self._pending is None:
            return []
        order, workers, crops = self._pending
        self._pending = None
        got = {}
        for w in workers:
            try:
                got[w] = self._conns[w].recv()
            except (EOFError, OSError):
                raise WorkerError(f"pose worker {w} exited (exit code {self._procs[w].exitcode})") from None
        out = []
        for (w, i), crop in zip(order, crops):
            raw, secs = got[w][i]
            out.append((crop.result(raw), secs))
        return out

    def drop(self, key) -> None:
        """Forget a person's graph (their track ended)."""
        w = self._home.pop(key, None)
        if w is not None:
            self._send(w, ("drop", key))

    def _send(self, w: int, msg) -> None:
        try:
            self._conns[w].send(msg)
        except (BrokenPipeError, OSError):
            raise WorkerError(f"pose worker {w} exited (exit code {self._procs[w].exitcode})") from None

    def close(self) -> None:
        if self._pending is not None:
            try:
                self.collect()
            except WorkerError:
                pass
        for conn in self._conns:
            try:
                conn.send(("close",))
            except (BrokenPipeError, OSError):
                pass
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join(timeout=1)
        for conn in self._conns:
            conn.close()
        self._conns, self._procs, self._home = [], [], {}

    def __enter__(self) -> "PoseWorkers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
