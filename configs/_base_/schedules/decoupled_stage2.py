# The second stage of decoupled training (Kang et al., ICLR 2020; their
# config/ImageNet_LT/cls_crt.yaml and cls_lws.yaml), as named pieces that
# the cRT and LWS configs apply on top of a first-stage config (which keeps
# its optimizer): the feature extractor frozen (FrozenBackboneClassifier),
# class-balanced batches (their ClassAwareSampler with 4 samples per class
# visit and an epoch of n_max x C draws) and a cosine decay to 0 over the
# stage's epochs, 10 for cRT and 5 for LWS.
stage2_sampler = dict(
    _delete_=True, type='ClassBalancedSampler', num_samples_cls=4)
crt_epochs = 10
lws_epochs = 5
crt_param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=crt_epochs, eta_min=0,
         by_epoch=True, begin=0, end=crt_epochs)
]
lws_param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=lws_epochs, eta_min=0,
         by_epoch=True, begin=0, end=lws_epochs)
]
crt_train_cfg = dict(by_epoch=True, max_epochs=crt_epochs, val_interval=1)
lws_train_cfg = dict(by_epoch=True, max_epochs=lws_epochs, val_interval=1)
