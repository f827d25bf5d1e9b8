//! Emulator management and chapter testing: finds or starts LocalStack, isolates tests by
//! account, takes inventories to catch leaks, and runs the three-phase chapter protocol.
//! `labrun emulator`, `labrun test` and the project's own tests all use it.

pub mod emulator;
pub mod inventory;
pub mod labtest;

pub use emulator::{Emulator, HarnessError, Options, Source, default_cache_dir};
