from .image_bank_preprocessor import (ImageBankClsDataPreprocessor,
                                      random_crop_flip)

__all__ = ['ImageBankClsDataPreprocessor', 'random_crop_flip']
