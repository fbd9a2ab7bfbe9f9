//! Tests of the mirror core.
