//! End-to-end tests of the `labrun` binary: one integration test binary, with the emulator
//! tests sharing one LocalStack (started by the harness, stopped when this binary exits) and
//! isolated from each other by account.

mod common;
mod conventions;
mod emulator;
mod faults;
mod kit;
mod offline;
mod serverless;
mod workshop;
