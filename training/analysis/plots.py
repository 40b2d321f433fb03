"""The report's figures, as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def _save(figure: Figure, path: Path) -> str:
    """Lay out, write as PNG and close ``figure``; return the file's name."""
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path.name


def decision_histogram(counts: dict[int, int], path: Path, title: str) -> str:
    """How many samples decided at each timestep, as a bar chart.

    Args:
        counts: Samples by decision timestep.
        path: The PNG file to write.
        title: The figure's title.

    Returns:
        The file's name.
    """
    figure, axis = plt.subplots(figsize=(4.5, 3.2))
    steps = sorted(int(t) for t in counts)
    axis.bar(steps, [counts[t] for t in steps], color="#3b6ea5")
    axis.set(xlabel="decision timestep", ylabel="samples", title=title, xticks=steps)
    return _save(figure, path)


def difficulty_scatter(
    difficulty: np.ndarray, timesteps: np.ndarray, correct: np.ndarray, path: Path, title: str, seed: int = 0
) -> str:
    """Fig. 5: first-spike time against sample difficulty (the time-mean output's CE loss).

    Args:
        difficulty: Per sample, the CE loss of the time-mean output.
        timesteps: Per sample, the decision timestep.
        correct: Per sample, whether the decision was right (bool).
        path: The PNG file to write.
        title: The figure's title.
        seed: Seeds the vertical jitter that keeps equal timesteps apart.

    Returns:
        The file's name.
    """
    jitter = np.random.default_rng(seed).uniform(-0.15, 0.15, len(timesteps))
    figure, axis = plt.subplots(figsize=(5, 3.5))
    for mask, colour, label in ((correct, "#3b6ea5", "correct"), (~correct, "#c0392b", "incorrect")):
        axis.scatter(difficulty[mask], timesteps[mask] + jitter[mask], s=8, alpha=0.6, c=colour, label=label)
    axis.set(
        xlabel="difficulty (cross-entropy of the time-mean output)",
        ylabel="decision timestep",
        title=title,
        yticks=sorted(set(timesteps.tolist())),
    )
    axis.legend(loc="lower right")
    return _save(figure, path)


def similarity_matrices(matrices: dict[str, np.ndarray], path: Path) -> str:
    """Fig. 3: temporal similarity matrices (18), one panel per (model, layer).

    Args:
        matrices: [T, T] matrices by panel title.
        path: The PNG file to write.

    Returns:
        The file's name.
    """
    figure, axes = plt.subplots(1, len(matrices), figsize=(3.2 * len(matrices), 3.2), squeeze=False)
    for axis, (title, matrix) in zip(axes[0], matrices.items()):
        image = axis.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
        ticks = range(len(matrix))
        axis.set(
            title=title,
            xticks=ticks,
            yticks=ticks,
            xticklabels=[t + 1 for t in ticks],
            yticklabels=[t + 1 for t in ticks],
            xlabel="t",
            ylabel="t",
        )
        for i in ticks:
            for j in ticks:
                axis.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7, color="white")
    figure.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path.name


def mce_vs_severity(curves: dict[str, list[float]], path: Path, title: str) -> str:
    """Fig. 2a: mean corruption error against severity.

    Args:
        curves: Per model, the mean error at severities 1..5 (fractions).
        path: The PNG file to write.
        title: The figure's title.

    Returns:
        The file's name.
    """
    figure, axis = plt.subplots(figsize=(4.5, 3.2))
    for (name, errors), colour in zip(curves.items(), ("#3b6ea5", "#c0392b", "#27ae60")):
        axis.plot(range(1, len(errors) + 1), [100 * e for e in errors], marker="o", label=name, color=colour)
    axis.set(xlabel="severity", ylabel="mCE (%)", title=title, xticks=range(1, 6))
    axis.legend()
    return _save(figure, path)


def time_scan(
    timesteps: list[int], accuracy: list[float], mean_steps: list[float], path: Path, title: str
) -> str:
    """Fig. 6: accuracy and mean inference timesteps for several maximum T.

    Args:
        timesteps: The maximum T of each model.
        accuracy: Each model's accuracy (a fraction).
        mean_steps: Each model's mean inference timesteps.
        path: The PNG file to write.
        title: The figure's title.

    Returns:
        The file's name.
    """
    figure, axis = plt.subplots(figsize=(4.5, 3.2))
    axis.plot(timesteps, [100 * a for a in accuracy], marker="o", color="#3b6ea5")
    axis.set(xlabel="maximum timesteps T", ylabel="accuracy (%)", title=title, xticks=timesteps)
    twin = axis.twinx()
    twin.scatter(timesteps, mean_steps, marker="*", s=90, color="#c0392b")
    twin.set(ylabel="mean inference timesteps", ylim=(0, max(timesteps) + 0.5))
    return _save(figure, path)
