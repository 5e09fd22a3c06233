"""Put the decoded images of ImageBankDataset loaders on the model's
device."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class ImageBankHook(Hook):
    """Hand the images of every :class:`~mmimb.datasets.ImageBankDataset`
    that a loop reads to the model's
    :class:`~mmimb.models.ImageBankClsDataPreprocessor`, which keeps them
    on its device: the training set's before training, the validation and
    test sets' before each validation or test (a bank already on the
    device is not copied again). Loaders over other datasets are left
    alone; their batches reach the preprocessor as images.

    Example::

        custom_hooks = [dict(type='ImageBankHook')]

    Raises:
        TypeError: If an ImageBankDataset is read but the model's data
            preprocessor cannot hold a bank.
    """

    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        self._bind(runner, runner.train_dataloader, 'train')

    def before_val(self, runner) -> None:
        self._bind(runner, runner.val_dataloader, 'eval')

    def before_test(self, runner) -> None:
        self._bind(runner, runner.test_dataloader, 'eval')

    @staticmethod
    def _bind(runner, dataloader, mode: str) -> None:
        from mmimb.datasets import ImageBankDataset
        dataset = getattr(dataloader, 'dataset', None)
        if not isinstance(dataset, ImageBankDataset):
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        preprocessor = model.data_preprocessor
        if not hasattr(preprocessor, 'set_bank'):
            raise TypeError(
                f'ImageBankHook: the {mode} data are an ImageBankDataset, '
                f'whose items are sample indices, but the model\'s data '
                f'preprocessor is {type(preprocessor).__name__}; use '
                "data_preprocessor=dict(type='ImageBankClsDataPreprocessor'"
                ', ...)')
        preprocessor.set_bank(mode, dataset.images)
