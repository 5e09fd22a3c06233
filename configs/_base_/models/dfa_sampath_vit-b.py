# SAM-Path with Dynamic Focal Attention as the DFA authors train it (their
# `focal` model; DFA reference code at commit aba5b00c, built on SAM-Path):
# the SAM ViT-B image encoder frozen (no gradients, eval mode, run under
# no_grad), SAM's no-mask prompt embedding added to the image embedding, and
# SAM's mask decoder in SAM-Path's token layout: SAM's IoU token and C + 2
# mask tokens (SAM's single-mask token, the ignored outside-ROI class, the C
# classes), one hypernetwork MLP per mask started from SAM's first one, an
# IoU head, and SAM-Path's loss: focal 0.25 + Dice 0.75 + IoU MSE 0.0625.
# The learned bias (init 0.5 * (p - mean p), p the focal prior) sits on the
# image-to-token attention of the class tokens. Weights: the converted SAM
# checkpoint, as in dfa_sam_vit-b.py (README, "Pretrained weights").
_base_ = ['./dfa_sam_vit-b.py']
model = dict(
    type='FrozenBackboneEncoderDecoder',
    decode_head=dict(
        token_layout='sam',
        no_mask_embed=True,
        iou_head_channels=256,
        loss_decode=dict(
            _delete_=True,
            type='SAMPathLoss',
            focal_weight=0.25,
            dice_weight=0.75,
            iou_weight=0.0625)))
# The bias's parameter group as the authors optimise it: learning rate x20
# held constant (no warm-up, no decay), no weight decay, its gradient norm
# clipped to 0.5 before each step (GroupStepOptimWrapperConstructor reads
# constant_lr and max_grad_norm).
dfa_paramwise_cfg = dict(
    custom_keys=dict(
        dfa_delta=dict(
            lr_mult=20.0, decay_mult=0.0, constant_lr=True,
            max_grad_norm=0.5)))
