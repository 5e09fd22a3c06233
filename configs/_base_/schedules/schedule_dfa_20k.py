# 20k iterations of AdamW with a linear warm-up and a linear decay (our
# reading: the DFA paper does not publish its schedule), checkpoints and
# validation every 2k iterations, the best by mDice kept.
_base_ = ['mmseg::_base_/schedules/schedule_20k.py']
optim_wrapper = dict(
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=1e-4,
        betas=(0.9, 0.999),
        weight_decay=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=500),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=500,
         end=20000),
]
default_hooks = dict(
    checkpoint=dict(max_keep_ckpts=2, save_best='mDice', rule='greater'))
