"""Models, precision and GPUs in the pool: the built-in rows derive what they derived before (a restatement of
the former formulas), 70B in FP8 fits on 2 H100s and runs, a MoE model at low load decodes faster than a dense
model of the same total size, a user GPU and a user model run end to end, bad hf_config files are refused at
validate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from backends.gpu.catalog import (
    ACTIVATION_RESERVE_GB,
    COLD_START_ENGINE_S,
    COLD_START_S_PER_GB,
    GPUS,
    MODELS,
    derived_cold_start_s,
    derived_iteration,
    derived_kv_tokens,
    derived_moe,
    efficiency,
    model_of,
)
from backends.gpu.engine_bench import serve_benchmark
from backends.models.library import HF_DIR, SHIPPED
from sim.config.backends import GpuPoolSpec, IterationSpec
from sim.config.errors import ConfigError
from sim.engine.loading import load_config_text
from sim.engine.replication import simulate

# The former catalog rows (before models came from config.json): name, params_b, layers, hidden, heads, kv_heads,
# head_dim, intermediate, vocab.
FORMER_MODELS = [
    ("llama-3-8b", 8.03, 32, 4096, 32, 8, 128, 14336, 128256),
    ("llama-3-70b", 70.6, 80, 8192, 64, 8, 128, 28672, 128256),
    ("mistral-7b", 7.24, 32, 4096, 32, 8, 128, 14336, 32000),
    ("qwen2.5-32b", 32.8, 64, 5120, 40, 8, 128, 27648, 152064),
    ("llama-2-7b", 6.74, 32, 4096, 32, 32, 128, 11008, 32000),
]
FORMER_GPUS = ("h100", "h200", "a100-80gb", "l40s")


def former_derivation(gname: str, row: tuple, tp: int) -> tuple[IterationSpec, int, float]:
    """The iteration, KV capacity and cold start as backends/gpu/catalog.py computed them before models came from
    config.json, with the fidelity study's terms (issue 16 item 7: all-reduce latency and bandwidth share, the
    decode attention's bandwidth share, KV heads never split below one per GPU)."""
    _, params_b, L, h, heads, kv, d, inter, vocab = row
    g = GPUS[gname]
    eff = efficiency(g.family)
    layer_params = 2 * h * heads * d + 2 * h * kv * d + 3 * h * inter
    streamed = L * layer_params + vocab * h
    weight_bytes = params_b * 1e9 * 2.0
    kv_bytes = 2.0 * L * kv * d * 2.0
    bw = g.hbm_tb_s * 1e12 * eff.memory
    flops = g.bf16_tflops * 1e12
    act = L * eff.act_bytes_per_hidden * h / bw
    comm_latency = comm_per_token = 0.0
    if tp > 1:  # two all-reduces per layer: a log2(tp)-step latency, bytes at the all-reduce's share of the link
        comm_latency = 2 * L * (eff.allreduce_s * math.log2(tp))
        comm_per_token = 2 * L * 2.0 * (tp - 1) / tp * h * 2.0 / (g.interconnect_gb_s * 1e9 * eff.interconnect)
    base = streamed * 2.0 / (tp * bw) + L * eff.kernel_s + eff.overhead_s + comm_latency
    it = IterationSpec(
        base=base,
        per_seq=2.0 * streamed / (tp * flops * eff.decode_compute) + act + eff.per_seq_s + comm_per_token,
        per_prefill_token=2.0 * streamed / (tp * flops * eff.prefill_compute) + act + comm_per_token,
        per_kv_token=kv_bytes * max(1.0 / tp, 1.0 / kv) / (g.hbm_tb_s * 1e12 * eff.attention_share),
        per_schedule=eff.overhead_s,
    )
    free = (g.memory_gb * 0.90 - ACTIVATION_RESERVE_GB) * 1e9 * tp - weight_bytes  # vLLM's gpu_memory_utilization
    kv_tokens = int(max(free, 0.0) // (kv_bytes * max(1.0, tp / kv)))
    return it, kv_tokens, COLD_START_ENGINE_S + COLD_START_S_PER_GB * weight_bytes / 1e9


@pytest.mark.parametrize("gname", FORMER_GPUS)
@pytest.mark.parametrize("row", FORMER_MODELS, ids=[r[0] for r in FORMER_MODELS])
def test_the_built_in_rows_derive_exactly_what_they_derived_before(gname, row):
    for tp in (1, 2, 4, 8):
        spec = GpuPoolSpec(gpu=gname, model=row[0], tensor_parallel=tp)
        it, kv, cold = former_derivation(gname, row, tp)
        assert derived_iteration(spec) == it  # bit for bit: the shipped experiments' results stay identical
        assert derived_kv_tokens(spec) == kv
        assert derived_cold_start_s(spec) == cold
        assert derived_moe(spec) is None
    assert set(MODELS) == {r[0] for r in FORMER_MODELS}


def test_every_catalog_model_loads_and_derives_on_every_catalog_gpu():
    for name in [*MODELS, *SHIPPED]:
        for gname in GPUS:
            spec = GpuPoolSpec(gpu=gname, model=name, tensor_parallel=8, quantization="fp8")
            it = derived_iteration(spec)
            assert all(math.isfinite(v) and v > 0 for v in (it.base, it.per_seq, it.per_prefill_token))
            assert (derived_moe(spec) is not None) == model_of(spec).is_moe


def test_kv_capacity_per_dtype_and_quantization():
    """KV tokens = (usable HBM x tp - weights) / KV bytes per token: FP8 KV doubles it, FP8 weights free half
    of the layers' bytes."""
    spec = GpuPoolSpec(gpu="h100", model="llama-3.1-70b", tensor_parallel=2, quantization="fp8")
    m, g = model_of(spec), GPUS["h100"]
    usable = (g.memory_gb * spec.gpu_memory_utilization - ACTIVATION_RESERVE_GB) * 1e9 * 2
    auto = derived_kv_tokens(spec)
    assert auto == int((usable - m.weight_bytes("fp8")) // m.kv_bytes_per_token("auto"))
    fp8_kv = derived_kv_tokens(spec.model_copy(update={"kv_cache_dtype": "fp8"}))
    assert fp8_kv in (2 * auto, 2 * auto + 1)
    assert derived_kv_tokens(spec.model_copy(update={"quantization": "bf16"})) == 0  # 141 GB does not fit 140


def _one_class_run(name: str, seed: int, gpu_pool: str) -> str:
    """A 3-minute gpu_only run at 1 req/s of 100-token prompts and 20-token answers on the given pool."""
    return f"""
name: {name}
seed: {seed}
horizon_h: 0.05
workload:
  arrivals: {{kind: constant, mean_rps: 1}}
  classes:
    - {{name: a, share: 1.0, input_tokens: {{dist: constant, value: 100}}, output_tokens: {{dist: constant, value: 20}},
       slo_ttft_s: 5}}
routing: {{policy: gpu_only}}
backends:
  gpu_pool:{gpu_pool}
output: {{requests: false, timeseries: false, report: false}}
"""


GPU_RUN = _one_class_run(
    "t",
    3,
    """ {servers: 1, cold_start_s: {dist: constant, value: 0}, gpu: h100, model: llama-3.1-70b,
             tensor_parallel: 2, quantization: fp8}""",
)


def test_70b_in_fp8_fits_on_two_h100s_and_runs_while_bf16_is_refused():
    m = simulate(load_config_text(GPU_RUN), 0).metrics
    assert m["requests"] > 100 and m["served"] >= m["requests"] - 1  # at most the one in flight at the end
    assert m["failed"] == m["dropped"] == 0
    assert 0 < m["tpot_mean_s"] < 0.05
    with pytest.raises(ConfigError) as e:
        load_config_text(GPU_RUN, ["backends.gpu_pool.quantization=bf16"])
    text = str(e.value)
    assert "does not fit on 2 x h100" in text and "quantization" in text


def dense_twin(tmp_path: Path) -> Path:
    """Mixtral-8x7B's shape with its eight experts merged into one dense MLP: the same total parameters."""
    cfg = json.loads((HF_DIR / "mixtral-8x7b.json").read_text())
    cfg.update(model_type="mistral", architectures=["MistralForCausalLM"], intermediate_size=8 * 14336)
    for k in ("num_local_experts", "num_experts_per_tok", "router_aux_loss_coef", "output_router_logits"):
        del cfg[k]
    path = tmp_path / "dense-47b" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(cfg))
    return path


def test_a_moe_model_at_low_load_decodes_markedly_faster_than_a_dense_model_of_its_size(tmp_path):
    dense_path = dense_twin(tmp_path)
    moe = GpuPoolSpec(gpu="h100", model="mixtral-8x7b", tensor_parallel=2, max_batch=256)
    dense = GpuPoolSpec.model_validate({**moe.model_dump(), "model": {"hf_config": str(dense_path)}})
    assert model_of(dense).computed_params == pytest.approx(model_of(moe).computed_params, rel=2e-4)
    rng = np.random.default_rng(5)
    inputs, outputs = np.full(200, 200), np.full(200, 100)

    def tpot(spec: GpuPoolSpec, rate: float) -> float:
        return serve_benchmark(spec, inputs, outputs, rate, np.random.default_rng(rng.integers(1 << 30))).tpot_mean_s

    def one_alone(spec: GpuPoolSpec) -> float:  # a decode iteration of one request at mid-answer
        it, moe_term = derived_iteration(spec), derived_moe(spec)
        extra = moe_term.seconds(1) if moe_term is not None else 0.0
        return it.base + it.per_seq + it.per_kv_token * 250 + extra

    low_moe, low_dense = tpot(moe, 0.05), tpot(dense, 0.05)
    # alone, the MoE streams its dense part and 2 of 8 experts per layer: ~26 GB against ~93 GB of weights;
    # the per-iteration CPU and kernel overheads (~4 ms) are the same for both
    expected = one_alone(moe) / one_alone(dense)
    assert expected < 0.5
    assert low_moe / low_dense == pytest.approx(expected, rel=0.05)
    # under load the batch touches nearly every expert: the advantage shrinks towards the FLOP difference
    high_moe, high_dense = tpot(moe, math.inf), tpot(dense, math.inf)
    assert high_moe / high_dense > low_moe / low_dense


USER = _one_class_run(
    "user-gpu-model",
    4,
    """
    servers: 2
    cold_start_s: {dist: constant, value: 0}
    gpu: {name: my-accel, memory_gb: 96, hbm_tb_s: 4.0, bf16_tflops: 800, fp8_tflops: 1600, interconnect_gb_s: 400,
          price_per_gpu_hour_usd: 3.0, family: my-asic}
    model: {hf_config: CONFIG}
    quantization: int4
    kv_cache_dtype: fp8""",
)


def test_a_user_gpu_and_a_user_model_run_end_to_end(tmp_path):
    cfg = json.loads((HF_DIR / "qwen3-30b-a3b.json").read_text())
    cfg["num_hidden_layers"] = 24  # the user's own model: a half-depth Qwen3 MoE
    path = tmp_path / "my-moe" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(cfg))
    (tmp_path / "exp.yaml").write_text(USER.replace("CONFIG", "my-moe/config.json"))
    from sim.engine.loading import load_config

    exp = load_config(tmp_path / "exp.yaml")  # the path is found beside the config file
    spec = exp.backends.gpu_pool
    assert model_of(spec).name == "my-moe" and model_of(spec).layers == 24
    m = simulate(exp, 0).metrics
    assert m["requests"] > 100 and m["served"] >= m["requests"] - 2
    assert m["cost_gpu_usd"] == pytest.approx(2 * 3.0 * 0.05, rel=1e-9)
    assert 0 < m["tpot_mean_s"] < 0.05


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"model_type": "deepseek_v3"}', "multi-head latent attention"),
        ("not json", "not valid JSON"),
        ('{"model_type": "llama", "hidden_size": 64}', "missing 'num_hidden_layers'"),
    ],
)
def test_a_bad_hf_config_is_refused_at_validate_with_its_path(tmp_path, content, message):
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as e:
        load_config_text(GPU_RUN, [f"backends.gpu_pool.model={{hf_config: {path}}}"])
    problem = e.value.problems[0]
    assert problem.path == "backends.gpu_pool.model.hf_config" and message in problem.message
    assert str(path) in problem.message


def test_bad_gpu_and_model_mappings_are_located_without_union_tags():
    with pytest.raises(ConfigError) as e:
        load_config_text(GPU_RUN, ["backends.gpu_pool.gpu={name: x, memory_gb: -1}"])
    paths = {p.path for p in e.value.problems}
    assert "backends.gpu_pool.gpu.memory_gb" in paths and "backends.gpu_pool.gpu.hbm_tb_s" in paths
    assert not any("by_spec" in p or "by_name" in p for p in paths)
    with pytest.raises(ConfigError) as e:
        load_config_text(GPU_RUN, ["backends.gpu_pool.model=nonesuch"])
    assert "unknown model 'nonesuch'" in str(e.value) and "qwen3-235b-a22b" in str(e.value)
