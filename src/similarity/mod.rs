//! Representation-similarity measures as named, parameterised objects (ridge predictivity, CKA, ...).
