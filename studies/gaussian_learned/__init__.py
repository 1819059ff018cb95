"""The learned-codec study on Gaussian sources."""
