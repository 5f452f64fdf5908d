//! Compiler benchmarks.
//!
//! - `compile/<program>`: checking nothing, compiling each tracr library program of
//!   `specs/tracr/` (value sets → blocks → layout → layers → dense weights); the spec is parsed
//!   once outside the loop.
//! - `compile_checked/<program>`: the same plus the domain check against the reference
//!   evaluator (every input up to 200,000).
//! - `sample/<program>`: one implementation drawn from all eight families (criterion reports
//!   implementations/s as elements/s), in memory; `sample_write/<program>` also writes the model
//!   directory.

use std::hint::black_box;
use std::path::Path;

use congruity::compile::sample::{Family, sample_one};
use congruity::compile::{CompileOptions, compile_checked, compile_program};
use congruity::lang;
use criterion::{Criterion, Throughput};

fn programs() -> Vec<(String, congruity::lang::ir::Program)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/tracr");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let spec = lang::load(&f).unwrap();
        for (name, p) in spec.programs {
            out.push((name, p));
        }
    }
    out
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let progs = programs();
    {
        let mut g = c.benchmark_group("compile");
        for (name, p) in &progs {
            g.bench_function(name.as_str(), |b| {
                b.iter(|| compile_program(black_box(p), &CompileOptions::default()).unwrap())
            });
        }
        g.finish();
    }
    {
        let mut g = c.benchmark_group("compile_checked");
        g.sample_size(10);
        for (name, p) in &progs {
            g.bench_function(name.as_str(), |b| {
                b.iter(|| compile_checked(black_box(p), &CompileOptions::default(), 0).unwrap())
            });
        }
        g.finish();
    }
    {
        let mut g = c.benchmark_group("sample");
        g.throughput(Throughput::Elements(1));
        for (name, p) in progs.iter().filter(|(n, _)| {
            ["tracr_reverse", "tracr_sort_freq", "tracr_shuffle_dyck2"].contains(&n.as_str())
        }) {
            let compiled = compile_program(p, &CompileOptions::default()).unwrap();
            let mut i = 0u64;
            g.bench_function(name.as_str(), |b| {
                b.iter(|| {
                    i += 1;
                    sample_one(&compiled, &Family::ALL, 1, i).unwrap()
                })
            });
        }
        g.finish();
    }
    {
        let mut g = c.benchmark_group("sample_write");
        g.throughput(Throughput::Elements(1));
        let tmp = std::env::temp_dir().join(format!("congruity-bench-{}", std::process::id()));
        for (name, p) in progs
            .iter()
            .filter(|(n, _)| ["tracr_reverse", "tracr_sort_freq"].contains(&n.as_str()))
        {
            let compiled = compile_program(p, &CompileOptions::default()).unwrap();
            let mut i = 0u64;
            g.bench_function(name.as_str(), |b| {
                b.iter(|| {
                    i += 1;
                    let s = sample_one(&compiled, &Family::ALL, 1, i).unwrap();
                    s.write(&compiled, &tmp.join(name)).unwrap();
                })
            });
        }
        let _ = std::fs::remove_dir_all(&tmp);
        g.finish();
    }
    c.final_summary();
}
