"""Differences in modelling between accelsim's loop nest and ZigZag, for ``tiling_vs_zigzag.py``'s results."""
NOTES = "(to be written)"
