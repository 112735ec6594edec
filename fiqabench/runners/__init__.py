"""Model runners behind one protocol (`fiqabench.runners.base.Runner`) and the model catalog."""
