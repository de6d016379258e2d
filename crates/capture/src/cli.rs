//! CLI (coming).
