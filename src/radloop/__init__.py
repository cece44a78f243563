"""radloop: use multimodal language models on chest X-rays responsibly.

radloop drafts, checks and monitors; a radiologist reviews and signs. Nothing it writes is a
diagnosis.
"""

__version__ = "0.1.0"
