"""Peripheral models, one small class per block (rp2040js style); see base.py for what they share."""
