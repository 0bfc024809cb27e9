//! Exit statuses of `iscsi-chaos run`.

/// Every run passed or was skipped.
pub const PASSED: i32 = 0;
/// A run failed its expectations or errored.
pub const FAILED: i32 = 1;
/// Bad input (the message names the file, line, column and field).
pub const INPUT_ERROR: i32 = 2;
/// Interrupted by SIGINT, after tearing everything down.
pub const INTERRUPTED: i32 = 130;
/// Ended by SIGTERM, after tearing everything down.
pub const TERMINATED: i32 = 143;
