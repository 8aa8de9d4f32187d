"""tsgen: generate TorchScript deployment projects whose `make verify` proves that C++ computes what Python does."""

__version__ = "0.2.0"
