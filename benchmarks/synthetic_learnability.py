"""Is the synthetic data learnable but not trivial? A tiny CNN classifies object crops.

Crops of every evaluated object (box enlarged 1.5x, square, resized to 24x24, like a detector's
RoI) from 120 training scenes (seed 100) and 30 test scenes (seed 200) at 640x480; a 3-layer
CNN trains 30 epochs with Adam on CPU. Prints test accuracy per epoch, the confusion matrix and
the majority-class baseline.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/synthetic_learnability.py``
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import torch

from ssabnet.data.synthetic import render_scene


def object_crops(seed: int, num_images: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(crops float[N, 3, 24, 24] in [0, 1], labels int64[N])`` of evaluated objects."""
    crops, labels = [], []
    for index in range(num_images):
        image, ann = render_scene(np.random.default_rng([seed, index, 1]), 640, 480)
        for (x1, y1, x2, y2), category in zip(
            ann["boxes"].astype(int), ann["category"], strict=True
        ):
            if category == 11:
                continue
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            side = 1.5 * max(x2 - x1, y2 - y1)
            x0, y0 = int(cx - side / 2), int(cy - side / 2)
            crop = image[max(y0, 0) : int(cy + side / 2) + 1, max(x0, 0) : int(cx + side / 2) + 1]
            if crop.size == 0:
                continue
            crops.append(cv2.resize(crop, (24, 24), interpolation=cv2.INTER_AREA))
            labels.append(category - 1)
    x = torch.tensor(np.stack(crops)).permute(0, 3, 1, 2).float() / 255
    return x, torch.tensor(labels)


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    start = time.perf_counter()
    x_train, y_train = object_crops(100, 120)
    x_test, y_test = object_crops(200, 30)
    print(f"{len(x_train)} training crops, {len(x_test)} test crops")
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(64, 64, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 10),
    )
    optimizer = torch.optim.Adam(net.parameters(), 2e-3)
    generator = torch.Generator().manual_seed(0)
    for epoch in range(30):
        order = torch.randperm(len(x_train), generator=generator)
        for i in range(0, len(x_train), 128):
            batch = order[i : i + 128]
            loss = torch.nn.functional.cross_entropy(net(x_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            predicted = net(x_test).argmax(1)
        accuracy = (predicted == y_test).float().mean().item()
        print(f"epoch {epoch + 1:2d}  test accuracy {accuracy:.3f}")
    confusion = np.zeros((10, 10), int)
    for truth, guess in zip(y_test.tolist(), predicted.tolist(), strict=True):
        confusion[truth, guess] += 1
    print(confusion)
    print("recall per class", np.round(confusion.diagonal() / confusion.sum(1).clip(1), 2))
    majority = (y_test == torch.mode(y_train).values).float().mean().item()
    print(f"majority-class baseline {majority:.3f}; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
