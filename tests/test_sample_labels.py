"""One reader of per-sample labels for the long-tailed wrapper, the class
statistics and the class-balanced gradient probe."""
import numpy as np
import pytest
import torch

from mmimb.datasets import LongTailedDataset, class_frequencies
from mmimb.datasets.sample_labels import single_labels
from mmimb.engine.hooks import GradientConflictHook


class Labelled:
    """A dataset that exposes its labels one way only."""

    metainfo = dict(classes=('a', 'b', 'c'))

    def __init__(self, labels, how):
        self.labels, self.how = list(labels), how
        if how == 'gt_labels':
            self.get_gt_labels = lambda: list(self.labels)
        elif how == 'cat_ids':
            self.get_cat_ids = lambda i: list(np.atleast_1d(self.labels[i]))

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return i

    def get_data_info(self, i):
        info = dict(img_path=f'{i}.jpg')
        if self.how == 'data_info':
            info['gt_label'] = self.labels[i]
        return info


LABELS = [2, 0, 1, 1, 2, 2]


@pytest.mark.parametrize('how', ['gt_labels', 'cat_ids', 'data_info'])
def test_every_way_of_exposing_labels_reads_the_same(how):
    got = single_labels(Labelled(LABELS, how), 'test')
    assert got.dtype == np.int64 and got.tolist() == LABELS
    # The same reader serves the three users.
    counts = class_frequencies(Labelled(LABELS, how)).counts
    assert list(counts) == [1, 2, 3]
    hook = GradientConflictHook(probe='balanced', samples_per_class=1)
    loader = torch.utils.data.DataLoader(Labelled(LABELS, how),
                                         batch_size=3, collate_fn=list)
    [batch] = hook._draw_balanced(loader)
    assert sorted(LABELS[i] for i in batch) == [0, 1, 2]


@pytest.mark.parametrize('how', ['gt_labels', 'cat_ids', 'data_info'])
def test_multi_label_samples_are_named_by_every_user(how):
    labels = [[0, 1], [1, 2], [2, 0]]
    users = [
        lambda d: LongTailedDataset(d, imbalance_factor=2),
        class_frequencies,
        lambda d: GradientConflictHook(probe='balanced')._draw_balanced(
            torch.utils.data.DataLoader(d, batch_size=2, collate_fn=list)),
    ]
    for use in users:
        with pytest.raises(ValueError,
                           match=r'single-label.*sample 0 .*\[0, 1\]'):
            use(Labelled(labels, how))


def test_dataset_without_labels_is_named():
    with pytest.raises(ValueError, match='needs a classification dataset, '
                       'but Labelled has no sample labels'):
        single_labels(Labelled(LABELS, 'none'), 'test')
