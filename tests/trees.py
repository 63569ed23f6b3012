"""Exact comparison of pytrees whose leaves may be PRNG keys (suites keep keys in their states)."""

import jax
import jax.numpy as jnp
import numpy as np


def bits(x):
    """A leaf as a numpy array: a key array by its key data."""
    return np.asarray(jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x)


def assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(bits(x), bits(y))
