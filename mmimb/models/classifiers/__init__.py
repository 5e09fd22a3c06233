from .frozen_backbone_classifier import FrozenBackboneClassifier

__all__ = ['FrozenBackboneClassifier']
