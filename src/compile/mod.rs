//! Interpretation → transformer weights, and the sampler of function-preserving implementations.
