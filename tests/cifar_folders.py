"""A CIFAR-10-like folder tree for training tests: the layout of the JPEG
release (``<root>/{train,test}/<class>/<index>.jpg``), each class a
different colour, so that a few iterations can learn something."""
from pathlib import Path
from typing import List, Sequence

import cv2
import numpy as np

CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
           'horse', 'ship', 'truck')


def write_cifar_folders(root: Path, train_per_class: int = 8,
                        test_per_class: int = 2,
                        classes: Sequence[str] = CLASSES) -> Path:
    rng = np.random.default_rng(0)
    for split, per_class in (('train', train_per_class),
                             ('test', test_per_class)):
        for c, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                img = rng.integers(0, 60, (32, 32, 3)) + (19 * c) % 190
                cv2.imwrite(str(folder / f'{i:04d}.jpg'), img.astype(np.uint8))
    return root


def data_root_options(root: Path) -> List[str]:
    """``--cfg-options`` pointing the CIFAR-10(-LT) configs at ``root``."""
    return [
        f'train_dataloader.dataset.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
    ]
