_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['mmimb'], allow_failed_imports=False)
# Resolves class_freq='auto' from the training set before the model is built.
runner_type = 'MMImbRunner'
# Besides the last checkpoint, the best by top-1 of LongTailMetric, the
# evaluator of mmimb's classification configs (a config with another one
# names its metric here, or None). The long-tailed literature reports the
# best epoch on the test set (LDAM-DRW's best_acc1; CIFAR-LT has no
# validation split); mmimb's tables report the last checkpoint.
default_hooks = dict(checkpoint=dict(save_best='lt/top1', rule='greater'))
