# LDAM-DRW (Cao et al., NeurIPS 2019) as the authors' cifar_train.py
# --loss_type LDAM --train_rule DRW: a cosine classifier (NormedLinear,
# use_norm=True), the LDAM loss (largest margin 0.5, scale 30) and, from
# epoch 160 of 200, class-balanced weights with beta 0.9999 in PyTorch's
# weighted mean (F.cross_entropy(weight=...): divided by the sum of the
# weights). A method config sets head=dict(type=ldam_head_type,
# loss=ldam_drw_loss) (or loss=drw_loss for cross-entropy with DRW) and
# custom_hooks=drw_hooks on a cross-entropy config.
ldam_head_type = 'CosineLinearClsHead'
drw_loss = dict(
    _delete_=True,
    type='ClassBalancedLoss',
    loss=dict(type='CrossEntropyLoss'),
    class_counts='auto',
    beta=0.9999,
    normalize='weight_sum')
ldam_drw_loss = dict(
    drw_loss,
    loss=dict(type='LDAMLoss', class_freq='auto', max_margin=0.5, scale=30.0))
drw_hooks = [dict(type='DRWHook', start_epoch=160)]
