"""The reference model's training recipe (``radloop train-reference``): data, network, trainers."""
