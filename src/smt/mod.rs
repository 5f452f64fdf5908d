//! z3 proofs on the bounded input domain: implements, equivalent, aligned, sufficient, well-formed.
