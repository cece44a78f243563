"""radloop's reference model: data from the synthetic lab, network, training, ONNX runtime.

Only ``runtime``, ``predictor``, ``preprocess``, ``spec`` and ``metrics`` are needed to run
the shipped model (numpy, Pillow, onnxruntime); ``network`` and ``train`` need torch
(``pip install 'radloop[train]'``) and ``data`` the synthetic lab (``radloop[synth]``).
"""
