from .crop_fcn_mask_head import CropFCNMaskHead, to_stock_mask_head

__all__ = ['CropFCNMaskHead', 'to_stock_mask_head']
