"""dss: Distilling Step-by-Step — teacher rationales into a small student (seq2seq or decoder-only)."""

__version__ = "0.1.0"
