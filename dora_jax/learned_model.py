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

from dora_jax.learned import FEATURES, KERNELS

__all__ = ["Allocator", "Block", "ModelConfig"]


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The network's size (stored in every checkpoint).

    Attributes:
      width: the hidden width.
      layers: blocks.
    """

    width: int = 32
    layers: int = 1

    def __post_init__(self):
        for name in ("width", "layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


class Block(nnx.Module):
    """Pre-norm aggregation over the similarity kernels, then an MLP.

    Each candidate reads the kernel-weighted mean of the others' values, once per kernel
    (row-normalized exp((S − 1)/T): at T = T_s the rows are DORA's softmax(S/T_s), Eq. 11), and the
    mean over all valid candidates. The kernels are fixed, not learned query–key attention: they
    are the K × K work the features already did, so a block adds K × K multiply-adds and no
    exponentials.
    """

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        w = config.width
        self.norm1 = nnx.LayerNorm(w, rngs=rngs)
        self.values = nnx.Linear(w, KERNELS * w, rngs=rngs)
        self.pool = nnx.Linear(w, w, use_bias=False, rngs=rngs)
        self.proj = nnx.Linear(w, w, rngs=rngs)
        self.norm2 = nnx.LayerNorm(w, rngs=rngs)
        self.up = nnx.Linear(w, 2 * w, rngs=rngs)
        self.down = nnx.Linear(2 * w, w, rngs=rngs)

    def __call__(
        self,
        x: Float[Array, "K W"],
        kernels: tuple[Float[Array, "K K"], ...],
        inverse_sums: Float[Array, "K C"],
        valid: Bool[Array, " K"],
    ) -> Float[Array, "K W"]:
        z = self.norm1(x)
        values = jnp.split(self.values(z), len(kernels), axis=-1)
        message = sum(
            (kernel @ v) * inverse_sums[:, c : c + 1]
            for c, (kernel, v) in enumerate(zip(kernels, values, strict=True))
        )
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
        kernels: tuple[Float[Array, "K K"], ...],
        inverse_sums: Float[Array, "K C"],
        valid: Bool[Array, " K"],
    ) -> Float[Array, " K"]:
        h = self.embed(x)
        for block in self.blocks:
            h = block(h, kernels, inverse_sums, valid)
        return base @ self.base_scale[...] + self.head(self.norm(h))[:, 0]
