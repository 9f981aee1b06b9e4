"""Training: the framework-free tasks and transfer methods, the source cache, the training
options and the Lightning engine. Import :mod:`dcat.training.engine` for :func:`fit`; the other
modules never import Lightning."""
