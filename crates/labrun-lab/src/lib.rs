//! labrun's lab model: loading Hugo pages and YAML into chapters and steps, the action
//! catalog, and validation with source spans. No async and no AWS here, so it builds fast and
//! every other crate (and editor tooling) can use it.

pub mod catalog;
pub mod compiled;
pub mod derive;
pub mod diag;
pub mod limits;
pub mod load;
pub mod model;
pub mod modelled;
pub mod page;
mod response;
pub mod schema;
pub mod steps;
pub mod vocab;
pub mod yaml;

pub use diag::{Diagnostic, Location, SourceFile};
pub use load::{Loaded, Selection, load, prerequisites, select};
pub use model::{Assertion, Chapter, Cleanup, Matcher, Pages, Retry, Step, Workshop};
