"""A built-in dataset whose classes differ only in the order of their frames.

Each video shows one random polygon over a random textured background. Four
families each change one attribute monotonically over time: horizontal
position, vertical position, size and opacity; the two classes of a family are the two
directions of that change. A clip of one class played backwards is exactly a
clip of its paired class (same seed), so any single frame and any statistic
that ignores frame order is identically distributed for the two classes of a
pair: a model must read temporal order to beat 50%.

Every clip also drifts slightly in all attributes (direction random) so the
class change must be told apart from nuisance motion. Videos are written as
H.264 mp4 in a class-per-folder layout so training runs the real decode path.

The multi-label variant (`write_multilabel_dataset`) shows two polygons per
video, one on each side, each with its own class from a different family: a
video has two labels, and played backwards it has their two paired classes
instead, so here too only frame order tells the labels apart.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os

import numpy as np

from kvid.io import atomic, encode
from kvid.io.progress import progress_bar

CLASS_NAMES = (
    "move_left",
    "move_right",
    "move_up",
    "move_down",
    "shrink",
    "grow",
    "disappear",
    "appear",
)
# Class 2k + 1 is class 2k played backwards.
FAMILIES = ("horizontal", "vertical", "scale", "fade")
SPLITS = {"train": 0, "validation": 1}
_SUPERSAMPLE = 2
_MANIFEST = "kvid_synthetic.json"
_X264 = {"crf": "18", "preset": "veryfast"}
# Bumped whenever the generator changes, so a cached dataset is never silently stale.
# v2 had a rotation-sense pair in place of up/down: quarter-width S3D-G learnt every
# other class within a few epochs but stayed near chance on that pair for 12 epochs.
VERSION = 3


def reversed_label(label: int) -> int:
    """The class whose clips are `label`'s clips played backwards."""
    return label ^ 1


@dataclasses.dataclass(frozen=True)
class Scene:
    """Everything needed to render one clip; per-frame arrays have length `frames`."""

    x: np.ndarray
    y: np.ndarray
    scale: np.ndarray
    angle: np.ndarray
    opacity: np.ndarray
    polygon: np.ndarray  # (vertices, 2), unit-size outline centred on 0.
    color: np.ndarray  # (3,) in [0, 1].
    background: np.ndarray  # (size, size, 3) in [0, 1].
    noise: np.ndarray  # (frames, size, size, 3), per-frame sensor noise.

    def reversed(self) -> Scene:
        """The same scene played backwards."""
        return dataclasses.replace(
            self,
            x=self.x[::-1],
            y=self.y[::-1],
            scale=self.scale[::-1],
            angle=self.angle[::-1],
            opacity=self.opacity[::-1],
            noise=self.noise[::-1],
        )


def _check(label, num_frames, size):
    if not 0 <= label < len(CLASS_NAMES):
        raise ValueError(f"`label` must be in [0, {len(CLASS_NAMES)}). Received: label={label}")
    if num_frames < 2:
        raise ValueError(f"`num_frames` must be at least 2. Received: num_frames={num_frames}")
    if size < 16 or size % 2:
        raise ValueError(f"`size` must be an even number >= 16. Received: size={size}")


def _ramp(rng, low, high, num_frames, drift=0.0):
    """A linear path between two values, plus a small drift of random sign."""
    jitter = rng.uniform(-drift, drift, size=2)
    return np.linspace(low + jitter[0], high + jitter[1], num_frames)


def _polygon(rng):
    """A 5-7 vertex star-shaped polygon with one long spike (an asymmetric pointer)."""
    n = int(rng.integers(5, 8))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False) * 0.6 + angles * 0.4
    radii = rng.uniform(0.3, 0.5, n)
    radii[0] = 1.0
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _background(rng, size, dark):
    low, high = (0.0, 0.45) if dark else (0.55, 1.0)
    colors = rng.uniform(low, high, size=(2, 3))
    theta = rng.uniform(0, 2 * np.pi)
    grid = np.linspace(0, 1, size)
    ramp = np.cos(theta) * grid[None, :] + np.sin(theta) * grid[:, None]
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-9)
    image = colors[0] + (colors[1] - colors[0]) * ramp[..., None]
    coarse = rng.normal(0, 0.06, size=(5, 5, 3))
    index = np.linspace(0, 4, size)
    lo, frac = np.floor(index).astype(int), index - np.floor(index)
    hi = np.minimum(lo + 1, 4)
    rows = coarse[lo] * (1 - frac)[:, None, None] + coarse[hi] * frac[:, None, None]
    texture = rows[:, lo] * (1 - frac)[None, :, None] + rows[:, hi] * frac[None, :, None]
    return np.clip(image + texture, 0, 1)


def sample_scene(label: int, seed, num_frames: int = 16, size: int = 64) -> Scene:
    """Draws the scene of one clip of class `label`, deterministically from `seed`.

    The random draws do not depend on which class of a family is asked for: the
    second class of a pair gets the first class's scene reversed.

    Args:
        label: class index into `CLASS_NAMES`.
        seed: anything `numpy.random.default_rng` accepts, e.g. `(split, index)`.
        num_frames: frames in the clip.
        size: frame height and width (even, for H.264's 4:2:0 chroma).
    """
    _check(label, num_frames, size)
    family = FAMILIES[label // 2]
    rng = np.random.default_rng([label // 2, *np.atleast_1d(seed).tolist()])
    dark = bool(rng.integers(2))
    background = _background(rng, size, dark)
    low, high = (0.6, 1.0) if dark else (0.0, 0.4)
    color = rng.uniform(low, high, 3)
    radius = rng.uniform(0.16, 0.22)
    cx, cy = rng.uniform(0.35, 0.65, 2)
    a0 = rng.uniform(0, 2 * np.pi)
    # Decreasing path first, so that pair member 0 (left, up (image y points down),
    # shrink, disappear) is the forward scene and member 1 its reversal.
    travel = rng.uniform(0.22, 0.4)
    if family == "horizontal":
        x = _ramp(rng, cx + travel / 2, cx - travel / 2, num_frames, 0.02)
    else:
        x = _ramp(rng, cx, cx, num_frames, 0.03)
    if family == "vertical":
        y = _ramp(rng, cy + travel / 2, cy - travel / 2, num_frames, 0.02)
    else:
        y = _ramp(rng, cy, cy, num_frames, 0.03)
    angle = _ramp(rng, a0, a0, num_frames, 0.15)
    if family == "scale":
        ratio = rng.uniform(1.8, 2.6)
        big = rng.uniform(1.15, 1.5)
        scale = _ramp(rng, big, big / ratio, num_frames, 0.03)
    else:
        scale = _ramp(rng, 1.0, 1.0, num_frames, 0.08)
    if family == "fade":
        opacity = _ramp(rng, rng.uniform(0.9, 1.0), rng.uniform(0.0, 0.1), num_frames)
    else:
        opacity = np.full(num_frames, rng.uniform(0.75, 1.0))
    scene = Scene(
        x=x,
        y=y,
        scale=scale * radius,
        angle=angle,
        opacity=opacity,
        polygon=_polygon(rng),
        color=color,
        background=background,
        noise=rng.normal(0, 0.015, size=(num_frames, size, size, 3)),
    )
    return scene.reversed() if label % 2 else scene


def _inside(points, polygon):
    """Even-odd rule: which `points` (n, 2) lie inside `polygon` (m, 2)."""
    inside = np.zeros(len(points), bool)
    px, py = points[:, 0], points[:, 1]
    for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        crosses = (y0 > py) != (y1 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (px < x_at)
    return inside


def _coverage(outline, coords):
    """Fraction of each pixel inside `outline`, from `_SUPERSAMPLE`^2 samples per pixel.

    Only the samples within the outline's bounding box (plus a sample's margin)
    are tested: the others are outside, and skipping them makes rendering about
    three times faster.
    """
    fine = len(coords)
    margin = 1 / fine
    (x_low, y_low), (x_high, y_high) = outline.min(axis=0) - margin, outline.max(axis=0) + margin
    columns = slice(*np.searchsorted(coords, [x_low, x_high]))
    rows = slice(*np.searchsorted(coords, [y_low, y_high]))
    xs, ys = np.meshgrid(coords[columns], coords[rows])
    mask = np.zeros((fine, fine), bool)
    mask[rows, columns] = _inside(np.stack([xs.ravel(), ys.ravel()], axis=1), outline).reshape(
        xs.shape
    )
    size = fine // _SUPERSAMPLE
    return mask.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE).sum(axis=(1, 3)) / _SUPERSAMPLE**2


def _composite(scene: Scene, backdrops) -> np.ndarray:
    """`scene`'s polygon drawn over each of `backdrops` (float frames in [0, 1]), unclipped."""
    size = scene.background.shape[0]
    fine = size * _SUPERSAMPLE
    coords = (np.arange(fine) + 0.5) / fine
    frames = []
    for t, backdrop in enumerate(backdrops):
        c, s = np.cos(scene.angle[t]), np.sin(scene.angle[t])
        outline = scene.polygon @ np.array([[c, s], [-s, c]]) * scene.scale[t]
        outline = outline + [scene.x[t], scene.y[t]]
        alpha = _coverage(outline, coords)[..., None] * scene.opacity[t]
        frames.append(backdrop * (1 - alpha) + scene.color * alpha)
    return np.stack(frames)


def _to_uint8(frames) -> np.ndarray:
    return np.round(np.clip(frames, 0, 1) * 255).astype(np.uint8)


def render(scene: Scene) -> np.ndarray:
    """Renders `scene` to `(frames, size, size, 3)` uint8 RGB frames."""
    frames = _composite(scene, [scene.background] * len(scene.x))
    return _to_uint8(frames + scene.noise)


def make_clip(label: int, seed, num_frames: int = 16, size: int = 64) -> np.ndarray:
    """One clip of class `label` as `(num_frames, size, size, 3)` uint8 frames."""
    return render(sample_scene(label, seed, num_frames, size))


def multilabel_labels(seed) -> tuple[int, int]:
    """The two classes of a multi-label video: from two different families, directions random."""
    rng = np.random.default_rng([len(FAMILIES), *np.atleast_1d(seed).tolist()])
    families = rng.choice(len(FAMILIES), size=2, replace=False)
    return tuple(int(2 * f + d) for f, d in zip(families, rng.integers(2, size=2), strict=True))


def make_multilabel_clip(labels, seed, num_frames: int = 16, size: int = 64) -> np.ndarray:
    """A clip of two polygons, the first of class `labels[0]`, the second of `labels[1]`.

    Each polygon is a scene of `sample_scene` at 0.9 of its size, its path
    centred on one side of the frame (which side is random): the
    second is drawn over the first's frames with a colour that stands out
    from the first's background. Played backwards, it is the clip of the
    paired classes (`reversed_label`) with the same seed.

    Args:
        labels: two class indices into `CLASS_NAMES`, of different families.
        seed: anything `numpy.random.default_rng` accepts.
        num_frames: frames in the clip.
        size: frame height and width (even).

    Returns:
        `(num_frames, size, size, 3)` uint8 frames.
    """
    first, second = (int(label) for label in labels)
    _check(first, num_frames, size)
    _check(second, num_frames, size)
    if first // 2 == second // 2:
        raise ValueError(
            f"`labels` must be of two different families. Received: labels={tuple(labels)}"
        )
    seed = np.atleast_1d(seed).tolist()
    rng = np.random.default_rng([len(FAMILIES) + 1, *seed])
    side = rng.choice([-0.22, 0.22])
    scenes = []
    for k, (label, offset) in enumerate(((first, side), (second, -side))):
        scene = sample_scene(label, [*seed, k], num_frames, size)
        # Each path centred on its side (its mean is the same played backwards), so a
        # horizontal move stays in its half of the frame.
        x = scene.x - scene.x.mean() + 0.5 + offset
        scenes.append(dataclasses.replace(scene, x=x, scale=scene.scale * 0.9))
    below, above = scenes
    dark = below.background.mean() < 0.5
    low, high = (0.65, 1.0) if dark else (0.0, 0.35)
    # The same draw for a class and its pair: the reversed clip stays the pair's clip.
    above = dataclasses.replace(above, color=rng.uniform(low, high, 3))
    frames = _composite(above, _composite(below, [below.background] * num_frames))
    return _to_uint8(frames + below.noise)


def read_manifest(directory: str | os.PathLike) -> dict | None:
    """The arguments `directory` was written with by `write_dataset`, or `None` if it was not."""
    manifest = os.path.join(os.fspath(directory), _MANIFEST)
    if not os.path.exists(manifest):
        return None
    with open(manifest) as f:
        return json.load(f)


def _existing(directory: str, config: dict) -> bool:
    """Whether `directory` holds the dataset `config` describes; raises if it holds another."""
    found = read_manifest(directory)
    if found is None:
        return False
    if found == config:
        return True
    raise ValueError(
        f"{directory!r} holds a synthetic dataset made with other arguments: {found}; "
        f"asked for {config}. Use another directory or delete it."
    )


def _finish(directory: str, config: dict) -> None:
    """Writes the manifest: last, after the videos reach the disk (one sync for all)."""
    # An interrupted run is then redone rather than trusted.
    if hasattr(os, "sync"):
        os.sync()
    with atomic.atomic_file(os.path.join(directory, _MANIFEST)) as f:
        json.dump(config, f)


def write_dataset(
    directory: str | os.PathLike,
    *,
    train_per_class: int = 375,
    validation_per_class: int = 125,
    num_frames: int = 16,
    size: int = 64,
    seed: int = 0,
    fps: float = 15.0,
    verbose: bool = True,
) -> dict[str, str]:
    """Writes the synthetic dataset as `directory/<split>/<class_name>/<index>.mp4`.

    Nothing is rewritten when `directory` already holds a dataset made with the
    same arguments (a manifest records them); a directory holding a different
    one is an error rather than silently mixed.

    Args:
        directory: where to write.
        train_per_class: videos per class in the `train` split.
        validation_per_class: videos per class in the `validation` split.
        num_frames: frames per video.
        size: frame height and width in pixels (even).
        seed: the dataset seed; splits use disjoint seeds derived from it.
        fps: the frame rate stored in the files.
        verbose: show a progress bar while videos are written (a minute or two
            for the default 4000).

    Returns:
        `{"train": path, "validation": path}`, the class-per-folder roots.

    Raises:
        ValueError: if `directory` holds a dataset made with other arguments.
    """
    config = dict(
        version=VERSION,
        train_per_class=train_per_class,
        validation_per_class=validation_per_class,
        num_frames=num_frames,
        size=size,
        seed=seed,
        fps=fps,
        classes=list(CLASS_NAMES),
    )
    _check(0, num_frames, size)
    directory = os.fspath(directory)
    roots = {split: os.path.join(directory, split) for split in ("train", "validation")}
    if _existing(directory, config):
        return roots
    counts = {"train": train_per_class, "validation": validation_per_class}
    total = len(CLASS_NAMES) * sum(counts.values())
    title = f"Writing the built-in dataset ({total} videos) to {directory}"
    bar = progress_bar(total, "video", enabled=verbose, title=title)

    def write(split, label, index):
        clip = make_clip(label, (seed, SPLITS[split], index, label % 2), num_frames, size)
        # Each video appears whole: a folder read before the manifest exists never
        # meets a torn file.
        path = os.path.join(roots[split], CLASS_NAMES[label], f"{index:05d}.mp4")
        with atomic.atomic_path(path, durable=False, keep_extension=True) as temporary:
            encode.write_video(temporary, clip, fps, options=_X264)

    videos = []
    for split, root in roots.items():
        for label, name in enumerate(CLASS_NAMES):
            os.makedirs(os.path.join(root, name), exist_ok=True)
            videos += [(split, label, index) for index in range(counts[split])]
    # Rendering (numpy) and encoding (FFmpeg) release the GIL for much of their time.
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        for written, _ in enumerate(pool.map(lambda video: write(*video), videos), 1):
            bar.update(written)
    bar.finish()
    _finish(directory, config)
    return roots


ANNOTATIONS = {split: f"{split}.csv" for split in SPLITS}


def write_multilabel_dataset(
    directory: str | os.PathLike,
    *,
    train_videos: int = 1000,
    validation_videos: int = 256,
    num_frames: int = 16,
    size: int = 64,
    seed: int = 0,
    fps: float = 15.0,
    verbose: bool = True,
) -> dict[str, str]:
    """Writes the multi-label variant: `directory/<split>/<index>.mp4` and `directory/<split>.csv`.

    Each video has two polygons with their own classes (`make_multilabel_clip`);
    the annotation file of a split lists `path,labels` rows (`train/00000.mp4,grow;move_up`),
    the form `kvid.data.read_annotations(..., multi_label=True)` reads. As in
    `write_dataset`, a manifest records the arguments and a directory holding
    another dataset is an error.

    Args:
        directory: where to write.
        train_videos: videos in the `train` split (each class in about a quarter).
        validation_videos: videos in the `validation` split.
        num_frames: frames per video.
        size: frame height and width in pixels (even).
        seed: the dataset seed; splits use disjoint seeds derived from it.
        fps: the frame rate stored in the files.
        verbose: show a progress bar while videos are written.

    Returns:
        `{"train": csv path, "validation": csv path}`.

    Raises:
        ValueError: if `directory` holds a dataset made with other arguments.
    """
    config = dict(
        version=VERSION,
        variant="multi_label",
        train_videos=train_videos,
        validation_videos=validation_videos,
        num_frames=num_frames,
        size=size,
        seed=seed,
        fps=fps,
        classes=list(CLASS_NAMES),
    )
    _check(0, num_frames, size)
    directory = os.fspath(directory)
    files = {split: os.path.join(directory, name) for split, name in ANNOTATIONS.items()}
    if _existing(directory, config):
        return files
    counts = {"train": train_videos, "validation": validation_videos}
    title = (
        f"Writing the built-in multi-label dataset ({sum(counts.values())} videos) to {directory}"
    )
    bar = progress_bar(sum(counts.values()), "video", enabled=verbose, title=title)

    def write(split, index):
        video_seed = (seed, SPLITS[split], index)
        labels = multilabel_labels(video_seed)
        clip = make_multilabel_clip(labels, video_seed, num_frames, size)
        path = os.path.join(directory, split, f"{index:05d}.mp4")
        with atomic.atomic_path(path, durable=False, keep_extension=True) as temporary:
            encode.write_video(temporary, clip, fps, options=_X264)
        return f"{split}/{index:05d}.mp4", ";".join(CLASS_NAMES[label] for label in labels)

    videos = [(split, index) for split, count in counts.items() for index in range(count)]
    for split in counts:
        os.makedirs(os.path.join(directory, split), exist_ok=True)
    rows = {split: [] for split in counts}
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        for written, ((split, _), row) in enumerate(
            zip(videos, pool.map(lambda video: write(*video), videos), strict=True), 1
        ):
            rows[split].append(row)
            bar.update(written)
    bar.finish()
    for split, path in files.items():
        with atomic.atomic_file(path) as f:
            f.write("path,labels\n" + "".join(f"{p},{labels}\n" for p, labels in rows[split]))
    _finish(directory, config)
    return files
