"""Proposers: things that suggest the next change to the training script."""
