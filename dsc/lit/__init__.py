"""Lightning glue: modules and the training runner (thin; the maths lives below)."""
