"""2D → 3D lifting of 14-joint (casia14) poses: exemplar matching and a residual MLP.

Two lifters share one library of (normalised 2D projection, normalised depth) pairs made by projecting
3D poses through random virtual cameras (`make_library_pairs`):

* `MatchingLifter` — Chen & Ramanan, "3D Human Pose Estimation = 2D Pose Estimation + Matching"
  (CVPR 2017), the lifting the CAGE paper used for CASIA-B (CAGE_SPEC §7.1): the query 2D pose is
  normalised for position and scale, its k nearest library projections are found (one batched
  distance matrix per chunk, on the GPU when there is one), and the exemplars' depths, rescaled to the
  query's 2D size, are attached to the query's own 2D joints.
* `MLPLifter` — the residual MLP of Martinez et al., "A simple yet effective baseline for 3d human pose
  estimation" (ICCV 2017), trained on the same pairs to regress the same normalised depth; a Gaussian
  filter over time (`smooth_sequence`) removes frame-to-frame jitter in sequences.

Conventions (OpenCV camera frame): x right, y down (image pixels), z forward (away from the camera).
A lifted pose is ``(..., 14, 3)``: x, y are the query's pixels, z is the depth relative to the pelvis
(mid-hip) in the same pixel units (weak perspective: metres × focal / root depth). Normalised 2D = (pixels −
pelvis) / s, with s the RMS distance of the 14 joints from the pelvis; normalised depth uses the same s.

3D library poses are given in a y-up right-handed world frame (metres); `random_cameras` orbits them.
Pure numpy/torch: no imports from the rest of the project.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from pose.camera import project, relative_depth_px
from pose.errors import PoseError

J = 14
CASIA14_JOINTS = ("head", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
                  "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle")
HIPS = (8, 11)  # the root (pelvis) is their midpoint
FLIP_PAIRS = ((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13))
FLIP_INDEX = np.arange(J)
for _a, _b in FLIP_PAIRS:
    FLIP_INDEX[_a], FLIP_INDEX[_b] = _b, _a


class LiftError(PoseError):
    """A 2D sequence that cannot be lifted (e.g. hips or neck never seen), or a bad lifter file."""


# ---------------------------------------------------------------------------------------------------------
# Normalisation and sequence clean-up
# ---------------------------------------------------------------------------------------------------------
def root_of(joints: np.ndarray) -> np.ndarray:
    """Pelvis = mid-hip, ``(..., J, D) -> (..., D)``."""
    return 0.5 * (joints[..., HIPS[0], :] + joints[..., HIPS[1], :])


def normalise_2d(pose2d) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(..., 14, 2)`` pixels -> (normalised ``(..., 14, 2)``, root ``(..., 2)``, scale ``(...,)``)."""
    p = np.asarray(pose2d, dtype=np.float64)
    root = root_of(p)
    c = p - root[..., None, :]
    scale = np.sqrt((c ** 2).sum(-1).mean(-1))
    scale = np.maximum(scale, 1e-9)
    return c / scale[..., None, None], root, scale


def mirror_3d(poses: np.ndarray) -> np.ndarray:
    """Left/right mirror image of y-up world poses ``(..., 14, 3)``: negate x, swap left/right labels."""
    out = np.asarray(poses, dtype=np.float64)[..., FLIP_INDEX, :].copy()
    out[..., 0] *= -1
    return out


def fill_missing_2d(seq2d, valid=None) -> np.ndarray:
    """Complete a ``(T, 14, 2)`` pixel sequence (NaN = missing) so every frame can be lifted.

    Per joint, gaps are linearly interpolated in time (held constant beyond the first/last detection).
    A joint never seen in the sequence copies its left/right counterpart (in a side view the hidden limb
    is roughly behind the visible one). Raises `LiftError` when the neck, the head or both hips are
    never seen.
    """
    x = np.asarray(seq2d, dtype=np.float64).copy()
    if x.ndim != 3 or x.shape[1:] != (J, 2):
        raise LiftError(f"expected a (T, {J}, 2) sequence, got {x.shape}")
    if valid is not None:
        x[~np.asarray(valid, dtype=bool)] = np.nan
    T = len(x)
    t = np.arange(T)
    seen = np.isfinite(x).all(-1)  # (T, J)
    for j in range(J):
        ok = seen[:, j]
        if ok.any() and not ok.all():
            for d in range(2):
                x[:, j, d] = np.interp(t, t[ok], x[ok, j, d])
    never = ~seen.any(0)
    for a, b in FLIP_PAIRS:
        if never[a] and not never[b]:
            x[:, a] = x[:, b]
        elif never[b] and not never[a]:
            x[:, b] = x[:, a]
    still = ~np.isfinite(x).all(-1).all(0)
    if still.any():
        names = [CASIA14_JOINTS[j] for j in np.flatnonzero(still)]
        raise LiftError(f"joints never detected on either side: {', '.join(names)}")
    return x


def smooth_sequence(x, sigma: float) -> np.ndarray:
    """Gaussian filter along axis 0 (time) with edge padding; ``sigma`` in frames (0 = unchanged)."""
    x = np.asarray(x, dtype=np.float64)
    if sigma <= 0 or len(x) < 2:
        return x.copy()
    r = max(1, int(math.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.concatenate([np.repeat(x[:1], r, 0), x, np.repeat(x[-1:], r, 0)], axis=0)
    out = np.zeros_like(x)
    for i, w in enumerate(k):
        out += w * pad[i:i + len(x)]
    return out


# ---------------------------------------------------------------------------------------------------------
# Virtual cameras and the library of (2D, depth) pairs
# ---------------------------------------------------------------------------------------------------------
@dataclass
class CameraRig:
    """Ranges of the random virtual cameras that look at a walker's pelvis (angles in degrees, metres)."""

    azimuth: tuple[float, float] = (0.0, 360.0)
    elevation: tuple[float, float] = (-5.0, 30.0)
    distance: tuple[float, float] = (3.0, 10.0)
    roll: tuple[float, float] = (-5.0, 5.0)
    height: tuple[float, float] = (-0.3, 0.3)  # aim point above/below the pelvis
    focal: float = 1000.0


def random_cameras(n: int, rng: np.random.Generator, rig: CameraRig | None = None):
    """``n`` cameras: rotation ``R (n, 3, 3)`` (world y-up -> OpenCV camera), centre ``C (n, 3)``."""
    rig = rig or CameraRig()
    az = np.deg2rad(rng.uniform(*rig.azimuth, n))
    el = np.deg2rad(rng.uniform(*rig.elevation, n))
    dist = rng.uniform(*rig.distance, n)
    roll = np.deg2rad(rng.uniform(*rig.roll, n))
    aim = np.stack([np.zeros(n), rng.uniform(*rig.height, n), np.zeros(n)], 1)
    return look_at(aim, az, el, dist, roll)


def look_at(aim, azimuth, elevation, distance, roll=None):
    """Cameras at spherical positions around ``aim (n, 3)`` (radians), looking at it; y is world up."""
    aim = np.atleast_2d(np.asarray(aim, dtype=np.float64))
    az, el, dist = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (azimuth, elevation, distance))
    n = max(len(aim), len(az))
    roll = np.zeros(n) if roll is None else np.atleast_1d(np.asarray(roll, dtype=np.float64))
    offset = np.stack([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)], 1) * dist[:, None]
    C = aim + offset
    fwd = -offset / np.linalg.norm(offset, axis=1, keepdims=True)
    up = np.array([0.0, 1.0, 0.0])
    right = np.cross(fwd, up)
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    down = np.cross(fwd, right)
    R = np.stack([right, down, fwd], 1)  # rows: camera x (right), y (down), z (forward)
    cr, sr = np.cos(roll), np.sin(roll)
    Rz = np.zeros((n, 3, 3))
    Rz[:, 0, 0], Rz[:, 0, 1], Rz[:, 1, 0], Rz[:, 1, 1], Rz[:, 2, 2] = cr, -sr, sr, cr, 1.0
    return Rz @ R, C


def to_camera(poses_world, R, C) -> np.ndarray:
    """World ``(n, J, 3)`` -> camera frame ``(n, J, 3)`` for per-pose cameras ``R (n,3,3)``, ``C (n,3)``."""
    return np.einsum("nij,nkj->nki", R, np.asarray(poses_world) - C[:, None, :])


def pairs_from_camera(cam, focal: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera-frame poses ``(n, 14, 3)`` -> (pixels ``(n,14,2)``, normalised 2D, normalised depth ``(n,14)``)."""
    uv = project(cam, focal)
    x2d, _, scale = normalise_2d(uv)
    z_root = root_of(cam)[:, 2]
    depth = relative_depth_px(cam[..., 2], z_root[:, None], focal) / scale[:, None]
    return uv, x2d, depth


def make_library_pairs(poses_world, n_views: int, seed: int = 0, rig: CameraRig | None = None,
                       mirror: bool = True) -> dict[str, np.ndarray]:
    """Project every y-up world pose ``(P, 14, 3)`` through ``n_views`` random cameras.

    Returns float32 arrays ``x2d (M, 14, 2)`` (normalised 2D) and ``depth (M, 14)`` (normalised depth), plus
    ``pose_index (M,)``; with ``mirror`` the left/right mirror image of every pose is added (M = P·views·2).
    """
    rng = np.random.default_rng(seed)
    poses = np.asarray(poses_world, dtype=np.float64)
    poses = poses - root_of(poses)[:, None, :]
    index = np.arange(len(poses))
    if mirror:
        poses = np.concatenate([poses, mirror_3d(poses)])
        index = np.concatenate([index, index])
    rig = rig or CameraRig()
    P = len(poses)
    rep = np.repeat(np.arange(P), n_views)
    R, C = random_cameras(len(rep), rng, rig)
    cam = to_camera(poses[rep], R, C)
    _, x2d, depth = pairs_from_camera(cam, rig.focal)
    return {"x2d": x2d.astype(np.float32), "depth": depth.astype(np.float32), "pose_index": index[rep]}


def pick_device(device: str | None = None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# ---------------------------------------------------------------------------------------------------------
# Lifters
# ---------------------------------------------------------------------------------------------------------
class _Lifter:
    """Shared front end: pixels -> normalised 2D -> normalised depth -> pixel-unit 3D."""

    def lift_normalised(self, x2d: np.ndarray) -> np.ndarray:  # (N, 14, 2) -> (N, 14)
        raise NotImplementedError

    def lift(self, pose2d) -> np.ndarray:
        """Complete 2D poses ``(N, 14, 2)`` pixels -> ``(N, 14, 3)``: the same x, y plus root-relative depth."""
        p = np.asarray(pose2d, dtype=np.float64)
        if p.ndim != 3 or p.shape[1:] != (J, 2):
            raise LiftError(f"expected (N, {J}, 2) 2D poses, got {p.shape}")
        if not np.isfinite(p).all():
            raise LiftError("2D poses contain NaN; complete them first (fill_missing_2d)")
        x2d, _, scale = normalise_2d(p)
        depth = self.lift_normalised(x2d) * scale[:, None]
        return np.concatenate([p, depth[..., None]], axis=-1)

    def lift_sequence(self, seq2d, valid=None, smooth_sigma: float = 0.0) -> np.ndarray:
        """A ``(T, 14, 2)`` pixel sequence with gaps (NaN or ``valid`` False) -> ``(T, 14, 3)``.

        Gaps are filled (`fill_missing_2d`) before lifting; the depth is then smoothed over time
        with a Gaussian of ``smooth_sigma`` frames.
        """
        full = fill_missing_2d(seq2d, valid)
        out = self.lift(full)
        if smooth_sigma > 0:
            out[..., 2] = smooth_sequence(out[..., 2], smooth_sigma)
        return out


class MatchingLifter(_Lifter):
    """Chen & Ramanan exemplar matching: depth of the k nearest library projections (mean when k > 1).

    The search is exact. ``backend``: ``"torch"`` = one batched distance matrix per chunk of queries
    (``|q|² + |l|² − 2 q·l``, then top-k) on ``device`` - the GPU path; ``"kdtree"`` = scipy's cKDTree
    (CPU; several times faster than brute force for small k on walking poses); ``"auto"`` = torch on a
    GPU, else kdtree for k <= 5, else torch.
    """

    kind = "matching"

    def __init__(self, x2d, depth, k: int = 1, device: str | None = None, chunk: int = 256,
                 backend: str = "auto"):
        self.device = pick_device(device)
        self.k = int(k)
        self.chunk = int(chunk)
        lib = torch.as_tensor(np.asarray(x2d, dtype=np.float32).reshape(len(x2d), -1))
        self.lib = lib.to(self.device)  # (M, 28)
        self.lib_sq = (self.lib ** 2).sum(1)  # (M,)
        self.depth = torch.as_tensor(np.asarray(depth, dtype=np.float32)).to(self.device)  # (M, 14)
        if self.lib.shape[1] != 2 * J or self.depth.shape != (len(lib), J):
            raise LiftError(f"library must be x2d (M, {J}, 2) and depth (M, {J}); got {tuple(np.shape(x2d))}, "
                            f"{tuple(np.shape(depth))}")
        if backend not in ("auto", "torch", "kdtree"):
            raise LiftError(f"unknown matching backend {backend!r} (auto|torch|kdtree)")
        self.backend = backend
        self._tree = None

    @property
    def size(self) -> int:
        return int(self.lib.shape[0])

    def _use_tree(self, k: int) -> bool:
        if self.backend == "auto":
            return self.device.type == "cpu" and k <= 5
        return self.backend == "kdtree"

    @torch.no_grad()
    def nearest(self, x2d: np.ndarray, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Indices ``(N, k)`` and squared distances of the k nearest library projections, nearest first."""
        k = min(k or self.k, self.size)
        flat = np.asarray(x2d, dtype=np.float32).reshape(len(x2d), -1)
        if len(flat) == 0:
            return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
        if self._use_tree(k):
            if self._tree is None:
                from scipy.spatial import cKDTree

                self._tree = cKDTree(self.lib.cpu().numpy().astype(np.float64))
            dist, idx = self._tree.query(flat.astype(np.float64), k=k)
            dist, idx = dist.reshape(len(flat), k), idx.reshape(len(flat), k)
            return idx.astype(np.int64), (dist ** 2).astype(np.float32)
        q = torch.as_tensor(flat).to(self.device)
        idx, dist = [], []
        for s in range(0, len(q), self.chunk):
            qc = q[s:s + self.chunk]
            d2 = (qc ** 2).sum(1, keepdim=True) + self.lib_sq[None, :] - 2.0 * qc @ self.lib.T  # (n, M)
            v, i = torch.topk(d2, k, dim=1, largest=False)
            idx.append(i)
            dist.append(v.clamp_min(0))
        return torch.cat(idx).cpu().numpy(), torch.cat(dist).cpu().numpy()

    @torch.no_grad()
    def lift_normalised(self, x2d: np.ndarray) -> np.ndarray:
        idx, _ = self.nearest(x2d)
        d = self.depth[torch.as_tensor(idx, device=self.device)]  # (N, k, 14)
        return d.mean(1).cpu().numpy().astype(np.float64)

    def save(self, path) -> None:
        from pose.io import save_npz

        save_npz(path, {"x2d": self.lib.cpu().numpy().reshape(-1, J, 2), "depth": self.depth.cpu().numpy(),
                        "k": np.asarray(self.k)})

    @classmethod
    def load(cls, path, k: int | None = None, device: str | None = None, backend: str = "auto") -> "MatchingLifter":
        try:
            with np.load(path, allow_pickle=False) as z:
                x2d, depth, k0 = z["x2d"], z["depth"], int(z["k"]) if "k" in z else 1
        except (OSError, KeyError, ValueError) as exc:
            raise LiftError(f"{path}: not a lifting library (.npz with x2d and depth): {exc}") from None
        return cls(x2d, depth, k=k or k0, device=device, backend=backend)


# --- Martinez et al. 2017 residual MLP ---------------------------------------------------------------------
@dataclass
class MLPConfig:
    width: int = 512  # Martinez: 1024
    blocks: int = 2  # residual blocks of two linear layers each (Martinez: 2)
    dropout: float = 0.25  # Martinez: 0.5
    n_joints: int = J


class _ResBlock(nn.Module):
    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout),
        )

    def forward(self, x):
        return x + self.net(x)


class LiftMLP(nn.Module):
    """Normalised 2D ``(B, 2J)`` -> normalised root-relative depth ``(B, J)``."""

    def __init__(self, cfg: MLPConfig):
        super().__init__()
        self.cfg = cfg
        self.inp = nn.Sequential(nn.Linear(2 * cfg.n_joints, cfg.width), nn.BatchNorm1d(cfg.width), nn.ReLU(),
                                 nn.Dropout(cfg.dropout))
        self.blocks = nn.Sequential(*[_ResBlock(cfg.width, cfg.dropout) for _ in range(cfg.blocks)])
        self.out = nn.Linear(cfg.width, cfg.n_joints)

    def forward(self, x):  # (B, 2J) -> (B, J)
        return self.out(self.blocks(self.inp(x)))


class MLPLifter(_Lifter):
    kind = "mlp"

    def __init__(self, model: LiftMLP, device: str | None = None, batch: int = 4096):
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.batch = batch

    @torch.no_grad()
    def lift_normalised(self, x2d: np.ndarray) -> np.ndarray:
        q = torch.as_tensor(np.asarray(x2d, dtype=np.float32).reshape(len(x2d), -1))
        out = [self.model(q[s:s + self.batch].to(self.device)).cpu() for s in range(0, len(q), self.batch)]
        if not out:
            return np.zeros((0, J))
        return torch.cat(out).numpy().astype(np.float64)

    def save(self, path, extra: dict | None = None) -> None:
        from pose.io import atomic_path

        state = {k: v.cpu() for k, v in self.model.state_dict().items()}
        with atomic_path(path) as tmp:
            torch.save({"model_args": asdict(self.model.cfg), "state_dict": state, "extra": extra or {}}, tmp)

    @classmethod
    def load(cls, path, device: str | None = None) -> "MLPLifter":
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            model = LiftMLP(MLPConfig(**ckpt["model_args"]))
            model.load_state_dict(ckpt["state_dict"])
        except (OSError, KeyError, RuntimeError, TypeError, EOFError) as exc:
            raise LiftError(f"{path}: not an MLP lifter checkpoint: {exc}") from None
        return cls(model, device=device)


def train_mlp(x2d, depth, cfg: MLPConfig | None = None, epochs: int = 10, batch: int = 256, lr: float = 1e-3,
              noise: float = 0.03, seed: int = 0, device: str | None = None, val: tuple | None = None,
              progress=None) -> tuple[MLPLifter, list[dict]]:
    """Train the residual MLP on library pairs (L1 loss on normalised depth, Adam, exponential decay).

    ``noise``: std of Gaussian noise added to the normalised 2D input (OpenPose jitter). ``val``:
    optional ``(x2d, depth)`` evaluated after each epoch. ``progress(epoch, logs)`` is called per epoch.
    """
    cfg = cfg or MLPConfig()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dev = pick_device(device)
    X = torch.as_tensor(np.asarray(x2d, dtype=np.float32).reshape(len(x2d), -1))
    Y = torch.as_tensor(np.asarray(depth, dtype=np.float32))
    model = LiftMLP(cfg).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = max(1, math.ceil(len(X) / batch))
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.1 ** (1.0 / max(1, epochs * steps)))
    history = []
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(X), generator=gen)
        total = 0.0
        for s in range(0, len(X), batch):
            i = perm[s:s + batch]
            if len(i) < 2:
                continue  # BatchNorm needs two samples
            xb, yb = X[i].to(dev), Y[i].to(dev)
            if noise > 0:
                xb = xb + noise * torch.randn(xb.shape, generator=gen).to(dev)
            loss = (model(xb) - yb).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(i)
        logs = {"epoch": epoch + 1, "train_l1": total / len(X)}
        if val is not None:
            lifter = MLPLifter(model, device=str(dev))
            pred = lifter.lift_normalised(val[0])
            logs["val_l1"] = float(np.abs(pred - np.asarray(val[1])).mean())
            model.train()
        history.append(logs)
        if progress is not None:
            progress(epoch + 1, logs)
    return MLPLifter(model.eval(), device=str(dev)), history


def load_lifter(path, device: str | None = None, k: int | None = None) -> _Lifter:
    """A lifter from its file: ``.npz`` library -> `MatchingLifter`, ``.pt`` checkpoint -> `MLPLifter`."""
    path = Path(path)
    if not path.is_file():
        raise LiftError(f"{path}: lifter file not found")
    if path.suffix == ".npz":
        return MatchingLifter.load(path, k=k, device=device)
    return MLPLifter.load(path, device=device)
