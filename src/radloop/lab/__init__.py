"""What builds and measures radloop, beside the product: the synthetic lab, the training
recipes, the benchmarks, the error-injection challenge, the demo content and the monitor's
simulated stream.

The lab may use all of the product; the product never imports the lab
(``tests/test_architecture.py``). It reaches the product through the registries a hospital's
own code would use: the ``synth`` dataset through the ``radloop.datasets`` entry point, the
workstation's demo content through ``radloop.demo``, and its commands are attached by
``radloop.cli``.
"""
