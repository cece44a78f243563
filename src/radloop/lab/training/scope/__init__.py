"""The scope classifier's recipe (``radloop train-scope``) and ``radloop bench scope``."""
