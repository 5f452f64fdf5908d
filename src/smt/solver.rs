//! z3 solvers as every query uses them: resource-limited, under a watchdog, with the lemmas whose
//! premises are proved.

use std::time::Duration;

use z3::ast::Bool;
use z3::{Params, SatResult, Solver};

use super::encode::Conditional;
use super::value::not;

/// The lemmas whose premises z3 proves valid (each premise at most once; a premise it cannot
/// prove quickly just leaves its lemmas out).
pub(crate) fn proven_lemmas(facts: &[Conditional]) -> Vec<Bool> {
    let mut out = Vec::new();
    let mut proved: Vec<(Bool, bool)> = Vec::new();
    for f in facts {
        if f.premise.as_bool() == Some(true) {
            out.extend(f.lemmas.iter().cloned());
            continue;
        }
        let known = proved
            .iter()
            .find(|(p, _)| p == &f.premise)
            .map(|(_, ok)| *ok);
        let ok = known.unwrap_or_else(|| {
            let s = limited_solver(LEMMA_RLIMIT);
            s.assert(not(&f.premise));
            let ok = s.check() == SatResult::Unsat;
            proved.push((f.premise.clone(), ok));
            ok
        });
        if ok {
            out.extend(f.lemmas.iter().cloned());
        }
    }
    out
}

/// z3's resource budget for proving one lemma's premise (about a second of work; a premise it
/// cannot prove within it just leaves its lemmas out). Resource limits rather than timeouts:
/// deterministic, and z3 4.8.12's timer threads misbehave when several contexts run at once.
pub(crate) const LEMMA_RLIMIT: u32 = 4_000_000;

/// A solver that gives up (`unknown`) after `rlimit` units of work.
pub(crate) fn limited_solver(rlimit: u32) -> Solver {
    let s = Solver::new();
    let mut p = Params::new();
    p.set_u32("rlimit", rlimit);
    s.set_params(&p);
    s
}

/// Runs `work` with a watchdog that interrupts the current thread's z3 context once `timeout`
/// has passed (and every 50 ms after that, so that a check started late is stopped too).
/// z3's own `timeout` parameter is not used: in z3 4.8.12 its timer threads can deadlock when
/// several contexts solve in parallel.
pub(crate) fn with_deadline<T>(timeout: Option<Duration>, work: impl FnOnce() -> T) -> T {
    let Some(limit) = timeout else { return work() };
    let ctx = z3::Context::thread_local();
    let handle = ctx.handle();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut wait = limit;
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(wait) {
                handle.interrupt();
                wait = Duration::from_millis(50);
            }
        });
        let out = work();
        drop(done_tx);
        out
    })
}
