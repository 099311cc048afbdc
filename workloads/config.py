"""ModelConfig: everything a transformer graph builder needs to know about a model.

Why pydantic: a model configuration comes from YAML (the zoo), from a Hugging Face
``config.json`` or from Python, and every route must reject the same mistakes (heads that do not
divide the hidden size, KV heads that do not divide heads, top-k above the expert count) with
one message naming the field. Sizes are exact integers; nothing here is a FLOP count.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator

from accelsim.errors import AccelsimError
from accelsim.fieldchecks import NoBoolNumbers
from accelsim.yamlio import validation_error

ZOO_DIR = Path(__file__).parent / "zoo"


class _Strict(NoBoolNumbers):
    # allow_inf_nan=False: a capacity factor or parameter count of .inf/.nan is a typo, not a model;
    # NoBoolNumbers: ``num_layers: yes`` is not one layer (accelsim.fieldchecks)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class MLAConfig(_Strict):
    """DeepSeek multi-head latent attention (DeepSeek-V2 paper, Sec. 2.1; V3 config.json names).

    The KV cache holds, per token and layer, the compressed latent (``kv_lora_rank``) plus one
    decoupled rotary key (``qk_rope_head_dim``) shared by all heads.
    """

    q_lora_rank: int | None = Field(default=None, gt=0, description="None: queries projected directly")
    kv_lora_rank: int = Field(gt=0)
    qk_nope_head_dim: int = Field(gt=0)
    qk_rope_head_dim: int = Field(gt=0)
    v_head_dim: int = Field(gt=0)


# Most experts a layer may have: the largest published design, PEER's 1024**2 = 1,048,576 (He,
# "Mixture of A Million Experts", arXiv 2407.04202, Sec. 3). Per-expert arrays are built, so an
# unbounded count (10**30) overflowed numpy instead of being a field error.
MAX_EXPERTS = 2**20


class MoEConfig(_Strict):
    """Mixture-of-Experts feed-forward (Mixtral, DeepSeek-V3 style: gated experts)."""

    num_experts: int = Field(gt=0, le=MAX_EXPERTS, description="routed experts per MoE layer")
    top_k: int = Field(gt=0, description="routed experts per token")
    expert_ffn_size: int = Field(gt=0)
    shared_experts: int = Field(default=0, ge=0, le=MAX_EXPERTS)
    shared_ffn_size: int | None = Field(default=None, gt=0, description="default expert_ffn_size * shared_experts")
    first_dense_layers: int = Field(default=0, ge=0, description="leading layers with a dense FFN (DeepSeek: 3)")
    capacity_factor: float | None = Field(default=None, gt=0, description="None: dropless")
    router_bias: bool = Field(default=False, description="per-expert routing bias (DeepSeek-V3 e_score_correction_bias)")
    gating: Literal["softmax", "sigmoid"] = "softmax"
    shared_expert_gate: bool = Field(default=False, description=(
        "a sigmoid gate, Linear(hidden, 1), scales the shared experts' output (Qwen2-MoE shared_expert_gate)"))

    @model_validator(mode="after")
    def _check(self) -> "MoEConfig":
        if self.top_k > self.num_experts:
            raise ValueError(f"moe.top_k ({self.top_k}) must not exceed moe.num_experts ({self.num_experts})")
        return self

    @property
    def shared_size(self) -> int:
        return self.shared_ffn_size or self.expert_ffn_size * self.shared_experts


class ModelConfig(_Strict):
    """A transformer language model, sized exactly.

    ``sources`` cites every number; ``params_published`` is the parameter count the sources
    publish, which the test suite compares with the count derived from the built graph within
    ``params_published_rel_tol``.
    """

    name: str
    description: str = ""
    sources: list[str] = Field(default_factory=list)
    params_published: float | None = Field(default=None, gt=0)
    params_published_rel_tol: float = Field(default=0.01, gt=0, lt=1, description=(
        "how far the derived count may be from params_published: 1% for a rounded published figure; an "
        "estimate (from a checkpoint's file size) states its own, justified in its sources"))
    architecture: Literal["decoder", "encoder", "encoder-decoder"] = "decoder"
    hidden_size: int = Field(gt=0)
    num_layers: int = Field(gt=0, description="decoder layers, or encoder layers for an encoder")
    num_decoder_layers: int | None = Field(default=None, gt=0, description="encoder-decoder only")
    num_heads: int = Field(gt=0)
    num_kv_heads: int | None = Field(default=None, gt=0, description="None: equal to num_heads (MHA)")
    head_dim: int | None = Field(default=None, gt=0, description="None: hidden_size / num_heads")
    ffn_size: int = Field(gt=0)
    ffn_gated: bool = Field(default=False, description="SwiGLU-style gate*up before down")
    activation: Literal["gelu", "silu", "relu"] = "gelu"
    vocab_size: int = Field(gt=0)
    tie_embeddings: bool = False
    position: Literal["learned", "rope", "relative", "none"] = "rope"
    max_positions: int = Field(default=0, ge=0, description="rows of a learned position table")
    type_vocab_size: int = Field(default=0, ge=0, description="BERT token-type table rows")
    embed_norm: bool = Field(default=False, description="norm after the embedding sum (BERT, XLM)")
    final_norm: bool = Field(default=True, description="norm before the head (pre-norm models)")
    norm: Literal["layernorm", "rmsnorm"] = "rmsnorm"
    qkv_bias: bool = False
    qk_norm: bool = Field(default=False, description="RMSNorm of each query and key head over head_dim before "
                          "the rotary embedding (Qwen3 q_norm/k_norm, one [head_dim] weight each per layer)")
    proj_bias: bool = Field(default=False, description="bias on output projection and FFN linears")
    pooler: bool = Field(default=False, description="BERT pooler dense on the first token")
    lm_head: bool = Field(default=True, description="vocabulary projection at the end")
    lm_head_bias: bool = False
    relative_position_projection: bool = Field(default=False, description="Transformer-XL r_net + r_w/r_r biases")
    relative_attention_buckets: int = Field(default=0, ge=0, description="T5 bucketed position-bias table rows "
                                            "(one [buckets, heads] table per stack, in its first layer)")
    adaptive_cutoffs: list[int] | None = Field(default=None, description="Transformer-XL adaptive input/softmax")
    adaptive_div: int = Field(default=1, gt=0)
    adaptive_tie_projs: list[bool] | None = Field(default=None, description="per cluster: head projection tied to "
                                                  "the input one (Transformer-XL tie_projs); None: all tied")
    attn_out_bias: bool | None = Field(default=None, description="bias on the attention output projection; "
                                       "None: proj_bias (Transformer-XL: FFN biases but none on o_net)")
    mla: MLAConfig | None = None
    moe: MoEConfig | None = None
    max_position_embeddings: int | None = Field(default=None, gt=0, description=(
        "positions a rotary/relative model was trained for (Hugging Face max_position_embeddings); longer "
        "runs need allow_long_context. Learned tables use max_positions (a hard limit)"))
    sliding_window: int | None = Field(default=None, gt=0, description=(
        "each query attends to the last N positions (itself included) and the KV cache keeps N (Mistral); "
        "None: full causal attention. See workloads.context"))
    full_attention_every: int | None = Field(default=None, gt=0, description=(
        "with sliding_window: every k-th layer (layer i with (i + 1) % k == 0) attends to the whole context, the "
        "rest use the window (Gemma 2: k = 2); None: every layer uses the window"))
    post_norms: bool = Field(default=False, description="norms on the attention and FFN outputs before each "
                             "residual add (Gemma 2 post_attention_layernorm / post_feedforward_layernorm)")
    embed_scale: bool = Field(default=False, description="embeddings multiplied by sqrt(hidden_size) (Gemma)")
    attn_logit_softcap: float | None = Field(default=None, gt=0, description=(
        "scores become c * tanh(scores / c) before the softmax (Gemma 2 attn_logit_softcapping)"))
    final_logit_softcap: float | None = Field(default=None, gt=0, description=(
        "logits become c * tanh(logits / c) (Gemma 2 final_logit_softcapping)"))
    dtype_bytes: int = Field(default=2, gt=0)
    dtype_source: Literal["stated", "assumed"] = Field(default="stated", description=(
        "assumed: no source gave the element size (a config.json without torch_dtype, a YAML without "
        "dtype_bytes), so dtype_bytes is the 2-byte fp16/bf16 default; outputs show it"))
    kv_dtype_bytes: int | None = Field(default=None, gt=0, description="None: dtype_bytes")

    @model_validator(mode="before")
    @classmethod
    def _dtype_source(cls, data: object) -> object:
        # a configuration that does not give dtype_bytes gets the 2-byte default: say it was assumed
        if isinstance(data, dict) and "dtype_bytes" not in data and "dtype_source" not in data:
            return {**data, "dtype_source": "assumed"}
        return data

    @model_validator(mode="after")
    def _check(self) -> "ModelConfig":
        if self.head_dim is None and self.hidden_size % self.num_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must divide hidden_size ({self.hidden_size}) "
                             "unless head_dim is given")
        if self.num_kv_heads is not None and self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_kv_heads ({self.num_kv_heads}) must divide num_heads ({self.num_heads})")
        if self.architecture == "encoder-decoder" and self.num_decoder_layers is None:
            raise ValueError("num_decoder_layers is required for an encoder-decoder")
        if self.position == "learned" and self.max_positions == 0:
            raise ValueError("max_positions must be positive for learned positions")
        if self.full_attention_every is not None and self.sliding_window is None:
            raise ValueError("full_attention_every needs sliding_window")
        if self.moe is not None and self.moe.first_dense_layers > self.num_layers:
            raise ValueError("moe.first_dense_layers exceeds num_layers")
        if self.adaptive_cutoffs is not None:
            cuts = self.adaptive_cutoffs
            if cuts != sorted(cuts) or not cuts or cuts[-1] >= self.vocab_size or cuts[0] <= 0:
                raise ValueError("adaptive_cutoffs must increase strictly inside (0, vocab_size)")
            if self.adaptive_tie_projs is not None and len(self.adaptive_tie_projs) != len(cuts) + 1:
                raise ValueError("adaptive_tie_projs needs one entry per cluster (len(adaptive_cutoffs) + 1)")
        return self

    # --- derived sizes ---------------------------------------------------------------------
    @property
    def kv_heads(self) -> int:
        return self.num_kv_heads or self.num_heads

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    @property
    def kv_bytes(self) -> int:
        return self.kv_dtype_bytes or self.dtype_bytes

    @property
    def attention_kind(self) -> str:
        if self.mla is not None:
            return "mla"
        if self.kv_heads == self.num_heads:
            return "mha"
        return "mqa" if self.kv_heads == 1 else "gqa"


# Error field names pydantic reports for model-level validators are empty; name them here.
_VALIDATOR_FIELDS = ("full_attention_every", "num_kv_heads", "num_heads", "moe.top_k", "num_decoder_layers", "max_positions",
                     "moe.first_dense_layers", "adaptive_cutoffs", "adaptive_tie_projs")


def config_from_dict(data: object, source: str = "<dict>") -> ModelConfig:
    """Validate ``data`` into a ModelConfig; any problem becomes one AccelsimError naming the field."""
    if not isinstance(data, dict):
        raise AccelsimError("expected a mapping of model fields", source=source)
    try:
        return ModelConfig.model_validate(data)
    except ValidationError as err:
        raise validation_error(err, source, _VALIDATOR_FIELDS) from None


def zoo_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted(ZOO_DIR.glob("*.yaml"))}


def zoo_names() -> list[str]:
    return sorted(zoo_paths())
