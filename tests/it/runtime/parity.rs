//! Parity with TransformerLens: every tensor of `expected.safetensors` (run_with_cache) and
//! `patching.safetensors` (run_with_hooks) of every case under
//! `tests/fixtures/transformer_lens/`, through the library.

use crate::support::runtime as runtime_common;

use candle_core::Device;
use congruity::model::io::read_safetensors;
use congruity::model::{
    Action, AttnHook, HookPoint, HookSelection, Intervention, RunOptions, Site, TokenBatch, load,
};
use runtime_common::{Diff, assert_close, case_dirs, case_name, read_token_rows, test_device};

#[test]
fn run_with_cache_parity_on_every_fixture() {
    for dir in case_dirs("transformer_lens") {
        let case = case_name(&dir);
        let model = load(&dir, &test_device()).unwrap_or_else(|e| panic!("{case}: {e}"));
        let tokens = TokenBatch::new(&read_token_rows(&dir.join("tokens.json"), "tokens")).unwrap();
        let out = model
            .transformer
            .forward(&tokens, &RunOptions::cache(HookSelection::All))
            .unwrap();
        let expected = read_safetensors(&dir.join("expected.safetensors"), &Device::Cpu).unwrap();
        assert!(expected.contains_key("logits"));
        let mut worst = Diff::default();
        for (name, want) in &expected {
            let got = if name == "logits" {
                &out.logits
            } else {
                out.cache
                    .get_by_name(name)
                    .unwrap_or_else(|e| panic!("{case}: {e}"))
                    .unwrap_or_else(|| panic!("{case}: hook `{name}` was not cached"))
            };
            let d = assert_close(&format!("{case}/{name}"), got, want);
            worst.max_abs = worst.max_abs.max(d.max_abs);
            worst.max_rel = worst.max_rel.max(d.max_rel);
        }
        eprintln!(
            "{case}: {} tensors, max abs err {:.3e}, max rel err {:.3e}",
            expected.len(),
            worst.max_abs,
            worst.max_rel
        );
    }
}

#[test]
fn activation_patching_parity_on_every_fixture() {
    for dir in case_dirs("transformer_lens") {
        let case = case_name(&dir);
        let model = load(&dir, &test_device()).unwrap().transformer;
        let tokens_path = dir.join("tokens.json");
        let base = TokenBatch::new(&read_token_rows(&tokens_path, "tokens")).unwrap();
        let source = TokenBatch::new(&read_token_rows(&tokens_path, "source_tokens")).unwrap();
        let expected = read_safetensors(&dir.join("patching.safetensors"), &Device::Cpu).unwrap();

        let z = HookPoint::attn(0, AttnHook::Z);
        let src = model
            .forward(&source, &RunOptions::cache(HookSelection::only([z])))
            .unwrap();
        let src_z = src.cache.get(&z).unwrap().clone();
        assert_close(
            &format!("{case}/source_logits"),
            &src.logits,
            &expected["source_logits"],
        );
        let head1 = src_z.narrow(2, 1, 1).unwrap().squeeze(2).unwrap();
        assert_close(
            &format!("{case}/source_z_head"),
            &head1,
            &expected["source_z_head"],
        );

        let patch = [Intervention::new(
            Site::hook(z).with_head(1),
            Action::Replace(src_z),
        )];
        let patched = model
            .forward(&base, &RunOptions::intervene(&patch))
            .unwrap();
        let d = assert_close(
            &format!("{case}/patched_logits"),
            &patched.logits,
            &expected["patched_logits"],
        );
        eprintln!("{case}: patched_logits max abs err {:.3e}", d.max_abs);

        // The patch must matter: the clean logits differ from the patched ones.
        let clean = model.forward(&base, &RunOptions::default()).unwrap();
        let delta = (&clean.logits - &patched.logits)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(delta > 1e-2, "{case}: patching head 1 changed nothing");
    }
}
