"""lakala-sandbox: a local stand-in for Lakala's hosted counter (聚合收银台)."""

__version__ = "0.1.0"
