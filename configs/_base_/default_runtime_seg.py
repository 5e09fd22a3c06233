_base_ = ['mmseg::_base_/default_runtime.py']

custom_imports = dict(imports=['mmimb'], allow_failed_imports=False)
# Resolves class_freq='auto' from the training set before the model is built.
runner_type = 'MMImbRunner'
env_cfg = dict(cudnn_benchmark=False)
