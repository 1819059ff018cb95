"""The loss-scale study: the MNIST codec trained under every distortion normalisation."""
