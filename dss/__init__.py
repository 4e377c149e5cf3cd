"""dss: Distilling Step-by-Step — teacher rationales into a small seq2seq student."""

__version__ = "0.1.0"
