"""Evaluation: an agent's test set, runs of it against the draft or a version, and the publish gate."""
