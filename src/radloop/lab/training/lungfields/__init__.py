"""The lung-fields network's recipe: lab renders with exact lung fields, training, export."""
