"""The `learned` rule's network in flax nnx (imported only when a checkpoint is loaded or trained).

A set transformer over the K candidates of one problem: no positional encodings, so permuting
the candidates permutes the outputs (`dora_jax.learned` has the inputs and the output's form).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Bool, Float

from dora_jax.learned import FEATURES, PAIR_FEATURES

__all__ = ["Allocator", "Block", "ModelConfig"]


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The network's size (stored in every checkpoint).

    Attributes:
      width: the hidden width.
      heads: attention heads per layer (width must divide by it).
      layers: transformer blocks.
    """

    width: int = 32
    heads: int = 4
    layers: int = 2

    def __post_init__(self):
        for name in ("width", "heads", "layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by heads {self.heads}")


class Block(nnx.Module):
    """Pre-norm self-attention with a learned per-head bias from pairwise features, then an MLP."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        w, h = config.width, config.heads
        self.heads = h
        self.norm1 = nnx.LayerNorm(w, rngs=rngs)
        self.qkv = nnx.Linear(w, 3 * w, rngs=rngs)
        self.proj = nnx.Linear(w, w, rngs=rngs)
        # bias_h(i, j) = Σ_f pair[i, j, f]·coef[f, h]; starts at 0 (plain attention).
        self.pair = nnx.Param(jnp.zeros((PAIR_FEATURES, h), jnp.float32))
        self.norm2 = nnx.LayerNorm(w, rngs=rngs)
        self.up = nnx.Linear(w, 2 * w, rngs=rngs)
        self.down = nnx.Linear(2 * w, w, rngs=rngs)

    def __call__(
        self, x: Float[Array, "K W"], pair: Float[Array, "K K P"], valid: Bool[Array, " K"]
    ) -> Float[Array, "K W"]:
        k, w = x.shape
        d = w // self.heads
        q, key, v = jnp.split(self.qkv(self.norm1(x)), 3, axis=-1)
        q, key, v = (t.reshape(k, self.heads, d) for t in (q, key, v))
        logits = jnp.einsum("ihd,jhd->hij", q, key) / jnp.sqrt(jnp.float32(d))
        logits = logits + jnp.einsum("ijp,ph->hij", pair, self.pair[...])
        logits = jnp.where(valid[None, None, :], logits, -1e30)
        attn = jax.nn.softmax(logits, axis=-1)
        x = x + self.proj(jnp.einsum("hij,jhd->ihd", attn, v).reshape(k, w))
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
        pair: Float[Array, "K K P"],
        valid: Bool[Array, " K"],
    ) -> Float[Array, " K"]:
        h = self.embed(x)
        for block in self.blocks:
            h = block(h, pair, valid)
        return base @ self.base_scale[...] + self.head(self.norm(h))[:, 0]
