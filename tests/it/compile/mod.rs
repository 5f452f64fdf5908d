//! The compiler: CLI, chains, the sampler, every bundled spec, tracr parity.

mod artifact;
mod cli;
mod pipeline;
mod sample;
mod specs;
mod tracr;
mod train;
