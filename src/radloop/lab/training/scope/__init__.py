"""The scope classifier's recipe (``radloop train-scope``) and its measurement (``radloop bench scope``)."""
