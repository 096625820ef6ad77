# %% [markdown]
# # capsim from Python: how many H100s does the assistant need at 9 a.m.?
#
# A notebook-style script (cells marked `# %%`; open it in Jupyter or VS Code as a notebook, or run it
# with `python examples/notebook.py`). CI runs it with `CAPSIM_EXAMPLE_QUICK=1`: a shorter day, fewer
# replications. See docs/python-api.md.

# %%
import os

import sim

QUICK = os.environ.get("CAPSIM_EXAMPLE_QUICK") == "1"
# the quick version simulates the two hours around the peak, from 08:00 (every check still applies)
short = {"horizon_h": 2.0, "workload.arrivals.peak_hour": 1.0, "workload.arrivals.mean_rps": 4.0} if QUICK else {}
reps = 2 if QUICK else 8

# %% [markdown]
# ## One run of the default experiment

# %%
r = sim.simulate("experiments/default.yaml", short, replications=reps, seed=7, workers=2)
print(r)
ttft = r.metric("peak_ttft_p95_s")
print(f"peak-hour p95 TTFT {ttft['mean']:.3f} s (95% CI {ttft['ci95_low']:.3f} .. {ttft['ci95_high']:.3f})")
print(f"monthly cost ${r.metric('monthly_cost_usd')['mean']:,.0f}")

# %% [markdown]
# ## The tables are pandas DataFrames

# %%
print(r.replications[["experiment", "seed", "replication", "requests", "availability", "monthly_cost_usd"]])
by_hour = r.hourly.groupby("hour")["ttft_p95_s"].median()
print("p95 TTFT by hour of arrival (median over replications):")
print(by_hour.dropna().round(3).to_string())

# %% [markdown]
# ## One server fewer, on the same random numbers

# %%
fewer = sim.simulate(
    "experiments/default.yaml", short, replications=reps, seed=7, workers=2, backends__gpu_pool__servers=2
)
diff = fewer.replications["peak_ttft_p95_s"] - r.replications["peak_ttft_p95_s"]
print(f"two servers instead of three: peak p95 TTFT {diff.mean():+.3f} s per replication (B - A)")

# %% [markdown]
# ## A mistake is caught before anything runs

# %%
try:
    sim.simulate("experiments/default.yaml", backends__gpu_pool__model="llama-3-70b")
except sim.ConfigError as exc:
    for problem in exc.problems:
        print("refused:", problem)

# %% [markdown]
# ## Keep the run: a results folder with its report

# %%
import tempfile  # noqa: E402

with tempfile.TemporaryDirectory() as tmp:
    folder = r.save(os.path.join(tmp, "three-servers"))
    print(sorted(p.name for p in folder.iterdir()))
