from .frozen_backbone_encoder_decoder import FrozenBackboneEncoderDecoder

__all__ = ['FrozenBackboneEncoderDecoder']
