"""Training recipes: the reference model, the scope classifier and the OOD reference."""
