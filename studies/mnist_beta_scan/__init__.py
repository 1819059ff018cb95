"""The KL-weight scan: how the MNIST codec responds to beta."""
