//! What a step's text compiles to, done once when the lab loads: JMESPath queries and regular
//! expressions. The engine evaluates these and never parses them again.

use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

/// A JMESPath expression and its compiled form. It reads as its text (`Deref<Target = str>`),
/// so messages and the static checks use it as before.
#[derive(Clone)]
pub struct Query {
    text: String,
    compiled: Result<Arc<jmespath::Expression<'static>>, String>,
}

impl Query {
    /// Compiles `text` within labrun's limits; an invalid expression keeps its error, which
    /// `search` returns (validation has reported it already, at its line).
    pub fn new(text: &str) -> Self {
        let compiled = crate::limits::compile_jmespath(text).map(Arc::new).map_err(|e| e.to_string());
        Query { text: text.to_string(), compiled }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Evaluates the query against `data`.
    pub fn search(&self, data: &Value) -> Result<Value, String> {
        let expr = self.compiled.as_ref().map_err(Clone::clone)?;
        let var = jmespath::Variable::from_serializable(data).map_err(|e| e.to_string())?;
        let result = expr.search(var).map_err(|e| e.to_string())?;
        serde_json::to_value(&*result).map_err(|e| e.to_string())
    }
}

impl std::ops::Deref for Query {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Query({:?})", self.text)
    }
}

impl std::fmt::Display for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Query {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Serialize for Query {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// A regular expression for `matches`, compiled once unless it holds a template (then it is
/// compiled when rendered, for that run).
#[derive(Clone)]
pub struct Pattern {
    text: String,
    compiled: Option<Arc<regex_lite::Regex>>,
}

impl Pattern {
    pub fn new(text: &str) -> Self {
        let compiled = if text.contains("{{") { None } else { regex_lite::Regex::new(text).ok().map(Arc::new) };
        Pattern { text: text.to_string(), compiled }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `s` matches; a pattern that does not compile matches nothing.
    pub fn is_match(&self, s: &str) -> bool {
        match &self.compiled {
            Some(re) => re.is_match(s),
            None => regex_lite::Regex::new(&self.text).is_ok_and(|re| re.is_match(s)),
        }
    }
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pattern({:?})", self.text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_query_compiles_once_and_searches_many_times() {
        let q = Query::new("Vpcs[0].VpcId");
        for id in ["vpc-1", "vpc-2"] {
            assert_eq!(q.search(&json!({"Vpcs": [{"VpcId": id}]})).unwrap(), json!(id));
        }
        assert_eq!(&*q, "Vpcs[0].VpcId");
        assert!(Query::new("Vpcs[").search(&json!({})).is_err());
    }

    #[test]
    fn a_pattern_compiles_once_unless_it_holds_a_template() {
        let p = Pattern::new("^vpc-");
        assert!(p.compiled.is_some() && p.is_match("vpc-1") && !p.is_match("subnet-1"));
        let t = Pattern::new("^{{ vars.prefix }}");
        assert!(t.compiled.is_none());
        assert!(!Pattern::new("(").is_match("("));
    }
}
