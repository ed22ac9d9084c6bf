//! Staged work saved to a state file.
