# The crossed generated tissue (synthetic_tissue_crossed.py) with every class
# at the same pixel frequency, the generator otherwise unchanged: the
# calibration set, on which a class's IoU depends on its difficulty alone
# (docs/dfa.md, "Calibration").
_base_ = ['./synthetic_tissue_crossed.py']
class_specs = [dict(spec, freq=1 / 6) for spec in _base_.class_specs]
data = dict(img_size=_base_.img_size, class_specs=class_specs)
train_dataloader = dict(dataset=data)
val_dataloader = dict(dataset=data)
test_dataloader = dict(dataset=data)
