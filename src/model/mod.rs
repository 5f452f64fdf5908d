//! The transformer runtime on candle-core: TransformerLens checkpoints, hook points, tracr import.
