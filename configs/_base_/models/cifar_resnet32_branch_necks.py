# Neck and head replacements for CIFAR ResNet-32 (64 channels at 8x8,
# 10 classes), merged into a complete config's model with
#   model = {{_base_.csba_neck_head}}   (or multi_branch_neck_head)
# so that one definition serves every dataset, loss and schedule.

# Class-Specific Branch Attention: three 3x3 branches (dilations 1, 2, 3),
# class-specific softmax attention over them, one feature per class, and a
# head that scores each class from its own feature (docs/csba.md).
csba_neck_head = dict(
    neck=dict(
        _delete_=True, type='CSBANeck', in_channels=64, num_classes=10),
    head=dict(type='ClassWiseLinearClsHead', in_channels=64))

# The control: the same branches fused by one class-shared attention. Its
# hidden width (92 instead of 16) matches CSBA's parameter count within 116
# parameters (tests/test_csba.py), so the comparison isolates the class
# specificity of the attention, not its size.
multi_branch_neck_head = dict(
    neck=dict(
        _delete_=True, type='MultiBranchNeck', in_channels=64,
        hidden_channels=92),
    head=dict(in_channels=64))

# How far the branch attention is from uniform (and, for CSBA, how much it
# differs between classes), in the training log as branch_attention/*.
custom_hooks = [dict(type='BranchAttentionLoggerHook')]
