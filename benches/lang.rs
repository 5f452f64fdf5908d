//! Language benchmarks: parse + check of every spec under `specs/` (found at run time), and the
//! exact evaluator's throughput over whole bounded domains.

use std::path::{Path, PathBuf};

use congruity::lang::eval::eval_output;
use congruity::lang::{check_str, domain, parse_str};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn spec_files() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "interp")
                && let Ok(text) = std::fs::read_to_string(&p)
            {
                out.push((p, text));
            }
        }
    }
    out.sort();
    out
}

fn parse_and_check(c: &mut Criterion) {
    let files = spec_files();
    let bytes: usize = files.iter().map(|(_, t)| t.len()).sum();
    let mut g = c.benchmark_group("lang");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function(format!("parse all specs ({} files)", files.len()), |b| {
        b.iter(|| {
            for (p, text) in &files {
                let ast = parse_str(&p.display().to_string(), text).expect("specs parse");
                std::hint::black_box(ast);
            }
        })
    });
    g.bench_function(
        format!("parse+check all specs ({} files)", files.len()),
        |b| {
            b.iter(|| {
                for (p, _) in &files {
                    // Through the file loader, so imports are resolved as `congruity check` does.
                    let spec = congruity::lang::load(p).expect("specs check");
                    std::hint::black_box(spec);
                }
            })
        },
    );
    g.finish();
}

fn evaluate_domains(c: &mut Criterion) {
    let mut g = c.benchmark_group("eval");
    for name in ["reverse", "hist", "sort_unique", "frac_prevs"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("specs/tracr")
            .join(format!("{name}.interp"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let spec = check_str(&path.display().to_string(), &text).expect("spec checks");
        let program = spec.programs.values().next().expect("one interpretation");
        let inputs: Vec<_> = domain::inputs(&program.task)
            .map(|i| i.expect("domain"))
            .collect();
        g.throughput(Throughput::Elements(inputs.len() as u64));
        g.bench_function(
            format!("{name}: whole domain ({} inputs)", inputs.len()),
            |b| {
                b.iter(|| {
                    for input in &inputs {
                        std::hint::black_box(eval_output(program, input).ok());
                    }
                })
            },
        );
        g.bench_function(format!("{name}: enumerate domain"), |b| {
            b.iter(|| domain::inputs(&program.task).count())
        });
    }
    g.finish();
}

criterion_group!(benches, parse_and_check, evaluate_domains);
criterion_main!(benches);
