"""fiqabench: evaluation harness for how well vision-language models judge face image quality."""

__version__ = "0.1.0"
