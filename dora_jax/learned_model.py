"""The `learned` rule's network in flax nnx (imported only when a checkpoint is loaded or trained).

A set network over the K candidates of one problem: no positional encodings, so permuting the
candidates permutes the outputs (`dora_jax.learned` has the inputs and the output's form).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Bool, Float

from dora_jax.learned import FEATURES

__all__ = ["Allocator", "Block", "ModelConfig"]


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The network's size (stored in every checkpoint).

    Attributes:
      width: the hidden width.
      layers: blocks.
    """

    width: int = 16
    layers: int = 1

    def __post_init__(self):
        for name in ("width", "layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


class Block(nnx.Module):
    """Pre-norm aggregation over the similarity kernel, then an MLP.

    Each candidate reads the kernel-weighted mean of the others' values (row-normalized
    exp((S − 1)/0.1), `dora_jax.learned.similarity_kernels`) and the mean over all valid
    candidates. The kernel is fixed, not learned query–key attention: it is K × K work the
    features already did, so a block adds K × K multiply-adds and no exponentials.
    """

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        w = config.width
        self.norm1 = nnx.LayerNorm(w, rngs=rngs)
        self.values = nnx.Linear(w, w, rngs=rngs)
        self.pool = nnx.Linear(w, w, use_bias=False, rngs=rngs)
        self.proj = nnx.Linear(w, w, rngs=rngs)
        self.norm2 = nnx.LayerNorm(w, rngs=rngs)
        self.up = nnx.Linear(w, 2 * w, rngs=rngs)
        self.down = nnx.Linear(2 * w, w, rngs=rngs)

    def __call__(
        self,
        x: Float[Array, "K W"],
        kernel: Float[Array, "K K"],
        inverse_sum: Float[Array, " K"],
        valid: Bool[Array, " K"],
    ) -> Float[Array, "K W"]:
        z = self.norm1(x)
        message = (kernel @ self.values(z)) * inverse_sum[:, None]
        count = jnp.maximum(jnp.sum(valid), 1).astype(z.dtype)
        mean = jnp.sum(jnp.where(valid[:, None], z, 0), axis=0) / count
        x = x + self.proj(message + self.pool(mean)[None, :])
        return x + self.down(jax.nn.gelu(self.up(self.norm2(x))))


class Allocator(nnx.Module):
    """Candidates' features → allocation logits c_R·R/T_b + c_γ·log γ + head(h) (see
    `dora_jax.learned`); the head starts at 0, so an untrained network is DORA."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.embed = nnx.Linear(FEATURES, config.width, rngs=rngs)
        self.blocks = nnx.List([Block(config, rngs=rngs) for _ in range(config.layers)])
        self.norm = nnx.LayerNorm(config.width, rngs=rngs)
        self.head = nnx.Linear(
            config.width, 1, kernel_init=nnx.initializers.zeros_init(), rngs=rngs
        )
        self.base_scale = nnx.Param(jnp.ones((2,), jnp.float32))  # c_R, c_γ

    def __call__(
        self,
        x: Float[Array, "K F"],
        base: Float[Array, "K 2"],
        kernel: Float[Array, "K K"],
        inverse_sum: Float[Array, " K"],
        valid: Bool[Array, " K"],
    ) -> Float[Array, " K"]:
        h = self.embed(x)
        for block in self.blocks:
            h = block(h, kernel, inverse_sum, valid)
        return base @ self.base_scale[...] + self.head(self.norm(h))[:, 0]
