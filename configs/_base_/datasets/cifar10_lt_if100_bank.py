# CIFAR-10-LT IF100 (cifar10_lt_if100.py: the same subset, test set and
# evaluator) with the data on the device: each split is decoded once into a
# uint8 tensor (ImageBankDataset) that ImageBankHook puts on the GPU, the
# loaders yield sample indices, and ImageBankClsDataPreprocessor gathers each
# batch there and does the pad-4 random crop and the horizontal flip of the
# CPU pipeline (same distribution; tests/test_image_bank.py). For small
# images whose CPU pipeline would bound the training step. A config selects
# it by listing this file instead of cifar10_lt_if100.py among its bases;
# tools/repro/gpu_pack.py swaps it into configs/ccar/ (docs/gpu_pack.md).
_base_ = ['./cifar10_lt_if100.py']
# Items are an index and a label: decoding happens once, and a worker would
# cost more (pickling the samples) than it saves.
bank_loader = dict(
    num_workers=0,
    persistent_workers=False,
    collate_fn=dict(type='default_collate'))
bank = dict(_delete_=True, type='ImageBankDataset')
train_dataloader = dict(
    bank_loader,
    dataset=dict(bank, dataset={{_base_.train_dataloader.dataset}}))
val_dataloader = dict(
    bank_loader, dataset=dict(bank, dataset={{_base_.val_dataloader.dataset}}))
test_dataloader = val_dataloader
data_preprocessor = dict(
    type='ImageBankClsDataPreprocessor', crop_padding=4, flip_prob=0.5)
custom_hooks = [dict(type='ImageBankHook')]
