"""The capacity model: what a deployment needs for N listeners and J joins/s."""
