//! The interpretive-equivalence estimate of Sun & Toneva (point test, selectivity, intervention test).
