_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['mmimb'], allow_failed_imports=False)
# Resolves class_freq='auto' from the training set before the model is built.
runner_type = 'MMImbRunner'
