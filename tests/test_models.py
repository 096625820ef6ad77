"""Models from Hugging Face config.json (backends/models): every shipped config loads and counts its published
parameters; precision changes weight and KV bytes and the compute rate; MoE experts touched per batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.gpu.catalog import GPUS, efficiency_note
from backends.models.library import HF_DIR, SHIPPED, shipped_model
from backends.models.moe import expected_experts
from backends.models.precision import DEQUANT_COMPUTE_FACTOR, compute_rate
from backends.models.spec import ModelConfigError, from_hf_config, load_hf_config


def test_every_shipped_config_is_listed_and_every_listed_one_ships():
    assert {p.stem for p in HF_DIR.glob("*.json")} == set(SHIPPED)
    readme = (HF_DIR / "README.md").read_text()
    for name in SHIPPED:
        assert f"{name}.json" in readme or name.rsplit("-", 1)[0] in readme


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_config_counts_the_published_parameters(name):
    """Counts from the config's shape against the model card's totals: within 2% (norms, biases and, for
    Gemma-3, the 0.4 B vision tower are not counted)."""
    m, pub = shipped_model(name), SHIPPED[name]
    assert m.computed_params == pytest.approx(pub.params_b * 1e9, rel=0.02)
    if pub.active_b is not None:
        assert m.is_moe
        # gpt-oss's card counts active parameters without the embedding table (flop_params), the others with it
        active = m.flop_params if name.startswith("gpt-oss") else m.active_params
        assert active == pytest.approx(pub.active_b * 1e9, rel=0.02)
        assert m.active_params < 0.3 * m.computed_params
    else:
        assert not m.is_moe and m.active_params == m.computed_params


def test_the_readers_numbers_are_the_files_numbers():
    cfg = json.loads((HF_DIR / "qwen3-30b-a3b.json").read_text())
    m = from_hf_config(cfg, "q")
    assert (m.layers, m.hidden, m.heads, m.kv_heads, m.head_dim) == (48, 2048, 32, 4, 128)
    assert (m.num_experts, m.experts_per_token, m.moe_intermediate, m.moe_layers) == (128, 8, 768, 48)
    gemma = shipped_model("gemma-3-27b")  # multimodal wrapper: read through text_config
    assert (gemma.architecture, gemma.layers, gemma.vocab, gemma.tied_embeddings) == ("gemma3_text", 62, 262208, True)
    # head_dim left out: hidden / heads; kv heads left out: multi-head attention
    m = from_hf_config({"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
                        "intermediate_size": 128, "vocab_size": 100}, "tiny")  # fmt: skip
    assert (m.head_dim, m.kv_heads, m.tied_embeddings) == (16, 4, False)
    assert m.computed_params == 2 * (4 * 64 * 64 + 3 * 64 * 128) + 2 * 100 * 64


def test_qwen_moe_dense_layers_follow_sparse_step_and_mlp_only_layers():
    base = json.loads((HF_DIR / "qwen3-30b-a3b.json").read_text())
    m = from_hf_config({**base, "num_hidden_layers": 8, "decoder_sparse_step": 2, "mlp_only_layers": [1]}, "q")
    assert m.moe_layers == 3 and m.dense_layers == 5  # layers 3, 5, 7 (layer 1 listed dense)
    assert m.dense_params == 8 * m.attention_params + 5 * m.dense_mlp_params + 3 * m.moe_fixed_params


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model_type": "deepseek_v3"}, "multi-head latent attention"),
        ({"model_type": "bert"}, "unknown model_type 'bert'"),
        ({"model_type": None}, "missing 'model_type'"),
        ({"num_hidden_layers": None}, "missing 'num_hidden_layers'"),
        ({"hidden_size": 4096.5}, "'hidden_size' must be an integer"),
        ({"hidden_size": True}, "'hidden_size' must be an integer"),
        ({"vocab_size": 0}, "'vocab_size' must be >= 1"),
        ({"num_key_value_heads": 7}, "not a multiple of num_key_value_heads"),
        ({"tie_word_embeddings": "no"}, "'tie_word_embeddings' must be true or false"),
    ],
)
def test_what_is_not_understood_is_refused_with_its_reason(change, message):
    cfg = {**json.loads((HF_DIR / "llama-3.1-8b.json").read_text()), **change}
    cfg = {k: v for k, v in cfg.items() if v is not None}
    with pytest.raises(ModelConfigError, match=message):
        from_hf_config(cfg, "x")


def test_moe_fields_are_checked():
    cfg = json.loads((HF_DIR / "mixtral-8x7b.json").read_text())
    with pytest.raises(ModelConfigError, match="exceeds the number of experts"):
        from_hf_config({**cfg, "num_experts_per_tok": 9}, "x")
    del cfg["num_local_experts"]
    with pytest.raises(ModelConfigError, match="missing 'num_local_experts' or 'num_experts'"):
        from_hf_config(cfg, "x")


def test_unreadable_files_are_refused_with_their_path(tmp_path: Path):
    with pytest.raises(ModelConfigError, match="cannot read"):
        load_hf_config(tmp_path / "nope.json")
    bad = tmp_path / "config.json"
    for text in ("{", "[1, 2]", '{"model_type": "llama", "hidden_size": NaN}'):
        bad.write_text(text)
        with pytest.raises(ModelConfigError, match=str(bad)):
            load_hf_config(bad)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_fp8_halves_the_quantised_weights_and_int4_quarters_them(name):
    """The transformer layers' bytes halve under FP8 (the embedding table and LM head stay bf16) and fall to a
    quarter plus one 16-bit scale per 128 weights under int4."""
    m = shipped_model(name)
    emb = 2.0 * m.embedding_params
    bf16, fp8, int4 = (m.weight_bytes(q) - emb for q in ("bf16", "fp8", "int4"))
    assert fp8 == pytest.approx(bf16 / 2, rel=1e-12)
    assert m.weight_bytes("int8") == m.weight_bytes("fp8")
    assert int4 == pytest.approx(bf16 / 4 * (1 + 4 / 128), rel=1e-12)
    assert m.weight_bytes("bf16") == pytest.approx(2.0 * m.computed_params, rel=1e-12)


def test_kv_bytes_per_token_per_dtype():
    m = shipped_model("llama-3.1-70b")  # 80 layers x 8 KV heads x 128 x (K and V)
    assert m.kv_bytes_per_token("auto") == 80 * 8 * 128 * 2 * 2
    assert m.kv_bytes_per_token("fp8") == 80 * 8 * 128 * 2 * 1
    with pytest.raises(ValueError, match="unknown kv_cache_dtype"):
        m.kv_bytes_per_token("int2")


def test_compute_rate_follows_the_hardware():
    h100, a100 = GPUS["h100"], GPUS["a100-80gb"]
    assert compute_rate("bf16", h100.bf16_tflops, h100.fp8_tflops).tflops == 989
    fp8 = compute_rate("fp8", h100.bf16_tflops, h100.fp8_tflops)
    assert (fp8.tflops, fp8.time_factor) == (1979, 1.0)
    on_ampere = compute_rate("fp8", a100.bf16_tflops, a100.fp8_tflops)  # no FP8 tensor cores: weight-only
    assert (on_ampere.tflops, on_ampere.time_factor) == (312, DEQUANT_COMPUTE_FACTOR)
    for q in ("int8", "int4"):
        r = compute_rate(q, h100.bf16_tflops, h100.fp8_tflops)
        assert (r.tflops, r.time_factor) == (989, DEQUANT_COMPUTE_FACTOR)


@given(k=st.integers(1, 16), extra=st.integers(0, 240), n=st.integers(0, 5000), dn=st.integers(1, 500))
def test_moe_experts_touched_grow_with_the_batch_between_top_k_and_all(k, extra, n, dn):
    e = k + extra
    a, b = expected_experts(n, k, e), expected_experts(n + dn, k, e)
    assert a <= b + 1e-9 <= e + 1e-9
    if n >= 1:
        assert a >= k - 1e-9
    assert expected_experts(1, k, e) == pytest.approx(k)
    assert expected_experts(0, k, e) == 0.0


def test_moe_streamed_bytes_are_monotone_between_top_k_and_every_expert():
    m = shipped_model("mixtral-8x7b")
    fixed = m.dense_params + m.lm_head_params
    prev = 0.0
    for n in range(1, 300):
        s = m.streamed_params(n)
        assert prev <= s
        prev = s
    assert m.streamed_params(1) == pytest.approx(fixed + m.moe_layers * 2 * m.expert_params)
    assert m.streamed_params(10_000) == pytest.approx(fixed + m.moe_layers * 8 * m.expert_params)
    # the known value: two tokens touch 8 (1 - (6/8)^2) = 3.5 experts per layer on average
    assert expected_experts(2, 2, 8) == pytest.approx(3.5)
    # a small exact check of the formula against enumeration: 2 tokens, top-1 of 3 experts
    pairs = [(i, j) for i in range(3) for j in range(3)]
    assert expected_experts(2, 1, 3) == pytest.approx(sum(len({i, j}) for i, j in pairs) / len(pairs))
    dense = shipped_model("llama-3.1-8b")
    assert dense.streamed_params(1) == dense.streamed_params(256)


def test_new_gpus_are_in_the_one_catalog_with_prices_and_fp8():
    for name in ("h100", "h100-pcie", "h200", "b200", "a100-80gb", "a100-40gb", "l40s", "l4", "a10g", "mi300x"):
        g = GPUS[name]
        assert g.memory_gb > 0 and g.hbm_tb_s > 0 and g.bf16_tflops > 0 and g.price_per_gpu_hour_usd > 0
        assert g.price_source and g.price_as_of
        assert g.fp8_tflops == 0 or g.fp8_tflops == pytest.approx(2 * g.bf16_tflops, rel=0.03)  # data sheets
    assert GPUS["a100-80gb"].fp8_tflops == 0 and GPUS["a10g"].fp8_tflops == 0
    assert efficiency_note("hopper") is None
    for family in ("blackwell", "cdna3", "ada", "my-asic"):
        note = efficiency_note(family)
        assert note is not None and family in note and "no measured efficiency" in note
    note = efficiency_note("ampere")  # kernel factors from the A100 profile, the engine's costs from Hopper's
    assert note is not None and "kernel factors fitted" in note and "Hopper's" in note
