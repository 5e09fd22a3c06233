"""The class of every sample of a single-label classification dataset,
read without loading images."""
import numpy as np


def _labels_per_sample(dataset) -> list:
    if hasattr(dataset, 'get_gt_labels'):
        return list(dataset.get_gt_labels())
    try:
        return [dataset.get_cat_ids(i) for i in range(len(dataset))]
    except (AttributeError, NotImplementedError):
        pass
    try:
        # Wrappers that keep only get_data_info (index subsets).
        return [dataset.get_data_info(i)['gt_label']
                for i in range(len(dataset))]
    except (AttributeError, KeyError, TypeError):
        return None


def single_labels(dataset, purpose: str) -> np.ndarray:
    """The class id of every sample, shape (N,), int64.

    Reads ``get_gt_labels()``, else ``get_cat_ids(i)``, else
    ``get_data_info(i)['gt_label']``, so no image is decoded.

    Args:
        dataset: An mmengine-style classification dataset (or wrapper).
        purpose: What needs the labels, for error messages (e.g.
            ``'LongTailedDataset'``).

    Raises:
        ValueError: For a dataset without sample labels (segmentation),
            naming the dataset type, or for a sample with several labels (or
            none), naming the sample and its labels.
    """
    name = type(dataset).__name__
    found = _labels_per_sample(dataset)
    if found is None:
        raise ValueError(
            f'{purpose} needs a classification dataset, but {name} has no '
            'sample labels (get_gt_labels, get_cat_ids or gt_label in '
            'get_data_info)')
    labels = [np.atleast_1d(np.asarray(x)) for x in found]
    for idx, x in enumerate(labels):
        if x.size != 1:
            raise ValueError(
                f'{purpose} needs single-label data, but sample {idx} of '
                f'{name} has labels {x.tolist()}')
    if not labels:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(labels).astype(np.int64)
