//! The evaluator on every spec that checks: the first byte picks how many tokens, the following
//! bytes pick them from the task's vocabulary, the rest is the spec.
#![no_main]

use congruity::lang::{self, eval};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (picks, text) = data.split_at(8);
    let text = String::from_utf8_lossy(text);
    let Ok(spec) = lang::check_str("fuzz.interp", &text) else {
        return;
    };
    for program in spec.programs.values() {
        let vocab = &program.task.vocab;
        if vocab.is_empty() {
            continue;
        }
        let n = 1 + picks[0] as usize % program.task.max_len.clamp(1, 7);
        let input: Vec<_> = picks[1..=n]
            .iter()
            .map(|&b| vocab[b as usize % vocab.len()].clone())
            .collect();
        if eval::check_input(&program.task, &input).is_ok() {
            let _ = eval::eval_output(program, &input).map_err(|e| e.to_string());
        }
    }
});
