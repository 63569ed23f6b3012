"""The pieces the pure layer is built from, as pure functions: the one rollout, GAE, replay,
minibatch loop and off-policy loop; the swappable policy objectives, optimizer factory and value
targets; losses, value heads and networks."""
