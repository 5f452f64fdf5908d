//! congruity: checked, repeatable mechanistic interpretations.
//!
//! Data flows one way, one module per stage:
//!
//! ```text
//! lang (parse, check, eval) ─▶ compile ─▶ model ─▶ intervene ─▶ similarity ─▶ equivalence ─▶ experiment ─▶ harness
//!                          └─▶ smt ─────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! A stage never imports a later one; `harness` (`congruity test`: every check and proof of a
//! spec to verdicts and reports) drives the others, and `cli` sits on top of all of them. `hooks` (hook-point
//! names), `artifact` (what a model directory holds: the sidecar, TransformerLens parameter
//! names, safetensors encoding, the exact value ↔ JSON codec), `files` (bounded reads of regular
//! files, outputs that never replace inputs) and `progress` (stderr progress bars) are shared
//! vocabularies below every stage.
//!
//! From a research repository's `cargo test`: check a spec, compile an interpretation, and check
//! that the model directory it writes computes what the interpretation says on every input.
//!
//! ```
//! use congruity::{CompileOptions, Value, compile_checked, eval_program};
//!
//! let spec = congruity::lang::check_str(
//!     "reverse.interp",
//!     "task reverse {
//!        vocab   {a, b}
//!        max_len 3
//!      }
//!      interpretation flip for reverse {
//!        all    = select(tokens, tokens, true)
//!        length = selector_width(all)
//!        opp    = map2(|n, i| n - i - 1, length, indices)
//!        flip   = select(indices, opp, ==)
//!        output   aggregate(flip, tokens)
//!      }",
//! )
//! .map_err(|r| r.render_plain())?;
//! let program = &spec.programs["flip"];
//! let (compiled, _) = compile_checked(program, &CompileOptions::default(), 0)?;
//!
//! let dir = tempfile::tempdir()?;
//! compiled.write(dir.path())?;
//! let model = congruity::load_model(dir.path(), &congruity::Device::Cpu)?;
//! let answers = model.run_symbols(&[vec!["a", "b", "b"]])?;
//!
//! let want = eval_program(program, &[Value::sym("a"), Value::sym("b"), Value::sym("b")])?;
//! let got: Vec<String> = answers[0].iter().map(|v| v.to_string()).collect();
//! let want: Vec<String> = want.output().iter().map(congruity::lang::domain::token_text).collect();
//! assert_eq!(got, want); // ["b", "b", "a"]
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod artifact;
pub mod cli;
pub mod compile;
pub mod equivalence;
pub mod experiment;
pub mod files;
pub mod harness;
pub mod hooks;
pub mod intervene;
pub mod lang;
pub mod model;
pub mod progress;
pub mod similarity;
pub mod smt;
pub mod train;

// The public face: what a research repository's tests use most.
pub use candle_core::Device;
pub use compile::{CompileOptions, Compiled, compile_checked};
pub use harness::{CheckReport, SuiteReport, TestOptions, run_check};
pub use lang::eval::eval_program;
pub use lang::ir::Value;
pub use lang::{Spec, check_str, load};
pub use model::{LoadedModel, ModelError, OutputValue, Sidecar, Transformer, load as load_model};
