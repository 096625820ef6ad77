"""Studies over many runs: plan, breakeven, paired comparisons, sweeps. Pure: they return data;
printing and writing files is sim.app's."""
