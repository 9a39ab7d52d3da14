"""Post-training optimisation: a leaner variant of a trained model, and whether it may serve."""
