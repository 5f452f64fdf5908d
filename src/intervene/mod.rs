//! Interventions on a running model: activation patching, ablations, interchange-intervention accuracy.
