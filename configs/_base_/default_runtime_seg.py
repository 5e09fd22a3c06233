_base_ = ['mmseg::_base_/default_runtime.py']

custom_imports = dict(imports=['mmimb'], allow_failed_imports=False)
# Resolves class_freq='auto' from the training set before the model is built.
runner_type = 'MMImbRunner'
env_cfg = dict(cudnn_benchmark=False)
# mmseg names its visualizer 'visualizer', so a second runner in one process
# would write into the first run's folder; without a name, each runner's
# visualizer takes the run's own (timestamped) name.
visualizer = dict(
    _delete_=True,
    type='SegLocalVisualizer',
    vis_backends=[dict(type='LocalVisBackend')])
