//! Bounds on what a lab source may ask of labrun, in one place.
//!
//! Lab sources come from anyone who can open a pull request against a workshop, so every
//! construct whose cost grows faster than its text (YAML aliases, nested JMESPath, template
//! loops, symlinked folders, waits) has a limit here. Validation reports a crossed limit as a
//! located diagnostic; what only shows at run time (a template's work) fails the step. Each
//! limit sits far above what the seed workshop needs.

use std::time::Duration;

/// Values in one YAML document once aliases are expanded. The largest chapter of the seed
/// workshop holds about 600; a billion-laughs document stops at the alias that crosses this.
pub const YAML_MAX_NODES: usize = 100_000;
/// Bytes of scalar text in one YAML document once aliases are expanded.
pub const YAML_MAX_TEXT: usize = 16 << 20;
/// Lists and mappings inside each other in one YAML document (AWS parameters nest about 6).
/// Everything that walks the tree recurses, so this keeps it far from the stack's end.
pub const YAML_MAX_DEPTH: usize = 64;

/// Bytes in one JMESPath expression (the seed workshop's longest is under 200).
pub const JMESPATH_MAX_LEN: usize = 4096;
/// How deep one JMESPath expression may nest: see [`jmespath_depth`]. The `jmespath` crate's
/// parser, interpreter and destructor recurse once per level, at up to about 10 KiB of stack
/// each in a debug build; 50 levels stay under a quarter of a 2 MiB thread stack (tokio's
/// worker threads, and test threads, have 2 MiB).
pub const JMESPATH_MAX_DEPTH: usize = 50;

/// minijinja instructions one render may execute. Rendering a seed-workshop parameter takes
/// fewer than 20; a loop over a thousand items about 5,000. Nested `range()` loops run out
/// here in milliseconds instead of running for hours.
pub const TEMPLATE_FUEL: u64 = 100_000;
/// minijinja's recursion limit (macro calls, nested blocks); its own default is 500.
pub const TEMPLATE_RECURSION: usize = 100;
/// Bytes one rendered template may produce (IAM policies stop at 6 KiB, EC2 user data at 16 KiB).
pub const TEMPLATE_MAX_OUTPUT: usize = 1 << 20;

/// The longest `timeout` a step may wait for its `until` condition.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// The shortest `interval` between polls (the engine lengthens it by half each poll).
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// The longest `interval` between polls.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// `retry: attempts` runs from 1 to this.
pub const MAX_RETRY_ATTEMPTS: i64 = 20;
/// `retry: delay` bounds (the engine doubles it per attempt, capped).
pub const MIN_RETRY_DELAY: Duration = Duration::from_millis(10);
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);
/// Items in a `for_each` list written out in the lab source.
pub const MAX_FOR_EACH_ITEMS: usize = 1000;
/// Folders inside each other under a workshop root.
pub const MAX_DIR_DEPTH: usize = 32;

/// Why a JMESPath expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JmespathError {
    #[error("JMESPath expression is {len} bytes long; labrun allows at most {JMESPATH_MAX_LEN}")]
    TooLong { len: usize },
    #[error("JMESPath expression nests {depth} levels deep; labrun allows at most {JMESPATH_MAX_DEPTH}")]
    TooDeep { depth: usize },
    /// The parser's own message (first line).
    #[error("{0}")]
    Syntax(String),
}

impl JmespathError {
    /// A limit, not a syntax error.
    pub fn is_limit(&self) -> bool {
        !matches!(self, JmespathError::Syntax(_))
    }
}

/// Refuses an expression too long or too deeply nested for the `jmespath` crate to handle
/// safely. Call it before `jmespath::compile`; [`compile_jmespath`] does both.
pub fn check_jmespath(expr: &str) -> Result<(), JmespathError> {
    if expr.len() > JMESPATH_MAX_LEN {
        return Err(JmespathError::TooLong { len: expr.len() });
    }
    let depth = jmespath_depth(expr);
    if depth > JMESPATH_MAX_DEPTH {
        return Err(JmespathError::TooDeep { depth });
    }
    Ok(())
}

/// Checks the limits, then compiles.
pub fn compile_jmespath(expr: &str) -> Result<jmespath::Expression<'static>, JmespathError> {
    check_jmespath(expr)?;
    jmespath::compile(expr).map_err(|e| {
        let text = e.to_string();
        JmespathError::Syntax(text.lines().next().unwrap_or("invalid expression").to_string())
    })
}

/// An upper bound on the depth of the expression's syntax tree, from its text alone.
///
/// Every level the parser or interpreter recurses into comes from an operator or a bracket:
/// `(`, `[`, `{` open a level, and inside one, the operators (`.`, `|`, `||`, `&&`, comparisons,
/// `!`, `&`, `*`, `?`, with `[]` counted twice as it builds two nodes) can chain up to one
/// level each. So a group is one level plus its deepest comma- or colon-separated part, a part
/// being its operator count plus its deepest group. Text inside `'raw strings'`, `"quoted
/// identifiers"` and `` `literals` `` is skipped (backslash escapes the next character, as the
/// `jmespath` lexer does). The count is iterative, so it is safe on any input.
pub fn jmespath_depth(expr: &str) -> usize {
    // Per open group: (deepest finished part, operators in the current part, deepest child in it).
    let mut stack: Vec<(usize, usize, usize)> = vec![(0, 0, 0)];
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                while let Some(d) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == c {
                        break;
                    }
                }
            }
            '[' if chars.peek() == Some(&']') => {
                chars.next();
                stack.last_mut().expect("never empty").1 += 2;
            }
            '(' | '[' | '{' => stack.push((0, 0, 0)),
            // A closer without an opener is a syntax error the parser reports; it is skipped.
            ')' | ']' | '}' if stack.len() > 1 => {
                let (best, ops, child) = stack.pop().expect("checked");
                let depth = 1 + best.max(ops + child);
                let parent = stack.last_mut().expect("never empty");
                parent.2 = parent.2.max(depth);
            }
            ',' | ':' => {
                let top = stack.last_mut().expect("never empty");
                *top = (top.0.max(top.1 + top.2), 0, 0);
            }
            '.' | '|' | '&' | '!' | '<' | '>' | '=' | '*' | '?' => {
                // `||`, `&&`, `==`, `!=`, `<=`, `>=` are one operator each.
                if matches!((c, chars.peek()), ('|', Some('|')) | ('&', Some('&')) | ('=' | '!' | '<' | '>', Some('='))) {
                    chars.next();
                }
                stack.last_mut().expect("never empty").1 += 1;
            }
            _ => {}
        }
    }
    // Unclosed groups (a syntax error the parser will report) still count.
    let mut depth = 0;
    while let Some((best, ops, child)) = stack.pop() {
        let here = best.max(ops + child.max(depth));
        depth = if stack.is_empty() { here } else { here + 1 };
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_of_ordinary_expressions_is_small() {
        assert_eq!(jmespath_depth("Vpcs[0].VpcId"), 2);
        assert_eq!(jmespath_depth("length(Vpcs)"), 1);
        assert!(jmespath_depth("Vpcs[0].Tags[?Key=='Name'].Value | [0]") < 10);
        assert!(jmespath_depth("{GroupId: request.GroupId, IpPermissions: request.IpPermissions}") <= 2);
        // Quoted text does not count.
        assert_eq!(jmespath_depth("\"((((\".a"), 1);
        assert_eq!(jmespath_depth("`[[[[1]]]]`"), 0);
        assert_eq!(jmespath_depth("'it\\'s (('"), 0);
    }

    #[test]
    fn depth_counts_nesting_and_chains() {
        for (expr, at_least) in [
            (format!("{}a{}", "(".repeat(60), ")".repeat(60)), 60),
            (format!("{}a{}", "[".repeat(60), "]".repeat(60)), 60),
            (format!("{}a{}", "{a:".repeat(60), "}".repeat(60)), 60),
            (format!("{}a", "!".repeat(60)), 60),
            (format!("{}a", "& ".repeat(60)), 60),
            (format!("{}a", "&".repeat(120)), 60),
            (vec!["a"; 61].join("."), 60),
            (format!("a{}", "[]".repeat(30)), 60),
            (format!("{}a", "((((".repeat(30)), 60),
        ] {
            let d = jmespath_depth(&expr);
            assert!(d >= at_least, "{expr}: {d}");
            assert_eq!(check_jmespath(&expr), Err(JmespathError::TooDeep { depth: d }));
        }
    }

    #[test]
    fn long_expressions_are_refused_before_parsing() {
        let e = format!("a{}", ",a".repeat(JMESPATH_MAX_LEN));
        assert!(matches!(compile_jmespath(&e), Err(JmespathError::TooLong { .. })));
        assert!(compile_jmespath("Vpcs[0").unwrap_err().to_string().contains("Parse error"));
    }
}

/// Shared by the project's bounded fuzz tests (lab, JMESPath, templates): a deterministic
/// generator and a runner on a stack as small as the threads labrun's code runs on.
#[doc(hidden)]
pub mod fuzz {
    /// xorshift64: the same sequence for a seed on every machine, no dependency.
    pub struct Rng(u64);

    impl Rng {
        pub fn new(seed: u64) -> Self {
            Rng(seed.max(1))
        }
        pub fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        /// A number in `0..n` (`n` > 0).
        pub fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n.max(1) as u64) as usize
        }
        pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    /// Runs `f` on a thread with a 2 MiB stack, as test threads and tokio's workers have.
    pub fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new().stack_size(2 << 20).spawn(f).expect("a thread").join().expect("no panic and no stack overflow")
    }
}
