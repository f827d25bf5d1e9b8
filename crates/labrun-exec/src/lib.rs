//! labrun's engine: renders steps, calls a [`Backend`], checks expectations, polls, retries,
//! records every change in the [`Ledger`] before moving on, and undoes it on `down`.
//! Generic over the backend so it is tested without AWS.

pub mod assert;
pub mod backend;
pub mod engine;
pub mod ledger;
pub mod paginate;
pub mod plan;
pub mod reachability;
pub mod retry;
pub mod sweep;
pub mod template;
pub mod waiter;

pub use backend::{Backend, CallError, ErrorKind, TargetInfo, TargetKind};
pub use engine::{
    ChapterReport, DownReport, Engine, Mode, Observer, Pacing, Quiet, Reporting, Role, RunReport, Status, StepReport, UndoOutcome,
};
pub use ledger::{Entry, Intent, Ledger, Pending};
pub use retry::Phase;
