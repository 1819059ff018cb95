"""The paper's MNIST experiment at its schedule, with the convergence check."""
