//! Replay (coming).
